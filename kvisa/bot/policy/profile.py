"""`kvisa assess`: a candidate profile (JSON object or CSV row) in, the decision as JSON out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Text
from kvisa.bot.policy.answers import answer_value, coerce_field, parse_date
from kvisa.bot.policy.eligibility import assess, facts_of
from kvisa.bot.policy.timeline import build_timeline, event_problem
from kvisa.errors import InputError


def answers_from_profile(
    flows: Flows, profile: Mapping[str, Any], today: dt.date
) -> dict[str, Any]:
    """Typed answers for every question that applies; the first bad or missing field raises."""
    answers: dict[str, Any] = {}
    for question in flows.questions:
        if question.when is not None and not question.when.holds(facts_of(flows, answers)):
            continue
        raw = profile.get(question.id)
        if raw is None or raw == "":
            if question.kind == "zone":  # only for reminders: no decision needs it
                continue
            if question.date and question.date.default:
                answers[question.id] = question.date.default.resolve(today)
                continue
            raise InputError(question.id, "a value (this field is required)", None)
        answers[question.id] = answer_value(question, coerce_field(question, raw, today))
    return answers


def events_from_profile(
    flows: Flows, profile: Mapping[str, Any], today: dt.date
) -> dict[str, dt.date]:
    """Reported event dates (top-level keys named after the events), checked for order."""
    events: dict[str, dt.date] = {}
    for event in flows.timeline.events:
        raw = profile.get(event.id)
        if raw is None or raw == "":
            continue
        day = parse_date(raw) if isinstance(raw, str) else None
        if not isinstance(day, dt.date):
            raise InputError(event.id, "a date as YYYY-MM-DD", raw)
        events[event.id] = day
    for event_id, day in events.items():
        problem = event_problem(
            flows, {k: v for k, v in events.items() if k != event_id}, event_id, day, today
        )
        if problem:
            message, params = problem
            detail = f" (see {params['step']})" if "step" in params else ""
            raise InputError(
                event_id, f"a date consistent with the other steps, not in the future{detail}", raw
            )
    return events


def deficiency_from_profile(profile: Mapping[str, Any]) -> bool | None:
    raw = profile.get("deficiency_tolerance")
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in ("true", "yes", "1", "false", "no", "0"):
        return word in ("true", "yes", "1")
    raise InputError("deficiency_tolerance", "true or false", raw)


def assess_profile(
    flows: Flows, t: Text, profile: Mapping[str, Any], today: dt.date
) -> dict[str, Any]:
    answers = answers_from_profile(flows, profile, today)
    result = assess(flows, answers, today)
    timeline = build_timeline(
        flows,
        answers,
        events_from_profile(flows, profile, today),
        today,
        deficiency_from_profile(profile),
    )
    return {
        "eligible": result.eligible,
        "channels": list(result.channels),
        "age_at_application": result.age_at_application,
        "needs_age_proof": result.needs_age_proof,
        "under_age": result.under_age,
        "planned_application": result.planned_application.isoformat(),
        # Why not, when the answer is no: one entry a rule not met.
        "reasons": []
        if result.eligible
        else [{"rule": r.id, "text": t(m)} for r in result.channel_results for m in r.unmet],
        "checklist": [
            {"id": e.item.id, "step": e.item.step, "title": t(e.item.title), "detail": t(e.detail)}
            for e in result.checklist
        ],
        "warnings": [{"id": w.id, "text": w.text_in(t)} for w in result.warnings],
        "deadlines": [
            {
                "id": d.id,
                "title": t(d.title),
                "date": d.date.isoformat(),
                "act_by": d.act_by.isoformat(),
                "estimated": d.estimated,
                "met": d.met,
            }
            for d in timeline.deadlines
        ],
        "estimates": [
            {
                "id": e.id,
                "title": t(e.title),
                "earliest": e.earliest.isoformat(),
                "latest": e.latest.isoformat(),
                "estimated": e.estimated,
            }
            for e in timeline.estimates
        ],
    }
