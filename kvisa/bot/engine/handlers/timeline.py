"""/timeline and /calendar, and reporting a step with its date."""

from __future__ import annotations

import datetime as dt
from functools import partial

from kvisa.bot.attachments.calendar_file import timeline_ics
from kvisa.bot.attachments.picture import render_timeline_png
from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.engine.timeline_text import timeline_text
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import Attachment, Outbound, UiOption
from kvisa.bot.policy.answers import Invalid, parse_date
from kvisa.bot.policy.timeline import asks_deficiency, event_problem
from kvisa.bot.session import Kind

router = Router()
TODAY, CANCEL = "_today", "_cancel"


def interview_first(conv: Conversation) -> bool:
    """Whether the interview is still to finish (then say so and go back to it)."""
    if conv.session.finished:
        return False
    conv.say(conv.t("Your timeline depends on your answers: let's finish the interview first."))
    conv.resume()
    return True


@router.command("timeline", summary=N_("your deadlines, and reporting a step"), needs_consent=True)
def timeline(conv: Conversation, args: str) -> None:
    if not interview_first(conv):
        show(conv)


@router.command("calendar", summary=N_("your deadlines as a calendar file"), needs_consent=True)
def calendar(conv: Conversation, args: str) -> None:
    if interview_first(conv):
        return
    t, line = conv.t, conv.timeline()
    if not line.deadlines:
        conv.say(t("No deadlines yet: report a step (for example your entry into China) first."))
        return conv.wait(Kind.REPORT)
    data = timeline_ics(line, t, str(conv.inbound.user), conv.inbound.at)
    ics = Attachment("kvisa-deadlines.ics", "text/calendar", data, t("K visa deadlines"))
    text = t(
        "Your deadlines as a calendar file: open it to add them to your phone's calendar. "
        "Importing it again later updates the same events."
    )
    conv.send(Outbound(text, attachments=(ics,)))
    conv.resume()


def show(conv: Conversation) -> None:
    """The timeline as text and picture, then the choice of a step to report."""
    t, line = conv.t, conv.timeline()
    picture = Attachment(
        "timeline.png",
        "image/png",
        caption=t("Your K visa timeline"),
        make=partial(render_timeline_png, line, t),
    )
    conv.send(Outbound(timeline_text(t, conv.flows, line), attachments=(picture,)))
    conv.wait(Kind.REPORT)


def reported(conv: Conversation) -> dict[str, dt.date]:
    return {k: dt.date.fromisoformat(v) for k, v in conv.session.events.items()}


def record(conv: Conversation, event_id: str, day: dt.date) -> None:
    conv.session.events[event_id] = day.isoformat()
    if asks_deficiency(conv.flows, conv.facts(), event_id):
        return conv.wait(Kind.DEFICIENCY)
    show(conv)


def given_date(conv: Conversation, event_id: str, day: dt.date) -> None:
    s = conv.session
    others = {k: v for k, v in reported(conv).items() if k != event_id}
    problem = event_problem(conv.flows, others, event_id, day, conv.today)
    if problem:
        conv.say(render.event_problem(conv.t, conv.flows, problem))
        return conv.ask_current()
    if event_id in s.events and s.events[event_id] != day.isoformat():
        return conv.wait(Kind.EVENT_CONFIRM, event_id, day)
    record(conv, event_id, day)


def subject(conv: Conversation) -> str:
    waiting = conv.session.awaiting
    assert waiting is not None
    return waiting.subject


def step_label(conv: Conversation) -> str:
    event = conv.flows.timeline.event(subject(conv))
    assert event is not None
    return conv.t(event.label)


# --- which step ------------------------------------------------------------------------------


def steps(conv: Conversation, t: Text) -> list[UiOption]:
    s, result = conv.session, []
    for event in conv.flows.timeline.events:
        label = t(event.label)
        if event.id in s.events:
            label += " ✓ " + t.date(dt.date.fromisoformat(s.events[event.id]), "medium")
        result.append(UiOption(event.id, label))
    return result + [UiOption(CANCEL, t("Done"))]


def step_chosen(conv: Conversation, option_id: str) -> None:
    if option_id == CANCEL:
        return conv.resume()
    conv.wait(Kind.EVENT_DATE, option_id)


@router.prompt(Kind.REPORT, options=steps, choose=step_chosen)
def which_step(conv: Conversation) -> str:
    return conv.t("Which step do you want to report?")


# --- its date --------------------------------------------------------------------------------


def date_options(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption(TODAY, t("Today")), UiOption(CANCEL, t("Cancel"))]


def date_chosen(conv: Conversation, option_id: str) -> None:
    if option_id == CANCEL:
        return conv.resume()
    given_date(conv, subject(conv), conv.today)  # "Today" is the only other option


def date_typed(conv: Conversation, text: str) -> None:
    day = parse_date(text)
    if isinstance(day, Invalid):
        conv.say(conv.t(day.hint, **day.params))
        return conv.ask_current()
    given_date(conv, subject(conv), day)


def always(conv: Conversation) -> bool:
    return True


@router.prompt(
    Kind.EVENT_DATE, options=date_options, choose=date_chosen, read=date_typed, takes_digits=always
)
def when(conv: Conversation) -> str:
    return conv.t(
        "When? ({step}) Type a date like 2026-09-28, or choose Today.", step=step_label(conv)
    )


# --- replacing a date, deficiency tolerance --------------------------------------------------


def yes_no(conv: Conversation, t: Text) -> list[UiOption]:
    return [UiOption("yes", t("Yes")), UiOption("no", t("No"))]


def replace_chosen(conv: Conversation, option_id: str) -> None:
    waiting = conv.session.awaiting
    assert waiting is not None and waiting.day is not None
    if option_id == "yes":
        return record(conv, waiting.subject, waiting.day)
    conv.say(conv.t("Nothing was changed."))
    show(conv)


@router.prompt(Kind.EVENT_CONFIRM, options=yes_no, choose=replace_chosen)
def replace(conv: Conversation) -> str:
    t, waiting = conv.t, conv.session.awaiting
    event = conv.flows.timeline.event(subject(conv))
    assert event is not None and waiting is not None and waiting.day is not None
    old = dt.date.fromisoformat(conv.session.events[event.id])
    return t(
        "You reported “{step}” on {old}. Replace it with {new}?",
        step=t(event.done),
        old=t.date(old, "medium"),
        new=t.date(waiting.day, "medium"),
    )


def deficiency_chosen(conv: Conversation, option_id: str) -> None:
    conv.session.deficiency_tolerance = option_id == "yes"
    show(conv)


@router.prompt(Kind.DEFICIENCY, options=yes_no, choose=deficiency_chosen)
def deficiency(conv: Conversation) -> str:
    return conv.t(conv.flows.timeline.deficiency_question)
