"""A user's reminders: which to send and when, at a civil hour of their own day, and what is
due at a given moment. Pure: the stored session and a time in, decisions out.

Times are aware datetimes in UTC; the user's clock decides the local hour. 09:00 exists on
every day in every zone (daylight-saving changes happen at night), so a reminder planned for
the morning never lands in the quiet hours.

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

from kvisa.bot.content.model import COMPUTED_FROM, Flows, ReminderRules
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.timeline import PLANNED_APPLICATION, Timeline, build_timeline
from kvisa.bot.policy.zones import SHANGHAI, home_zone, shanghai_today

RESIDENCE = "residence_country"  # the answer whose clock a user has before entering China

Kind = Literal["deadline", "nudge"]


@dataclass(frozen=True, order=True)
class Reminder:
    """One message to deliver. `key` is its identity for the exactly-once ledger: it changes
    when the date it announces changes, so a moved deadline is announced again."""

    at: dt.datetime  # when to deliver (UTC)
    kind: Kind
    target: str  # deadline id, or estimate id for a nudge
    offset: int  # days before the act-by day (0: the morning of the day); 0 for nudges
    day: dt.date  # the act-by day announced, or the estimate's latest day for a nudge

    def key(self, user: str) -> str:
        return f"{user}|{self.kind}|{self.target}|{self.day.isoformat()}|{self.offset}"


def user_zone(
    answers: Mapping[str, object], events: Mapping[str, dt.date], chosen: str | None
) -> ZoneInfo:
    """Shanghai once the user has entered China; before, the clock of their country of residence."""
    if "entered" in events:
        return SHANGHAI
    country = answers.get(RESIDENCE)
    return ZoneInfo(home_zone(country if isinstance(country, str) else None, chosen))


def civil_time(day: dt.date, zone: ZoneInfo, hour: int) -> dt.datetime:
    """`hour`:00 local on `day`, as UTC."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(dt.UTC)


def deliverable(at: dt.datetime, zone: ZoneInfo, rules: ReminderRules) -> dt.datetime:
    """`at`, or the next civil delivery time when `at` falls in the user's quiet hours."""
    local = at.astimezone(zone)
    if rules.quiet_until <= local.hour < rules.quiet_from:
        return at
    day = local.date() if local.hour < rules.quiet_until else local.date() + dt.timedelta(days=1)
    return civil_time(day, zone, rules.hour)


def plan(
    flows: Flows, timeline: Timeline, zone: ZoneInfo, snoozed: Mapping[str, str] = {}
) -> list[Reminder]:
    """Every reminder for the timeline's open action deadlines and pending decisions, past and
    future (the scheduler decides what a missed one becomes). `snoozed` maps a deadline id (or
    an estimate id, for a nudge) to the ISO day the user asked to be reminded again ("remind me
    tomorrow")."""
    rules = flows.timeline.reminders
    reminders = []
    for deadline in timeline.deadlines:
        if deadline.kind != "action" or deadline.met:
            continue
        for offset in rules.offsets:
            day = deadline.act_by - dt.timedelta(days=offset)
            reminders.append(
                Reminder(
                    civil_time(day, zone, rules.hour),
                    "deadline",
                    deadline.id,
                    offset,
                    deadline.act_by,
                )
            )
        if deadline.id in snoozed:
            again = dt.date.fromisoformat(snoozed[deadline.id])
            if again <= deadline.act_by:
                offset = (deadline.act_by - again).days
                reminders.append(
                    Reminder(
                        civil_time(again, zone, rules.hour),
                        "deadline",
                        deadline.id,
                        offset,
                        deadline.act_by,
                    )
                )
    nudges = {e.id: e.nudge for e in flows.timeline.estimates if e.nudge}
    for estimate in timeline.estimates:
        event = nudges.get(estimate.id)
        if event and event not in timeline.events:
            day = estimate.latest + dt.timedelta(days=1)
            reminders.append(
                Reminder(
                    civil_time(day, zone, rules.hour), "nudge", estimate.id, 0, estimate.latest
                )
            )
            if estimate.id in snoozed:
                # Asked again on the snooze day; the offset (negative: days after the latest
                # expected day) gives the repeated question a ledger key of its own.
                again = max(dt.date.fromisoformat(snoozed[estimate.id]), day)
                reminders.append(
                    Reminder(
                        civil_time(again, zone, rules.hour),
                        "nudge",
                        estimate.id,
                        (estimate.latest - again).days,
                        estimate.latest,
                    )
                )
    return sorted(set(reminders))


How = Literal["on_time", "late", "passed"]
# Past this delay a reminder says it is late (a queue of due reminders takes minutes).
LATE_AFTER = dt.timedelta(hours=1)
TIME_ZONE = "time_zone"  # the answer naming the clock, when the country of residence has several
# What planned() reads of a stored session besides its answers.
PLAN_FIELDS = ("events", "deficiency_tolerance", "snoozed", "reminders_dismissed")


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
    """The timeline of a stored session (its answers, reported steps and deficiency choice)."""
    answers = answer_values(flows, data.get("answers", {}))
    events = {k: dt.date.fromisoformat(v) for k, v in data.get("events", {}).items()}
    return build_timeline(flows, answers, events, today, data.get("deficiency_tolerance"))


def plan_answers(flows: Flows) -> frozenset[str]:
    """The answers planned() reads: the one that starts the timeline, those that set the
    user's clock, and those behind the facts the timeline's rules test (followed through the
    derived and computed facts), and those a condition is counted back from. Any other answer,
    such as most of the interview's, cannot change a user's reminders."""
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
    # A condition counted back from an answer (the passport's expiry) is never reminded, but
    # it is part of the timeline planned() returns.
    counted_back = {deadline.before for deadline in rules.deadlines if deadline.before}
    return frozenset((seen | counted_back) & {q.id for q in flows.questions}) | {
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
        return Outlook(SHANGHAI, None, (), (), None, None)
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
