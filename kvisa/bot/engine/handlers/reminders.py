"""Reminders in the chat: /reminders (what is scheduled, pause and resume), and the buttons
every reminder carries ("Done", "Remind me tomorrow"), which work whatever the conversation
is waiting for: their option ids name what they act on."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.engine import render
from kvisa.bot.engine.conversation import Conversation
from kvisa.bot.engine.registry import Router
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import UiOption
from kvisa.bot.policy.reminders import planned
from kvisa.bot.policy.timeline import asks_deficiency, event_problem
from kvisa.bot.policy.zones import ZoneChoice
from kvisa.bot.session import Kind

router = Router()
PREFIX = "rem:"
PAUSE, RESUME, DONE, LATER = "rem:pause", "rem:resume", "rem:done:", "rem:later:"
BACK = "_done"


@router.command(
    "reminders", summary=N_("your reminders: see, pause or resume them"), needs_consent=True
)
def reminders(conv: Conversation, args: str) -> None:
    if not conv.session.finished:
        conv.say(conv.t("Your timeline depends on your answers: let's finish the interview first."))
        return conv.resume()
    conv.wait(Kind.REMINDERS)


def switch(conv: Conversation, t: Text) -> list[UiOption]:
    if conv.session.reminders_paused:
        return [UiOption(RESUME, t("Resume reminders")), UiOption(BACK, t("Done"))]
    return [UiOption(PAUSE, t("Pause reminders")), UiOption(BACK, t("Done"))]


def back(conv: Conversation, option_id: str) -> None:
    conv.resume()  # "Done": the switch is an action (below)


@router.prompt(Kind.REMINDERS, options=switch, choose=back)
def scheduled(conv: Conversation) -> str:
    """What is scheduled, in the user's time zone, from the same plan the service delivers."""
    s, t, now = conv.session, conv.t, conv.inbound.at
    zone, _, planned_reminders = planned(conv.flows, s.to_json(), conv.today)
    user = str(conv.inbound.user)
    upcoming = [r for r in planned_reminders if r.at > now and r.key(user) not in s.reminders_sent]
    titles = titles_of(conv)
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
        label = ZoneChoice(zone.key, (zone.key,)).label(t.locale)
        lines.append(t("Your reminders (times in your time zone, {zone}):", zone=label))
        for reminder in upcoming:
            local = reminder.at.astimezone(zone)
            when = f"{t.date(local.date(), 'medium')} {local:%H:%M}"
            title = t(titles[reminder.target])
            if reminder.kind == "nudge":
                lines.append("• " + t("{when}: {title}? (a question)", when=when, title=title))
            else:
                day = t.date(reminder.day, "medium")
                lines.append(
                    "• " + t("{when}: {title}, by {date}", when=when, title=title, date=day)
                )
    lines.append(t("Policy news from the agency is a separate choice and is not affected here."))
    return "\n".join(lines)


def titles_of(conv: Conversation) -> dict[str, str]:
    rules = conv.flows.timeline
    return {d.id: d.title for d in rules.deadlines} | {e.id: e.title for e in rules.estimates}


@router.action(PREFIX)
def pressed(conv: Conversation, option_id: str) -> None:
    """rem:done:<target>, rem:later:<target>, rem:pause, rem:resume."""
    s, t = conv.session, conv.t
    if option_id in (PAUSE, RESUME):
        s.reminders_paused = option_id == PAUSE
        conv.say(
            t("Reminders paused. Send /reminders to resume them.")
            if s.reminders_paused
            else t("Reminders resumed.")
        )
        return conv.resume() if s.waiting_kind is Kind.REMINDERS else conv.ask_current()
    verb, _, target = option_id.removeprefix(PREFIX).partition(":")
    if verb == "done":
        done(conv, target)
    elif verb == "later":
        later(conv, target)
    else:
        return conv.stale()
    if s.waiting_kind is not Kind.DEFICIENCY:
        conv.ask_current()


def target_of(conv: Conversation, target: str) -> tuple[str, str | None, dt.date | None] | None:
    """(title, event that fulfils it, act-by day) of a deadline or a nudged estimate."""
    timeline, rules = conv.timeline(), conv.flows.timeline
    # Only what the user's timeline has now: a reminder of a date since erased is not current.
    for rule in rules.deadlines:
        deadline = next((d for d in timeline.deadlines if d.id == target), None)
        if rule.id == target and rule.kind == "action" and deadline is not None:
            return rule.title, rule.met_by, deadline.act_by
    estimated = {e.id for e in timeline.estimates}
    for estimate in rules.estimates:
        if estimate.id == target and estimate.nudge and target in estimated:
            return estimate.title, estimate.nudge, None
    return None


def done(conv: Conversation, target: str) -> None:
    s, t = conv.session, conv.t
    found = target_of(conv, target)
    if found is None:
        return conv.say(t("That reminder is no longer current."))
    title, event_id, act_by = found
    if event_id is None:  # nothing to record (the end of a stay): stop reminding of this date
        if act_by is not None:
            s.reminders_dismissed[target] = act_by.isoformat()
        return conv.say(t("Noted: no more reminders for “{title}”.", title=t(title)))
    event = conv.flows.timeline.event(event_id)
    assert event is not None
    if event_id in s.events:
        day = t.date(dt.date.fromisoformat(s.events[event_id]), "medium")
        return conv.say(t("Already recorded: {step} ({date}).", step=t(event.done), date=day))
    events = {k: dt.date.fromisoformat(v) for k, v in s.events.items()}
    problem = event_problem(conv.flows, events, event_id, conv.today, conv.today)
    if problem:
        conv.say(render.event_problem(t, conv.flows, problem))
        return conv.say(t("Send /timeline to correct your dates."))
    s.events[event_id] = conv.today.isoformat()
    s.snoozed.pop(target, None)
    conv.say(
        t(
            "Recorded: {step}, today ({date}). No more reminders for “{title}”.",
            step=t(event.done),
            date=t.date(conv.today, "medium"),
            title=t(title),
        )
    )
    if asks_deficiency(conv.flows, conv.facts(), event_id):
        conv.wait(Kind.DEFICIENCY)


def later(conv: Conversation, target: str) -> None:
    s, t = conv.session, conv.t
    found = target_of(conv, target)
    if found is None:
        return conv.say(t("That reminder is no longer current."))
    title, _, act_by = found
    tomorrow = conv.today + dt.timedelta(days=1)
    if act_by is not None and tomorrow > act_by:
        return conv.say(
            t("Today is the last day for “{title}”: tomorrow would be too late.", title=t(title))
        )
    s.snoozed[target] = tomorrow.isoformat()
    day = t.date(tomorrow, "medium")
    conv.say(t("All right: I will remind you again tomorrow, {date}.", date=day))
