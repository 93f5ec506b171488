"""Which reminders a user should get and when, at a civil hour of their own day. Pure.

Times are aware datetimes in UTC; the user's clock decides the local hour. 09:00 exists on
every day in every zone (daylight-saving changes happen at night), so a reminder planned for
the morning never lands in the quiet hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from kvisa.bot.content.model import Flows, ReminderRules
from kvisa.bot.policy.timeline import Timeline
from kvisa.bot.policy.zones import SHANGHAI, home_zone

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
        return ZoneInfo(SHANGHAI)
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
