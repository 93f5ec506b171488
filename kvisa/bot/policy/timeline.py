"""Deadlines and processing windows from the user's dated events, on China's working-day calendar.

The rules (which event, how many days) are in flows/timeline.yaml; this module only counts.
Every date that depends on a year whose official holiday schedule is not published yet is
marked `estimated`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kvisa.bot.content.model import Condition, Flows, add_months
from kvisa.bot.policy.eligibility import facts_of

PLANNED_APPLICATION = "planned_application"  # the answer that starts the timeline (an event too)
StepId = str  # a step id of flows/timeline.yaml: visa, work_permit, residence_permit
StepStatus = Literal["done", "current", "upcoming"]


@dataclass(frozen=True)
class Deadline:
    """A date by which the user must act. `act_by` is the last working day on or before
    `date` (offices are closed on holidays); `estimated` when the calendar of a year involved
    is not published yet."""

    id: str  # work_permit_apply | lingang_supplement | stay_limit | passport_valid_until
    title: str  # msgid
    date: dt.date
    act_by: dt.date
    estimated: bool
    closed_on_date: str | None = None  # holiday name (English) when `date` is a public holiday
    holiday_zh: str | None = None  # the same name in Chinese
    met: bool = False  # the event that fulfils it has been reported
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

    estimates = []
    for rule in rules.estimates:
        start = first_known(rule.after, known)
        if start is None:
            continue
        low, high = rule.window(facts)
        latest = calendar.add_working_days(start, high)
        estimates.append(
            Estimate(
                rule.id,
                rule.title,
                calendar.add_working_days(start, low),
                latest,
                not calendar.span_is_official(start, latest),
                rule.step,
            )
        )

    deadlines = []
    for deadline in rules.deadlines:
        start = first_known(deadline.after, known)
        if start is None or (deadline.until and deadline.until in events):
            continue
        if deadline.when is not None and not deadline.when.holds(facts):
            continue
        if deadline.working_days:
            day = calendar.add_working_days(start, deadline.working_days)
            depends_from = start
        else:
            day = (
                start + dt.timedelta(days=deadline.calendar_days)
                if deadline.calendar_days
                else add_months(start, deadline.months)
            )
            depends_from = day
        act_by = calendar.last_working_day_on_or_before(day)
        deadlines.append(
            Deadline(
                deadline.id,
                deadline.title,
                day,
                act_by,
                estimated=not calendar.span_is_official(min(depends_from, act_by), day),
                closed_on_date=calendar.holiday_name(day, "en") if act_by != day else None,
                holiday_zh=calendar.holiday_name(day, "zh") if act_by != day else None,
                met=deadline.met_by in events,
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
