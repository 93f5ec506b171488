"""The K-visa decision: which channels apply, age rules, warnings and the personal checklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvisa.bot.content.model import ChecklistItem, Flows
from kvisa.bot.i18n import Text
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
    dates: tuple[tuple[str, dt.date], ...] = ()  # its date placeholders, formatted by the reader

    def text_in(self, t: Text) -> str:
        return t(self.text, **{name: t.date(day) for name, day in self.dates})


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
    under_age: bool  # below the age embassies generally apply (said, not a refusal)
    needs_age_proof: bool
    warnings: tuple[Warning, ...]
    checklist: tuple[ChecklistEntry, ...]
    # The last application date the passport allows, with its expiry (None: expiry not given);
    # the verdict shows it, and a warning when the planned date is later.
    passport: tuple[dt.date, dt.date] | None = None

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
    planned application date. Raises KeyError for a required answer that is missing.

    Eligibility is the channels' alone: age outside embassy practice (18-35) is a warning,
    since the guide sets no age limit."""
    planned = answers.get("planned_application") or today
    age = age_on(answers["birth_date"], planned)
    under_age = age < flows.age.practice_from
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
    if under_age:
        warnings.append(Warning("age_below_practice", flows.age.below_practice))
    if needs_age_proof:
        warnings.append(Warning("age_proof", flows.age.above_proof))
    expiry = answers.get("passport_expiry")
    passport = None
    if expiry is not None:
        latest = flows.passport.latest_application(expiry)
        passport = (latest, expiry)
        if planned > latest:
            dates = (("date", latest), ("expiry", expiry), ("planned", planned))
            warnings.append(Warning("passport_validity", flows.passport.warning, dates))

    return Assessment(
        eligible=bool(channels),
        channels=channels,
        channel_results=tuple(results),
        planned_application=planned,
        age_at_application=age,
        under_age=under_age,
        needs_age_proof=needs_age_proof,
        warnings=tuple(warnings),
        checklist=checklist,
        passport=passport,
    )
