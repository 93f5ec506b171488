"""/human and /bot: the conversation handed to a person at the agency, and back.

While a person has it (queued or held by a staff member, see `Session.handover`) the bot stays
quiet: every message is kept for the person (the workspace shows it) and nothing is answered,
except /bot (back to the bot) and /delete (erasing is never held up). Typing "人工" or "talk to
a person" is /human too; on WeChat it is a menu entry."""

from __future__ import annotations

import re

from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_
from kvisa.bot.policy.office import OfficeHours
from kvisa.bot.session import Handover

router = Router()
OFFICE_HOURS = ("office_hours",)  # Conversation.shared key; the engine sets the agency's hours
# Commands that still reach the bot while a person has the conversation.
PASSING = frozenset({"bot", "delete"})
# Plain texts that ask for a person, compared without case, spaces and punctuation.
TRIGGERS = frozenset({"人工", "人工服务", "转人工", "talktoaperson", "human", "agent"})
_NOT_WORD = re.compile(r"[\W_]+")


def asks_for_a_person(text: str) -> bool:
    return _NOT_WORD.sub("", text.casefold()) in TRIGGERS


@router.gate
def with_a_person(conv: Conversation) -> bool:
    """Keep messages for the person while they have the conversation; "人工" hands it over."""
    s, inbound = conv.session, conv.inbound
    if s.handover is None:
        if inbound.command is None and inbound.text and asks_for_a_person(inbound.text):
            if not s.consented:
                return False  # the welcome asks for consent first
            hand_over(conv, "")
            return True
        return False
    if inbound.command in PASSING:
        return False
    if inbound.command is not None:
        text = f"/{inbound.command} {inbound.args}".strip()
    else:
        text = inbound.text if inbound.text is not None else f"[{inbound.option or ''}]"
    if not s.handover.reason and inbound.command is None:
        s.handover.reason = text[:500]
    s.handover.add("applicant", inbound.at.isoformat(), text)
    return True


@router.command("human", summary=N_("talk to a person at the agency"), needs_consent=True)
def human(conv: Conversation, args: str) -> None:
    """`/human`, with the question to ask, or the one the bot could not answer just before."""
    asked, conv.session.asked = conv.session.asked, None
    hand_over(conv, args.strip() or asked or "")


@router.command("bot", summary=N_("back to the bot after /human"))
def back_to_the_bot(conv: Conversation, args: str) -> None:
    s, t = conv.session, conv.t
    if s.handover is None:
        conv.say(t("You are talking to the bot already."))
        return conv.ask_current() if s.consented else conv.welcome()
    s.handover = None
    conv.say(t("You are back with the bot."))
    conv.resume()


def hand_over(conv: Conversation, reason: str) -> None:
    s, t, at = conv.session, conv.t, conv.inbound.at
    waiting = s.awaiting
    s.handover = Handover(
        status="queued",
        since=at.isoformat(),
        reason=reason[:500],
        at_prompt=f"{waiting.kind.value}:{waiting.subject}".rstrip(":") if waiting else "",
    )
    if reason:
        s.handover.add("applicant", at.isoformat(), reason)
    hours: OfficeHours = conv.shared(OFFICE_HOURS, OfficeHours)
    calendar = conv.flows.calendar
    span = t("{opens}-{closes}", opens=f"{hours.opens:%H:%M}", closes=f"{hours.closes:%H:%M}")
    if hours.is_open(calendar, at):
        expect = t(
            "Our office is open now ({hours} Shanghai time on working days): expect a reply today.",
            hours=span,
        )
    else:
        opening = hours.next_opening(calendar, at)
        expect = t(
            "Our office is closed now; expect a reply from {day} {time} (Shanghai time; office "
            "hours {hours} on China's working days).",
            day=t.date(opening.date()),
            time=f"{opening:%H:%M}",
            hours=span,
        )
    ask = "" if reason else " " + t("Write your question here.")
    conv.say(
        t("A person at the agency will answer you here.")
        + ask
        + "\n"
        + expect
        + "\n"
        + t("Until then I stay quiet. Send /bot to talk to me again.")
    )
