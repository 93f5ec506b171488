"""The user's deadlines as an iCalendar file (RFC 5545) for Google, Apple and Outlook calendars.

Each deadline is an all-day event on its act-by day with two reminders; each expected office
decision is an all-day span without reminders. An event keeps its UID from one export to the
next, so importing a newer file moves the event instead of adding a second one.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from icalendar import Alarm, Calendar, Event

from kvisa.bot.i18n import N_, Text
from kvisa.bot.policy.timeline import Deadline, Estimate, Timeline
from kvisa.bot.policy.zones import SHANGHAI

PRODID = "-//KVisa bot//Timeline//EN"
UID_DOMAIN = "kvisa.bot"
DAY = dt.timedelta(days=1)
# An all-day event starts at midnight, so "one day before" would ring at midnight: these ring
# at 09:00 on the phone's clock, three days before and the day before the act-by day.
REMINDERS = (
    (-dt.timedelta(days=2, hours=15), N_("{title}: 3 days left to act")),
    (-dt.timedelta(hours=15), N_("{title}: the last day to act is tomorrow")),
)
ESTIMATED_NOTE = N_(
    "Estimated: that year's official holiday calendar is not published yet, so this may still move."
)
_SEQUENCE_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def timeline_ics(
    timeline: Timeline,
    t: Text,
    user_ref: str,
    stamp: dt.datetime,
) -> bytes:
    """The timeline's deadlines and decision windows as an .ics file in `t`'s language.

    `user_ref` is any stable per-user string; only a hash of it leaves (in the UIDs). `stamp`
    is the export time (timezone-aware); the same arguments always give the same bytes.
    """
    if stamp.tzinfo is None:
        raise ValueError("stamp must be timezone-aware")
    stamp = stamp.astimezone(dt.UTC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", t("K visa deadlines"))
    calendar.add("x-wr-timezone", SHANGHAI.key)
    for deadline in timeline.deadlines:
        # A condition (the passport's validity) is not a day to act on: an alarm would ring
        # for nothing.
        if deadline.kind == "condition":
            continue
        event = _all_day(user_ref, deadline.id, stamp, deadline.act_by, deadline.act_by)
        event.add("summary", t(deadline.title))
        event.add("description", _deadline_description(deadline, t))
        event.add("status", "TENTATIVE" if deadline.estimated else "CONFIRMED")
        for trigger, message in REMINDERS:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", t(message, title=t(deadline.title)))
            alarm.add("trigger", trigger)  # relative to DTSTART
            event.add_component(alarm)
        calendar.add_component(event)
    for estimate in timeline.estimates:
        event = _all_day(user_ref, estimate.id, stamp, estimate.earliest, estimate.latest)
        event.add("summary", t(estimate.title))  # "Visa decision expected"
        event.add("description", _estimate_description(estimate, t))
        event.add("status", "TENTATIVE")  # an expectation, never a confirmed date
        calendar.add_component(event)
    ics: bytes = calendar.to_ical()  # CRLF line ends, lines folded at 75 octets
    return ics


def event_uid(user_ref: str, item_id: str) -> str:
    """The UID of one deadline or estimate of one user: from neither the date nor the raw ref,
    so a moved date updates the imported event and the file does not reveal who it is for."""
    digest = hashlib.sha256(f"{user_ref}:{item_id}".encode()).hexdigest()
    return f"{digest[:24]}@{UID_DOMAIN}"


def _sequence(stamp: dt.datetime) -> int:
    # Calendars keep an imported event unless the new copy has a higher SEQUENCE (DTSTAMP
    # breaks ties). Minutes of the export clock only grow, so each export supersedes every
    # earlier one whichever way a date moved; a SEQUENCE taken from the date would fall when a
    # corrected entry date moves a deadline earlier, and the stale date would stay. Minutes
    # keep the number within 32 bits for millennia.
    return max(0, int((stamp - _SEQUENCE_EPOCH).total_seconds()) // 60)


def _all_day(
    user_ref: str, item_id: str, stamp: dt.datetime, first: dt.date, last: dt.date
) -> Event:
    event = Event()
    event.add("uid", event_uid(user_ref, item_id))
    event.add("dtstamp", stamp)
    event.add("sequence", _sequence(stamp))
    event.add("dtstart", first)  # a date, not a datetime: VALUE=DATE, an all-day event
    event.add("dtend", last + DAY)  # exclusive
    event.add("transp", "TRANSPARENT")  # a reminder, not a meeting: the day stays free
    return event


def _deadline_description(deadline: Deadline, t: Text) -> str:
    lines = [t("Deadline: {date}.", date=t.date(deadline.date, "full"))]
    act_by = t.date(deadline.act_by, "full")
    holiday = deadline.holiday(t.lang)
    if holiday is not None:
        lines.append(
            t(
                "The deadline falls on {holiday}, when offices are closed: act by {act_by}.",
                holiday=holiday,
                act_by=act_by,
            )
        )
    elif deadline.act_by != deadline.date:
        lines.append(t("Offices are closed on that day: act by {act_by}.", act_by=act_by))
    if deadline.estimated:
        lines.append(t(ESTIMATED_NOTE))
    return "\n".join(lines)


def _estimate_description(estimate: Estimate, t: Text) -> str:
    if estimate.earliest == estimate.latest:
        when = t("Expected on {date}.", date=t.date(estimate.earliest, "full"))
    else:
        when = t(
            "Expected between {earliest} and {latest}.",
            earliest=t.date(estimate.earliest, "long"),
            latest=t.date(estimate.latest, "long"),
        )
    lines = [when, t("This is the usual processing time, not a deadline.")]
    if estimate.note:
        lines.append(t(estimate.note))
    if estimate.estimated:
        lines.append(t(ESTIMATED_NOTE))
    return "\n".join(lines)
