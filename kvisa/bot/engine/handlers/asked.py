"""Questions typed in the applicant's own words, at any moment: answered from flows/faq.yaml
when the match is sure, "did you mean …?" when it is close, and otherwise an honest "I don't
know this one" with /human, which takes the question to a person (handlers/handover.py).

A typed text is first read as what the pending prompt asked for (an option, a date); only
what is none of that comes here (engine/reading.py, handlers/questions.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvisa import metrics
from kvisa.bot.content.model import FaqEntry, PersonTopic
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.faq_text import answer_text
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.session import Kind

if TYPE_CHECKING:  # the matcher's libraries (numpy, bm25s) load with the first index only
    from kvisa.bot.content.asked import Match

router = Router()
PERSON, BACK = "_person", "_back"
TO_A_PERSON = N_("A person at the agency can answer: send /human and they will see your question.")
KEPT = 500  # characters of an unanswered question kept for the person


@router.gate
def forget_the_question(conv: Conversation) -> bool:
    """An unanswered question is kept for the next message only (for /human), no longer."""
    s = conv.session
    if s.asked is not None and conv.inbound.command != "human" and s.waiting_kind is not Kind.ASKED:
        s.asked = None
    return False


@router.free_text
def typed_question(conv: Conversation, text: str) -> bool:
    s, t = conv.session, conv.t
    match: Match = conv.flows.faq_index.match(text)
    best = match.best
    if match.outcome == "answer" and isinstance(best, FaqEntry):
        metrics.typed_questions.labels("answered").inc()
        conv.say(answer_text(t, conv.flows, best))
        conv.ask_current()
        return True
    if not s.consented:
        return False  # nothing is kept before consent: the prompt asks again
    s.asked = text.strip()[:KEPT]
    if match.outcome == "suggest":
        metrics.typed_questions.labels("did_you_mean").inc()
        conv.wait(Kind.ASKED, " ".join(e.id for e in match.targets))
        return True
    if match.outcome == "answer" and isinstance(best, PersonTopic):
        metrics.typed_questions.labels("to_a_person").inc()
        conv.say(
            t("The guide we answer from does not cover {topic}.", topic=t(best.topic))
            + "\n"
            + t(TO_A_PERSON)
        )
    elif not _looks_like_a_question(text) and s.waiting_kind is Kind.QUESTION:
        s.asked = None
        return False  # most likely a mistyped answer: the question's own hint says more
    else:
        metrics.typed_questions.labels("unknown").inc()
        conv.say(t("I don't know this one, and I would rather not guess.") + "\n" + t(TO_A_PERSON))
    conv.ask_current()
    return True


def _looks_like_a_question(text: str) -> bool:
    """Ends like a question ("?", or the particles 吗 and 呢)."""
    return text.strip().rstrip("。.!！ ").endswith(("?", "？", "吗", "呢"))


def offered(conv: Conversation) -> list[FaqEntry]:
    waiting = conv.session.awaiting
    ids = set(waiting.subject.split()) if waiting is not None else set()
    return [e for e in conv.flows.faq if e.id in ids]


def choices(conv: Conversation, t: Text) -> list[UiOption]:
    return [
        *(UiOption(e.id, t(e.question)) for e in offered(conv)),
        UiOption(PERSON, t("None of these: ask a person")),
        UiOption(BACK, t("Back")),
    ]


def chosen(conv: Conversation, option_id: str) -> None:
    s = conv.session
    question, s.asked = s.asked or "", None
    if option_id == PERSON:
        return conv.run_command("human", question)
    entry = next((e for e in offered(conv) if e.id == option_id), None)
    if entry is not None:
        conv.say(answer_text(conv.t, conv.flows, entry))
    conv.resume()


@router.prompt(Kind.ASKED, options=choices, choose=chosen)
def did_you_mean(conv: Conversation) -> str:
    return conv.t("I am not sure I understood. Did you mean:")
