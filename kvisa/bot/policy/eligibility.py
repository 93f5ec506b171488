"""The K-visa decision: which channels apply, age rules, warnings and the personal checklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvisa.bot.content.model import ChecklistItem, Flows, add_months
from kvisa.bot.policy.zones import zone_choices


@dataclass(frozen=True)
class ChannelResult:
    id: str
    eligible: bool
    unmet: tuple[str, ...]  # msgids of the rules not met, in the order of flows/policy.yaml


@dataclass(frozen=True)
class Warning:
    id: str
    text: str  # msgid


@dataclass(frozen=True)
class ChecklistEntry:
    item: ChecklistItem
    detail: str  # msgid: the item's "what exactly", after variants


@dataclass(frozen=True)
class Assessment:
    eligible: bool
    channels: tuple[str, ...]
    channel_results: tuple[ChannelResult, ...]
    planned_application: dt.date
    age_at_application: int
    under_age: bool
    needs_age_proof: bool
    warnings: tuple[Warning, ...]
    checklist: tuple[ChecklistEntry, ...]

    @property
    def checklist_ids(self) -> tuple[str, ...]:
        return tuple(entry.item.id for entry in self.checklist)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on `day` (someone born on 29 Feb turns a year older on 1 Mar)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def facts_of(
    flows: Flows, answers: Mapping[str, Any], extra: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """Answers plus the derived facts of flows/policy.yaml, for evaluating conditions."""
    facts = {**answers, **extra}
    country = answers.get("residence_country")
    if isinstance(country, str):
        facts["residence_zones_many"] = len(zone_choices(country)) > 1
    for name, condition in flows.derived.items():
        facts[name] = condition.holds(facts)
    return facts


def assess(flows: Flows, answers: Mapping[str, Any], today: dt.date) -> Assessment:
    """Decide on answer values (dates as `date`, yes/no as bool). `today` fills a missing
    planned application date. Raises KeyError for a required answer that is missing."""
    planned = answers.get("planned_application") or today
    age = age_on(answers["birth_date"], planned)
    under_age = age < flows.age.minimum
    needs_age_proof = age > flows.age.proof_above

    facts = facts_of(flows, answers)
    results = []
    for channel in flows.channels:
        unmet = tuple(r.unmet for r in channel.requires if not r.when.holds(facts))
        results.append(ChannelResult(channel.id, not unmet, unmet))
    channels = tuple(r.id for r in results if r.eligible)

    facts = facts_of(flows, answers, {"channels": channels, "needs_age_proof": needs_age_proof})
    checklist = tuple(
        ChecklistEntry(item, item.detail_for(facts))
        for item in flows.items
        if item.when is None or item.when.holds(facts)
    )

    warnings = []
    expiry = answers.get("passport_expiry")
    if expiry is not None and expiry < add_months(
        planned, flows.passport.months_valid_beyond_application
    ):
        warnings.append(Warning("passport_validity", flows.passport.warning))
    if needs_age_proof and not under_age:
        warnings.append(Warning("age_proof", flows.age.above_proof))

    return Assessment(
        eligible=bool(channels) and not under_age,
        channels=channels,
        channel_results=tuple(results),
        planned_application=planned,
        age_at_application=age,
        under_age=under_age,
        needs_age_proof=needs_age_proof,
        warnings=tuple(warnings),
        checklist=checklist,
    )
