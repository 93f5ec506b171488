"""Deadlines and processing windows from the user's dated events, on China's working-day calendar.

The rules (which event, how many days) are in flows/timeline.yaml; this module only counts.
A date is marked `estimated` only when it was counted in China's working days through a year
whose official holiday schedule is not published yet: a count in calendar days or months is
exact (its act-by day is estimated only when moving it off a day off needed such a year), and
a window counted in weekdays abroad does not depend on China's schedule at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kvisa.bot.content.calendar import add_weekdays
from kvisa.bot.content.model import Condition, DeadlineRule, Flows, add_months, latest_start
from kvisa.bot.policy.eligibility import facts_of

PLANNED_APPLICATION = "planned_application"  # the answer that starts the timeline (an event too)
StepId = str  # a step id of flows/timeline.yaml: visa, work_permit, residence_permit
StepStatus = Literal["done", "current", "upcoming"]


@dataclass(frozen=True)
class Deadline:
    """A date by which the user must act. `act_by` is the last working day on or before
    `date` (offices are closed on holidays); `estimated` when the calendar of a year involved
    is not published yet."""

    id: str  # work_permit_apply | lingang_supplement | stay_limit | passport_apply_by
    title: str  # msgid
    date: dt.date
    act_by: dt.date
    estimated: bool
    closed_on_date: str | None = None  # holiday name (English) when `date` is a public holiday
    holiday_zh: str | None = None  # the same name in Chinese
    # An action: the event that fulfils it has been reported. A condition counted back from an
    # answer: it holds for the planned application (not earlier than today).
    met: bool = False
    kind: Literal["action", "condition"] = "action"  # a condition is checked, not acted on

    @property
    def office_closed(self) -> bool:
        """The nominal date is a holiday or weekend, so the user must act earlier."""
        return self.act_by != self.date

    def holiday(self, lang: str) -> str | None:
        return self.holiday_zh if lang == "zh" else self.closed_on_date


@dataclass(frozen=True)
class Estimate:
    """A window in which an office's decision is expected."""

    id: str  # visa_decision | work_permit_decision | residence_permit_decision
    title: str  # msgid
    earliest: dt.date
    latest: dt.date
    estimated: bool
    step: str = ""  # the step whose decision this is (flows/timeline.yaml)
    note: str | None = None  # msgid: how the window was counted, shown with it


@dataclass(frozen=True)
class Step:
    """One of the three steps, as a bar on a date axis: from its start event to its end."""

    id: StepId
    title: str  # msgid
    status: StepStatus
    start: dt.date | None  # None when not started and no date can be projected
    end: dt.date | None  # the decision (or its latest estimate)
    end_estimated: bool  # True when `end` is an estimate, not a reported event


@dataclass(frozen=True)
class Timeline:
    today: dt.date
    events: dict[str, dt.date]
    steps: tuple[Step, ...]
    deadlines: tuple[Deadline, ...]
    estimates: tuple[Estimate, ...]

    @property
    def estimated(self) -> bool:
        return any(d.estimated for d in self.deadlines) or any(e.estimated for e in self.estimates)


def first_known(after: tuple[str, ...], known: Mapping[str, dt.date]) -> dt.date | None:
    return next((known[event] for event in after if event in known), None)


def known_events(
    answers: Mapping[str, Any], events: Mapping[str, dt.date], today: dt.date
) -> dict[str, dt.date]:
    """Reported events plus the planned application date (today when not given)."""
    return {PLANNED_APPLICATION: answers.get(PLANNED_APPLICATION) or today, **events}


def build_timeline(
    flows: Flows,
    answers: Mapping[str, Any],
    events: Mapping[str, dt.date],
    today: dt.date,
    deficiency_tolerance: bool | None = None,
) -> Timeline:
    """Deadlines, decision windows and step bars for answer values and reported events."""
    calendar, rules = flows.calendar, flows.timeline
    extra = {} if deficiency_tolerance is None else {"deficiency_tolerance": deficiency_tolerance}
    facts = facts_of(flows, answers, extra)
    known = known_events(answers, events, today)
    order = [e.id for e in rules.events]
    ended = {step.id: step.end for step in rules.steps}

    def reached(event: str | None) -> bool:
        """`event` or a step after it was reported (an entry means the visa was applied for)."""
        if event is None or event not in order:
            return event is not None and event in events
        return any(e in events for e in order[order.index(event) :])

    estimates = []
    for rule in rules.estimates:
        start = first_known(rule.after, known)
        # A decision already taken (its step's end, or a later step, reported) is no longer
        # expected: the window would only crowd the timeline.
        if start is None or reached(ended[rule.step]):
            continue
        low, high = rule.window(facts)
        if rule.calendar == "weekdays":
            earliest, latest = add_weekdays(start, low), add_weekdays(start, high)
            estimated = False
        else:
            earliest, latest = (
                calendar.add_working_days(start, low),
                calendar.add_working_days(start, high),
            )
            estimated = not calendar.span_is_official(start, latest)
        estimates.append(
            Estimate(rule.id, rule.title, earliest, latest, estimated, rule.step, rule.note)
        )

    deadlines = []
    for deadline in rules.deadlines:
        if reached(deadline.until):
            continue
        if deadline.when is not None and not deadline.when.holds(facts):
            continue
        if deadline.before is not None:
            condition = counted_back(deadline, answers, known[PLANNED_APPLICATION], today)
            if condition is not None:
                deadlines.append(condition)
            continue
        start = first_known(deadline.after, known)
        if start is None:
            continue
        if deadline.working_days:
            day = calendar.add_working_days(start, deadline.working_days)
            estimated = not calendar.span_is_official(start, day)
        else:
            day = (
                start + dt.timedelta(days=deadline.calendar_days)
                if deadline.calendar_days
                else add_months(start, deadline.months)
            )
            estimated = False  # calendar days and months: exact
        act_by = calendar.last_working_day_on_or_before(day)
        if act_by != day and not calendar.span_is_official(act_by, day):
            estimated = True  # which days off lie before `day` is not published yet
        deadlines.append(
            Deadline(
                deadline.id,
                deadline.title,
                day,
                act_by,
                estimated=estimated,
                closed_on_date=calendar.holiday_name(day, "en") if act_by != day else None,
                holiday_zh=calendar.holiday_name(day, "zh") if act_by != day else None,
                met=reached(deadline.met_by),
                kind=deadline.kind,
            )
        )
    deadlines.sort(key=lambda d: (d.act_by, d.id))
    ends = {e.id: e.latest for e in estimates}
    steps = []
    for step in rules.steps:
        began = events.get(step.start) or known.get(step.projected_start)
        if step.end in events:
            steps.append(Step(step.id, step.title, "done", began, events[step.end], False))
            continue
        # Started when reported, or when the step it follows is done (reported).
        status: StepStatus = (
            "current" if step.start in events or step.projected_start in events else "upcoming"
        )
        steps.append(
            Step(step.id, step.title, status, began, ends.get(step.estimate), step.estimate in ends)
        )
    return Timeline(today, dict(events), tuple(steps), tuple(deadlines), tuple(estimates))


def counted_back(
    rule: DeadlineRule, answers: Mapping[str, Any], planned: dt.date, today: dt.date
) -> Deadline | None:
    """A condition counted back from a date answer: the last day it allows (the last application
    date with 6 months of passport validity left). Not a working-day count: an application
    abroad does not follow China's calendar. It holds when the application, planned or due
    now, is not later."""
    end = answers.get(rule.before or "")
    if not isinstance(end, dt.date):
        return None
    day = latest_start(end, rule.months)
    return Deadline(
        rule.id, rule.title, day, day, False, met=max(planned, today) <= day, kind=rule.kind
    )


def event_problem(
    flows: Flows, events: Mapping[str, dt.date], event_id: str, day: dt.date, today: dt.date
) -> tuple[str, dict[str, Any]] | None:
    """Why `day` cannot be the date of `event_id` (a msgid and its parameters), or None."""
    from kvisa.bot.i18n import N_

    if day > today:
        return N_("That date is in the future. Report a step once it has happened."), {}
    if day < flows.timeline.earliest_event.resolve(today):
        return N_("That date is too far back. Please check the year."), {}
    order = [e.id for e in flows.timeline.events]
    index = order.index(event_id)
    for other_id in order[:index]:
        if other_id in events and events[other_id] > day:
            return N_("That is before the date you gave for: {step} ({date})."), {
                "step": other_id,
                "date": events[other_id],
            }
    for other_id in order[index + 1 :]:
        if other_id in events and events[other_id] < day:
            return N_("That is after the date you gave for: {step} ({date})."), {
                "step": other_id,
                "date": events[other_id],
            }
    return None


def asks_deficiency(flows: Flows, facts: Mapping[str, Any], event_id: str) -> bool:
    """Whether a deadline counted from `event_id` depends on deficiency tolerance (Lingang) for
    someone with these facts: then reporting the event asks whether they used it."""
    for rule in flows.timeline.deadlines:
        if rule.when and "deficiency_tolerance" in rule.when.facts and event_id in rule.after:
            others = Condition(
                tuple(term for term in rule.when.terms if term[0] != "deficiency_tolerance")
            )
            if others.holds(facts):
                return True
    return False
