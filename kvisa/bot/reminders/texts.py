"""The reminder messages: the user's language first, the other below, in one message. Pure."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Catalogs, Lang, Text, bilingual
from kvisa.bot.messages import Outbound, UiOption
from kvisa.bot.policy.reminders import Delivery
from kvisa.bot.policy.timeline import Timeline
from kvisa.bot.policy.zones import shanghai_today

DONE, LATER = "rem:done:", "rem:later:"


def _deadline_text(
    t: Text,
    flows: Flows,
    delivery: Delivery,
    timeline: Timeline | None,
    today: dt.date,
    zone: dt.tzinfo,
) -> str:
    reminder = delivery.reminder
    deadline = (
        next((d for d in timeline.deadlines if d.id == reminder.target), None) if timeline else None
    )
    rule = next(d for d in flows.timeline.deadlines if d.id == reminder.target)
    title, act_by = t(rule.title), t.date(reminder.day, "full")
    if delivery.how == "passed":
        return "\n".join(
            [
                t("⚠️ The deadline has passed: {title}, by {date}.", title=title, date=act_by),
                t(
                    "What to do now: if it is done, press Done to record it. If not, contact "
                    "the agency today, or your employer if you have one; send /timeline to see "
                    "where you stand."
                ),
            ]
        )
    days = (reminder.day - today).days
    lines = []
    if delivery.how == "late":
        lines.append(
            t(
                "Sorry, this reminder comes late: it was due on {date}.",
                date=t.date(reminder.at.astimezone(zone).date(), "medium"),
            )
        )
    if days <= 0:
        lines.append(t("⏰ Today is the last day: {title} ({date}).", title=title, date=act_by))
    else:
        lines.append(
            t.plural(
                "⏰ Reminder: {title}, by {date} (in {n} day).",
                "⏰ Reminder: {title}, by {date} (in {n} days).",
                days,
                title=title,
                date=act_by,
            )
        )
    if deadline is not None and deadline.office_closed:
        lines.append(
            t(
                "{date} is not a working day: act by {act_by}.",
                date=t.date(deadline.date, "medium"),
                act_by=t.date(deadline.act_by, "medium"),
            )
        )
    lines.append(t("Press Done once it is done, or ask me to remind you tomorrow."))
    return "\n".join(lines)


def _nudge_text(t: Text, flows: Flows, delivery: Delivery) -> str:
    reminder = delivery.reminder
    estimate = next(e for e in flows.timeline.estimates if e.id == reminder.target)
    lines = [
        t(
            "⏳ {title}: by {date} at the latest. Has it arrived?",
            title=t(estimate.title),
            date=t.date(reminder.day, "medium"),
        ),
        t("If it has, press the button below and I will record it with today's date."),
    ]
    return "\n".join(lines)


def options(t: Text, flows: Flows, delivery: Delivery) -> tuple[UiOption, ...]:
    """Buttons that work whatever the conversation is waiting for (no prompt number)."""
    reminder = delivery.reminder
    if reminder.kind == "nudge":
        estimate = next(e for e in flows.timeline.estimates if e.id == reminder.target)
        event = flows.timeline.event(estimate.nudge or "")
        done_label = t(event.label) if event else t("Done")
    else:
        done_label = t("Done")
    buttons = [UiOption(DONE + reminder.target, done_label)]
    if delivery.how != "passed":
        buttons.append(UiOption(LATER + reminder.target, t("Remind me tomorrow")))
    return tuple(buttons)


def message(
    flows: Flows,
    catalogs: Catalogs,
    lang: Lang,
    delivery: Delivery,
    timeline: Timeline | None,
    zone: dt.tzinfo,
    now: dt.datetime,
) -> Outbound:
    """The reminder for `delivery`, in `lang` then the other language, with its buttons."""
    today = shanghai_today(now)
    if delivery.reminder.kind == "nudge":
        text = bilingual(catalogs, lang, lambda t: _nudge_text(t, flows, delivery))
    else:
        text = bilingual(
            catalogs, lang, lambda t: _deadline_text(t, flows, delivery, timeline, today, zone)
        )
    return Outbound(text, options(catalogs[lang], flows, delivery))
