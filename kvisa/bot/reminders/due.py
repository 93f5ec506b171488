"""What a user's reminders call for at a given moment: which to send now, how, and when to
look again. Pure: the stored session and a time in, decisions out.

A reminder that could not go out on time (the service was down, the user's quiet hours) is
sent late, with wording that says so, as long as its deadline has not passed; several missed
reminders of one deadline become one message. Once the act-by day has passed, the user gets
a single "the deadline has passed" message instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from kvisa.bot.content.model import COMPUTED_FROM, Flows
from kvisa.bot.engine.answers import typed
from kvisa.bot.policy.timeline import PLANNED_APPLICATION, Timeline, build_timeline
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.reminders.plan import RESIDENCE, Reminder, deliverable, plan, user_zone

How = Literal["on_time", "late", "passed"]
# Past this delay a reminder says it is late (a queue of due reminders takes minutes).
LATE_AFTER = dt.timedelta(hours=1)
TIME_ZONE = "time_zone"  # the answer naming the clock, when the country of residence has several
# What planned() reads of a stored session besides its answers.
PLAN_FIELDS = ("events", "deficiency_tolerance", "snoozed", "reminders_dismissed")
_SHANGHAI = ZoneInfo(SHANGHAI)


def shanghai_today(at: dt.datetime) -> dt.date:
    return at.astimezone(_SHANGHAI).date()


@dataclass(frozen=True)
class Delivery:
    """One message to send now. `key` is its ledger identity; `covers` are the ledger keys of
    every reminder it settles (older missed reminders of the same deadline)."""

    how: How
    reminder: Reminder
    key: str
    covers: tuple[str, ...]


@dataclass(frozen=True)
class Outlook:
    """A user's reminders at one moment."""

    zone: ZoneInfo
    timeline: Timeline | None
    reminders: tuple[Reminder, ...]  # planned, sent or not
    deliveries: tuple[Delivery, ...]  # due now
    next_at: dt.datetime | None  # when something may become due (UTC)
    next_reminder: Reminder | None


def passed_key(user: str, reminder: Reminder) -> str:
    return f"{user}|passed|{reminder.target}|{reminder.day.isoformat()}"


def active(data: Mapping[str, Any] | None) -> bool:
    """Whether reminders go to this user at all: consented, not paused, not blocked."""
    return bool(
        data
        and data.get("consent_at")
        and not data.get("reminders_paused")
        and not data.get("inactive")
    )


def timeline_of(flows: Flows, data: Mapping[str, Any], today: dt.date) -> Timeline:
    answers = data.get("answers", {})
    typed_answers = {q.id: typed(q, answers[q.id]) for q in flows.questions if q.id in answers}
    events = {k: dt.date.fromisoformat(v) for k, v in data.get("events", {}).items()}
    return build_timeline(flows, typed_answers, events, today, data.get("deficiency_tolerance"))


def plan_answers(flows: Flows) -> frozenset[str]:
    """The answers planned() reads: the one that starts the timeline, those that set the
    user's clock, and those behind the facts the timeline's rules test (followed through the
    derived and computed facts). Any other answer, such as most of the interview's, cannot
    change a user's reminders."""
    rules = flows.timeline
    pending = [
        name for deadline in rules.deadlines if deadline.when for name in deadline.when.facts
    ]
    pending += [
        name
        for estimate in rules.estimates
        for variant in estimate.variants
        for name in variant.when.facts
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            if name in flows.derived:
                pending += flows.derived[name].facts
            pending += COMPUTED_FROM.get(name, ())
    return frozenset(seen & {q.id for q in flows.questions}) | {
        PLANNED_APPLICATION,
        RESIDENCE,
        TIME_ZONE,
    }


def plan_inputs(
    state: Mapping[str, Any] | None, answers_read: frozenset[str]
) -> tuple[Any, ...] | None:
    """Everything of `state` that planned() and active() read (answers_read: plan_answers()):
    two states with equal inputs have the same reminders on the same day."""
    if state is None:
        return None
    answers = state.get("answers", {})
    return (
        active(state),
        {k: v for k, v in answers.items() if k in answers_read},
        *(state.get(k) for k in PLAN_FIELDS),
    )


def planned(
    flows: Flows, data: Mapping[str, Any], today: dt.date
) -> tuple[ZoneInfo, Timeline, list[Reminder]]:
    """The user's zone, timeline and every reminder planned for them (sent or not)."""
    timeline = timeline_of(flows, data, today)
    answers = data.get("answers", {})
    zone = user_zone(answers, timeline.events, answers.get(TIME_ZONE))
    dismissed = data.get("reminders_dismissed", {})
    reminders = [
        r
        for r in plan(flows, timeline, zone, data.get("snoozed", {}))
        if dismissed.get(r.target) != r.day.isoformat()
    ]
    return zone, timeline, reminders


def outlook(flows: Flows, user: str, data: Mapping[str, Any] | None, now: dt.datetime) -> Outlook:
    """What is due for `user` at `now` and when to look again (None: nothing planned, or the
    user gets no reminders: paused, blocked, or nothing stored)."""
    if not active(data):
        return Outlook(_SHANGHAI, None, (), (), None, None)
    assert data is not None
    rules = flows.timeline.reminders
    today = shanghai_today(now)
    zone, timeline, reminders = planned(flows, data, today)
    sent = data.get("reminders_sent", {})
    seen = dt.datetime.fromisoformat(data["last_seen"]) if data.get("last_seen") else None
    groups: dict[tuple[str, str, dt.date], list[Reminder]] = {}
    for reminder in reminders:
        groups.setdefault((reminder.kind, reminder.target, reminder.day), []).append(reminder)
    deliveries = []
    later: list[tuple[dt.datetime, Reminder]] = []
    quiet_until = deliverable(now, zone, rules)  # now, or the user's next morning
    for (kind, _, day), group in groups.items():
        unsent = [r for r in group if r.key(user) not in sent]
        later += [(r.at, r) for r in unsent if r.at > now]
        due = [r for r in unsent if r.at <= now]
        if not due:
            continue
        latest = max(due)
        covers = tuple(r.key(user) for r in due)
        if kind == "deadline" and day < today:
            # Passed: one message, unless a reminder of this date did reach the user.
            if len(unsent) == len(group) and passed_key(user, latest) not in sent:
                delivery = Delivery("passed", latest, passed_key(user, latest), covers)
            else:
                continue
        elif seen is not None and seen - latest.at > LATE_AFTER:
            continue  # the user has been in the chat well after it was due: nothing to catch up
        else:
            how: How = "late" if now - latest.at > LATE_AFTER else "on_time"
            delivery = Delivery(how, latest, latest.key(user), covers)
        if quiet_until > now:
            later.append((quiet_until, latest))
        else:
            deliveries.append(delivery)
    deliveries.sort(key=lambda d: d.reminder)
    upcoming = min(later, default=None)
    return Outlook(
        zone,
        timeline,
        tuple(reminders),
        tuple(deliveries),
        upcoming[0] if upcoming else None,
        upcoming[1] if upcoming else None,
    )
