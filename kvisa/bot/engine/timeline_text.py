"""The /timeline message: every step, deadline and decision window in date order."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Text
from kvisa.bot.policy.timeline import Deadline, Timeline


def _day(t: Text, day: dt.date, estimated: bool) -> str:
    return ("≈" if estimated else "") + t.date(day, "medium")


def next_action(timeline: Timeline) -> Deadline | None:
    """The earliest deadline still to meet that has not passed."""
    return next(
        (
            d
            for d in timeline.deadlines
            if d.kind == "action" and not d.met and d.act_by >= timeline.today
        ),
        None,
    )


def timeline_text(t: Text, flows: Flows, timeline: Timeline) -> str:
    today = timeline.today
    lines = [t("Your timeline (dates in Shanghai, on China's official working-day calendar):")]
    upcoming = next_action(timeline)
    if upcoming:
        days = (upcoming.act_by - today).days
        lines.append(
            t.plural(
                "Next: {title}, by {date} (in {n} day).",
                "Next: {title}, by {date} (in {n} days).",
                days,
                title=t(upcoming.title),
                date=t.date(upcoming.act_by, "full"),
            )
        )
    lines.append("")
    # Conditions come before the application they are checked at (the passport's validity):
    # first, whatever their date.
    for condition in (d for d in timeline.deadlines if d.kind == "condition"):
        row = f"{'ℹ️' if condition.met else '⚠️'} {_day(t, condition.date, condition.estimated)}"
        lines.append(f"{row} · {t(condition.title)}")
        if not condition.met:
            lines.append("    " + t("That is before you would apply: renew your passport first."))
    rows: list[tuple[dt.date, int, str]] = []
    for event in flows.timeline.events:
        if event.id in timeline.events:
            rows.append(
                (
                    timeline.events[event.id],
                    0,
                    f"✓ {t.date(timeline.events[event.id], 'medium')} · {t(event.done)}",
                )
            )
    for deadline in (d for d in timeline.deadlines if d.kind == "action"):
        mark = "✓" if deadline.met else "⚠️" if deadline.act_by < today else "☐"
        row = f"{mark} {_day(t, deadline.act_by, deadline.estimated)} · {t(deadline.title)}"
        if deadline.office_closed and not deadline.met:
            holiday = deadline.holiday(t.lang)
            row += "\n    " + (
                t(
                    "{date} is {holiday}: offices are closed, act by {act_by}.",
                    date=t.date(deadline.date, "medium"),
                    holiday=holiday,
                    act_by=t.date(deadline.act_by, "medium"),
                )
                if holiday
                else t(
                    "{date} is not a working day: act by {act_by}.",
                    date=t.date(deadline.date, "medium"),
                    act_by=t.date(deadline.act_by, "medium"),
                )
            )
        rows.append((deadline.act_by, 1, row))
    for estimate in timeline.estimates:
        span = t(
            "{earliest} – {latest}",
            earliest=_day(t, estimate.earliest, estimate.estimated),
            latest=_day(t, estimate.latest, estimate.estimated),
        )
        row = f"… {span} · {t(estimate.title)}"
        if estimate.note:
            row += "\n    " + t(estimate.note)
        rows.append((estimate.earliest, 2, row))
    rows.sort(key=lambda row: (row[0], row[1]))
    lines += [row for _, _, row in rows]
    lines.append("")
    lines.append("→ " + t("Today: {date}", date=t.date(today, "medium")))
    if timeline.estimated:
        lines.append(
            t(
                "≈ estimated: the official holiday calendar for that year is not published yet, "
                "so working days may still move."
            )
        )
    lines.append(
        t(
            "Report a step below when it happens; "
            "send /calendar to add the deadlines to your phone's calendar."
        )
    )
    return "\n".join(lines)
