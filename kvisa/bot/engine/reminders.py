"""Reminders in the chat: /reminders (what is scheduled, pause and resume), and the buttons
every reminder carries ("Done", "Remind me tomorrow"), which work whatever the conversation
is waiting for: their option ids name what they act on."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from kvisa.bot.engine.types import UiOption
from kvisa.bot.i18n import Text
from kvisa.bot.policy.timeline import event_problem
from kvisa.bot.policy.zones import ZoneChoice
from kvisa.bot.reminders.due import planned

if TYPE_CHECKING:
    from kvisa.bot.engine.turn import Turn

PREFIX = "rem:"
PAUSE, RESUME, DONE, LATER = "rem:pause", "rem:resume", "rem:done:", "rem:later:"
BACK = "_done"


def options(turn: Turn, t: Text) -> list[UiOption]:
    switch = (
        UiOption(RESUME, t("Resume reminders"))
        if turn.session.reminders_paused
        else UiOption(PAUSE, t("Pause reminders"))
    )
    return [switch, UiOption(BACK, t("Done"))]


def prompt_text(turn: Turn) -> str:
    """What is scheduled, in the user's time zone, from the same plan the service delivers."""
    s, t = turn.session, turn.t
    now = turn.inbound.at
    zone, _, reminders = planned(turn.flows, s.to_json(), turn.today)
    sent = s.reminders_sent
    user = str(turn.inbound.user)
    upcoming = [r for r in reminders if r.at > now and r.key(user) not in sent]
    titles = {d.id: d.title for d in turn.flows.timeline.deadlines}
    titles |= {e.id: e.title for e in turn.flows.timeline.estimates}
    lines = []
    if s.reminders_paused:
        lines.append(t("Your reminders are paused: nothing is sent until you resume them."))
    if not upcoming:
        lines.append(
            t(
                "No reminders are scheduled. They start once you report a step in /timeline, "
                "for example your entry into China."
            )
        )
    else:
        lines.append(
            t(
                "Your reminders (times in your time zone, {zone}):",
                zone=ZoneChoice(zone.key, (zone.key,)).label(t.locale),
            )
        )
        for reminder in upcoming:
            local = reminder.at.astimezone(zone)
            when = f"{t.date(local.date(), 'medium')} {local:%H:%M}"
            if reminder.kind == "nudge":
                lines.append(
                    "• "
                    + t(
                        "{when}: {title}? (a question)", when=when, title=t(titles[reminder.target])
                    )
                )
            else:
                lines.append(
                    "• "
                    + t(
                        "{when}: {title}, by {date}",
                        when=when,
                        title=t(titles[reminder.target]),
                        date=t.date(reminder.day, "medium"),
                    )
                )
    lines.append(t("Policy news from the agency is a separate choice and is not affected here."))
    return "\n".join(lines)


def show(turn: Turn) -> None:
    turn.await_("reminders")


def action(turn: Turn, option_id: str) -> None:
    """A reminder button (or a /reminders choice): rem:done:<target>, rem:later:<target>,
    rem:pause, rem:resume."""
    s, t = turn.session, turn.t
    if option_id in (PAUSE, RESUME):
        s.reminders_paused = option_id == PAUSE
        turn.say(
            t("Reminders paused. Send /reminders to resume them.")
            if s.reminders_paused
            else t("Reminders resumed.")
        )
        return turn.resume() if s.awaiting_kind() == "reminders" else turn.ask_current()
    verb, _, target = option_id.removeprefix(PREFIX).partition(":")
    if verb == "done":
        done(turn, target)
    elif verb == "later":
        later(turn, target)
    else:
        return turn.stale()
    if s.awaiting_kind() != "deficiency":
        turn.ask_current()


def _target(turn: Turn, target: str) -> tuple[str, str | None, dt.date | None] | None:
    """(title, event that fulfils it, act-by day) of a deadline or a nudged estimate."""
    from kvisa.bot.engine.reports import timeline_of

    timeline = timeline_of(turn)
    rules = turn.flows.timeline
    # Only what the user's timeline has now: a reminder of a date since erased is not current.
    for rule in rules.deadlines:
        deadline = next((d for d in timeline.deadlines if d.id == target), None)
        if rule.id == target and rule.kind == "action" and deadline is not None:
            return rule.title, rule.met_by, deadline.act_by
    for estimate in rules.estimates:
        if (
            estimate.id == target
            and estimate.nudge
            and any(e.id == target for e in timeline.estimates)
        ):
            return estimate.title, estimate.nudge, None
    return None


def done(turn: Turn, target: str) -> None:
    s, t = turn.session, turn.t
    found = _target(turn, target)
    if found is None:
        return turn.say(t("That reminder is no longer current."))
    title, event_id, act_by = found
    if event_id is None:  # nothing to record (the end of a stay): stop reminding of this date
        if act_by is not None:
            s.reminders_dismissed[target] = act_by.isoformat()
        return turn.say(t("Noted: no more reminders for “{title}”.", title=t(title)))
    event = turn.flows.timeline.event(event_id)
    assert event is not None
    if event_id in s.events:
        return turn.say(
            t(
                "Already recorded: {step} ({date}).",
                step=t(event.done),
                date=t.date(dt.date.fromisoformat(s.events[event_id]), "medium"),
            )
        )
    events = {k: dt.date.fromisoformat(v) for k, v in s.events.items()}
    problem = event_problem(turn.flows, events, event_id, turn.today, turn.today)
    from kvisa.bot.engine.reports import (
        asks_deficiency,
        say_event_problem,
    )  # reports imports this module

    if problem:
        say_event_problem(turn, problem)
        return turn.say(t("Send /timeline to correct your dates."))
    s.events[event_id] = turn.today.isoformat()
    s.snoozed.pop(target, None)
    turn.say(
        t(
            "Recorded: {step}, today ({date}). No more reminders for “{title}”.",
            step=t(event.done),
            date=t.date(turn.today, "medium"),
            title=t(title),
        )
    )
    if asks_deficiency(turn, event_id):
        turn.await_("deficiency")


def later(turn: Turn, target: str) -> None:
    s, t = turn.session, turn.t
    found = _target(turn, target)
    if found is None:
        return turn.say(t("That reminder is no longer current."))
    title, _, act_by = found
    tomorrow = turn.today + dt.timedelta(days=1)
    if act_by is not None and tomorrow > act_by:
        return turn.say(
            t("Today is the last day for “{title}”: tomorrow would be too late.", title=t(title))
        )
    s.snoozed[target] = tomorrow.isoformat()
    turn.say(
        t("All right: I will remind you again tomorrow, {date}.", date=t.date(tomorrow, "medium"))
    )
