"""The interview: consent, each question, /start and /back."""

from __future__ import annotations

from kvisa.bot.content.model import Question
from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.policy.answers import Invalid, parse_typed
from kvisa.bot.policy.zones import zone_choices
from kvisa.bot.session import Kind

router = Router()
WHY, TODAY = "_why", "_today"


def current(conv: Conversation) -> Question:
    waiting = conv.session.awaiting
    assert waiting is not None and waiting.kind is Kind.QUESTION
    return conv.flows.question(waiting.subject)


# --- consent ---------------------------------------------------------------------------------


def consent_options(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption("agree", t("I agree")), UiOption("decline", t("No, thanks"))]


def consent_chosen(conv: Conversation, option_id: str) -> None:
    s, t = conv.session, conv.t
    if option_id != "agree":
        conv.say(
            t(
                "Understood: we store nothing. You can still read /faq and /parks, "
                "and send /start if you change your mind."
            )
        )
        return conv.erase()
    s.consent_at = conv.inbound.at.isoformat()
    for qid, value in s.prefill.items():
        s.answers[qid] = value
        label = render.answer_label(t, conv.flows.question(qid), value)
        conv.say(t("Park from your link: {park}. You can change it with /edit.", park=label))
    s.prefill = {}
    if s.link_offer:  # a redeemed code waited for this consent (handlers/linking.py)
        return conv.run_command("link")
    conv.advance()


@router.prompt(Kind.CONSENT, options=consent_options, choose=consent_chosen)
def consent(conv: Conversation) -> str:
    return conv.t(
        "Before we start: to assess your case we store your answers (degree, dates, "
        "country of residence, plans), only to give you a verdict, a checklist and deadlines. "
        "No passport number, no name. See it all with /mydata; erase it with /delete. "
        "Do you agree?"
    )


# --- a question ------------------------------------------------------------------------------


def question_options(conv: Conversation, t: Text) -> list[UiOption]:
    question = current(conv)
    if question.kind == "zone":  # the clocks of the country answered: built each time
        country = conv.session.answers.get("residence_country")
        clocks = [UiOption(c.zone, c.label(t.locale)) for c in zone_choices(country)]
        return (clocks if country else []) + [UiOption(WHY, t("Why do you ask?"))]

    def build() -> tuple[UiOption, ...]:
        options = [UiOption(o.id, t(o.label)) for o in question.options]
        if question.date and question.date.default:
            options.append(UiOption(TODAY, t("Today")))
        return (*options, UiOption(WHY, t("Why do you ask?")))

    return list(conv.shared(("question", question.id, t.lang), build))


def question_chosen(conv: Conversation, option_id: str) -> None:
    question, t = current(conv), conv.t
    if option_id == WHY:
        conv.say("ℹ️ " + t(question.why))
        return conv.ask(question)
    if option_id == TODAY:
        return conv.record(question, conv.today.isoformat())
    if question.kind == "zone":
        return conv.record(question, option_id)  # the turn checked it is one of the clocks
    option = question.option(option_id)
    if option is None:
        return conv.stale()
    conv.record(question, option.value)


def question_typed(conv: Conversation, text: str) -> None:
    question = current(conv)
    value = parse_typed(question, text, conv.today)
    if isinstance(value, Invalid):
        if conv.free_text(text):  # no answer to this question, but a question of theirs
            return None
        conv.say(conv.t(value.hint, **value.params))
        return conv.ask(question)
    conv.record(question, value)


def typed_dates(conv: Conversation) -> bool:
    return current(conv).kind == "date"  # 19980427 is a date, not a wrong option number


@router.prompt(
    Kind.QUESTION,
    options=question_options,
    choose=question_chosen,
    read=question_typed,
    takes_digits=typed_dates,
)
def question_text(conv: Conversation) -> str:
    """(3/12) The question, how to type an answer, and the current answer when editing."""
    t, s, question = conv.t, conv.session, current(conv)
    facts = conv.facts()
    shown = [
        q
        for q in conv.flows.questions
        if q.id == question.id or q.when is None or q.when.may_hold(facts)
    ]
    number = next(i for i, q in enumerate(shown, 1) if q.id == question.id)
    lines = [f"({number}/{len(shown)}) {t(question.text)}"]
    if question.kind == "date":
        lines.append(t("Type a date like 1998-04-27."))
    elif question.kind == "country":
        lines.append(t("Type the country's name in English or Chinese, or its two-letter code."))
    if question.id in s.answers:
        answer = render.answer_label(t, question, s.answers[question.id])
        lines.append(t("Current answer: {answer}", answer=answer))
    return "\n".join(lines)


# --- commands --------------------------------------------------------------------------------


@router.command("start", summary=N_("start or resume the interview"))
def start(conv: Conversation, args: str) -> None:
    """`/start`, or `/start lingang` from a park's link (kept until consent is given)."""
    s, t = conv.session, conv.t
    park = conv.flows.find_question("park")
    deep_link = args.strip().lower()
    if deep_link.startswith("link-"):  # https://t.me/<bot>?start=link-<code>
        return conv.run_command("link", deep_link)
    option = park.option(deep_link) if park else None
    if park is not None and option is not None:
        if s.consented:
            conv.say(
                t(
                    "Park from your link: {park}. You can change it with /edit.",
                    park=t(option.label),
                )
            )
            return conv.record(park, deep_link)
        s.prefill = {"park": deep_link}
    if not s.consented and s.waiting_kind is Kind.CONSENT:
        return conv.ask_current()  # greeted already: the question alone, not the greeting again
    if not s.consented:
        return conv.welcome()
    conv.say(t("Welcome back! Let's continue where you stopped."))
    conv.resume()


@router.command("back", summary=N_("go back to the previous question"), needs_consent=True)
def back(conv: Conversation, args: str) -> None:
    """The answered question just before the current one, in interview order."""
    s = conv.session
    order = [q.id for q in conv.flows.questions]
    waiting = s.awaiting
    asked = waiting.subject if waiting and waiting.kind is Kind.QUESTION else None
    earlier = [
        qid for qid in order[: order.index(asked) if asked else len(order)] if qid in s.answers
    ]
    if not earlier:
        conv.say(conv.t("This is the first question; there is nothing to go back to."))
        return conv.ask_current()
    conv.ask(conv.flows.question(earlier[-1]))
