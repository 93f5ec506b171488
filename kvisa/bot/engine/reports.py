"""The timeline in the chat: /timeline, /calendar, and reporting a step with its date."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Any

from kvisa.bot.attachments.calendar_file import timeline_ics
from kvisa.bot.attachments.picture import render_timeline_png
from kvisa.bot.content.model import Condition
from kvisa.bot.engine.answers import Rejected, parse_date
from kvisa.bot.engine.timeline_text import timeline_text
from kvisa.bot.engine.types import Attachment, Outbound, UiOption
from kvisa.bot.i18n import Text
from kvisa.bot.policy.timeline import Timeline, build_timeline, event_problem

if TYPE_CHECKING:
    from kvisa.bot.engine.turn import Turn

TODAY, CANCEL = "_today", "_cancel"


def timeline_of(turn: Turn) -> Timeline:
    s = turn.session
    events = {k: dt.date.fromisoformat(v) for k, v in s.events.items()}
    return build_timeline(
        turn.flows, turn.typed_answers(), events, turn.today, s.deficiency_tolerance
    )


def options(turn: Turn, kind: str, t: Text) -> list[UiOption]:
    s = turn.session
    if kind == "report":
        result = []
        for event in turn.flows.timeline.events:
            label = t(event.label)
            if event.id in s.events:
                label += " ✓ " + t.date(dt.date.fromisoformat(s.events[event.id]), "medium")
            result.append(UiOption(event.id, label))
        return result + [UiOption(CANCEL, t("Done"))]
    if kind == "event_date":
        return [UiOption(TODAY, t("Today")), UiOption(CANCEL, t("Cancel"))]
    if kind in ("event_confirm", "deficiency"):
        return [UiOption("yes", t("Yes")), UiOption("no", t("No"))]
    return []


def prompt_text(turn: Turn, kind: str) -> str:
    t, s = turn.t, turn.session
    awaiting: dict[str, Any] = s.awaiting or {}
    if kind == "report":
        return t("Which step do you want to report?")
    if kind == "event_date":
        event = turn.flows.timeline.event(awaiting["id"])
        assert event is not None
        return t(
            "When? ({step}) Type a date like 2026-09-28, or choose Today.", step=t(event.label)
        )
    if kind == "event_confirm":
        event = turn.flows.timeline.event(awaiting["id"])
        assert event is not None
        return t(
            "You reported “{step}” on {old}. Replace it with {new}?",
            step=t(event.done),
            old=t.date(dt.date.fromisoformat(s.events[event.id]), "medium"),
            new=t.date(dt.date.fromisoformat(awaiting["date"]), "medium"),
        )
    return t(turn.flows.timeline.deficiency_question)


def show(turn: Turn) -> None:
    """The timeline as text and picture, then the choice of a step to report."""
    t = turn.t
    timeline = timeline_of(turn)
    picture = Attachment(
        "timeline.png",
        "image/png",
        caption=t("Your K visa timeline"),
        make=partial(render_timeline_png, timeline, t),
    )
    turn.out.append(Outbound(timeline_text(t, turn.flows, timeline), attachments=(picture,)))
    turn.await_("report")


def calendar(turn: Turn) -> None:
    t = turn.t
    timeline = timeline_of(turn)
    if not timeline.deadlines:
        turn.say(t("No deadlines yet: report a step (for example your entry into China) first."))
        return turn.await_("report")
    data = timeline_ics(timeline, t, str(turn.inbound.user), turn.inbound.at)
    turn.out.append(
        Outbound(
            t(
                "Your deadlines as a calendar file: open it to add them to your phone's calendar. "
                "Importing it again later updates the same events."
            ),
            attachments=(
                Attachment("kvisa-deadlines.ics", "text/calendar", data, t("K visa deadlines")),
            ),
        )
    )
    turn.resume()


def choose(turn: Turn, kind: str, option_id: str) -> None:
    s = turn.session
    awaiting: dict[str, Any] = s.awaiting or {}
    if option_id == CANCEL:
        return turn.resume()
    if kind == "report":
        return turn.await_("event_date", id=option_id)
    if kind == "event_date":  # only "today" is an option here
        return given_date(turn, awaiting["id"], turn.today)
    if kind == "event_confirm":
        if option_id == "yes":
            return record(turn, awaiting["id"], dt.date.fromisoformat(awaiting["date"]))
        turn.say(turn.t("Nothing was changed."))
        return show(turn)
    if kind == "deficiency":
        s.deficiency_tolerance = option_id == "yes"
        return show(turn)


def typed(turn: Turn, text: str) -> None:
    """A date typed while a step's date is asked for."""
    day = parse_date(text)
    if isinstance(day, Rejected):
        turn.say(turn.t(day.hint, **day.params))
        return turn.ask_current()
    given_date(turn, turn.session.awaiting["id"], day)  # type: ignore[index]


def given_date(turn: Turn, event_id: str, day: dt.date) -> None:
    s = turn.session
    events = {k: dt.date.fromisoformat(v) for k, v in s.events.items() if k != event_id}
    problem = event_problem(turn.flows, events, event_id, day, turn.today)
    if problem:
        say_event_problem(turn, problem)
        return turn.ask_current()
    if event_id in s.events and s.events[event_id] != day.isoformat():
        return turn.await_("event_confirm", id=event_id, date=day.isoformat())
    record(turn, event_id, day)


def say_event_problem(turn: Turn, problem: tuple[str, dict[str, Any]]) -> None:
    """Why a reported date cannot be right, naming the other step involved in the user's language."""
    t = turn.t
    message, params = problem
    if "step" in params:
        other = turn.flows.timeline.event(params["step"])
        params = {
            **params,
            "step": t(other.done) if other else params["step"],
            "date": t.date(params["date"], "medium"),
        }
    turn.say(t(message, **params))


def asks_deficiency(turn: Turn, event_id: str) -> bool:
    """Whether a deadline counted from this event depends on deficiency tolerance (Lingang)."""
    facts = turn.facts()
    for rule in turn.flows.timeline.deadlines:
        if rule.when and "deficiency_tolerance" in rule.when.facts and event_id in rule.after:
            others = Condition(
                tuple(term for term in rule.when.terms if term[0] != "deficiency_tolerance")
            )
            if others.holds(facts):
                return True
    return False


def record(turn: Turn, event_id: str, day: dt.date) -> None:
    turn.session.events[event_id] = day.isoformat()
    if asks_deficiency(turn, event_id):
        return turn.await_("deficiency")
    show(turn)
