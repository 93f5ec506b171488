"""`kvisa assess`: a candidate profile (JSON object or CSV row) in, the decision as JSON out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bot.content.model import Flows
from bot.engine.answers import coerce_field, typed
from bot.errors import InputError
from bot.i18n import Text
from bot.policy.eligibility import assess, facts_of


def answers_from_profile(flows: Flows, profile: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """Typed answers for every question that applies; the first bad or missing field raises."""
    answers: dict[str, Any] = {}
    for question in flows.questions:
        if question.when is not None and not question.when.holds(facts_of(flows, answers)):
            continue
        raw = profile.get(question.id)
        if raw is None or raw == "":
            if question.date and question.date.default:
                answers[question.id] = question.date.default.resolve(today)
                continue
            raise InputError(question.id, "a value (this field is required)", None)
        answers[question.id] = typed(question, coerce_field(question, raw, today))
    return answers


def assess_profile(flows: Flows, t: Text, profile: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    answers = answers_from_profile(flows, profile, today)
    result = assess(flows, answers, today)
    return {
        "eligible": result.eligible,
        "channels": list(result.channels),
        "age_at_application": result.age_at_application,
        "needs_age_proof": result.needs_age_proof,
        "under_age": result.under_age,
        "planned_application": result.planned_application.isoformat(),
        # Why not, when the answer is no: one entry a rule not met.
        "reasons": [] if result.eligible else (
            [{"rule": "age", "text": t(flows.age.under_minimum)}] * result.under_age
            + [{"rule": r.id, "text": t(m)} for r in result.channel_results if not result.channels for m in r.unmet]
        ),
        "checklist": [
            {"id": e.item.id, "step": e.item.step, "title": t(e.item.title), "detail": t(e.detail)}
            for e in result.checklist
        ],
        "warnings": [{"id": w.id, "text": t(w.text)} for w in result.warnings],
    }
