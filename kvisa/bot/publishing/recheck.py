"""Re-check applicants: each one's verdict, checklist and dates under two content versions.

An applicant is one stored record that is not a forward (a linked identity's record points to
its applicant's: bot/applicants.py), so linked identities are re-checked, and counted, once.
Records of people who have not agreed to the privacy notice, or have not reached a verdict,
hold nothing to re-check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kvisa.bot import applicants
from kvisa.bot.content.model import Flows
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import Assessment, assess, facts_of
from kvisa.bot.policy.reminders import timeline_of
from kvisa.identity import UserKey
from kvisa.storage import Storage

SAMPLE = 5  # applicants named per kind of change


@dataclass(frozen=True)
class Result:
    """An applicant's results under one version: what a change notice compares."""

    eligible: bool
    channels: tuple[str, ...]
    # (item id, its "what exactly" message id) of each checklist item
    checklist: tuple[tuple[str, str], ...]
    # deadline or estimate id -> its date(s) (a deadline's act-by day; an estimate's window)
    dates: Mapping[str, tuple[dt.date, ...]]
    estimated: frozenset[str] = frozenset()  # ids whose dates are estimates
    # (title, detail) message ids of the perks of their park the verdict shows them
    perks: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()  # ids of the verdict's warnings (age practice, passport)


@dataclass(frozen=True)
class Delta:
    """What changed for one applicant from the old version to the new."""

    user: UserKey
    old: Result
    new: Result

    @property
    def eligibility(self) -> bool:
        return (self.old.eligible, self.old.channels) != (self.new.eligible, self.new.channels)

    @property
    def verdict(self) -> bool:
        """Whatever the verdict says: eligibility, warnings and the park's perks."""
        return (
            self.eligibility
            or self.old.perks != self.new.perks
            or self.old.warnings != self.new.warnings
        )

    @property
    def checklist(self) -> bool:
        return self.old.checklist != self.new.checklist

    @property
    def dates(self) -> bool:
        return self.old.dates != self.new.dates or self.old.estimated != self.new.estimated

    @property
    def any(self) -> bool:
        return self.verdict or self.checklist or self.dates

    def moved(self) -> list[tuple[str, tuple[dt.date, ...] | None, tuple[dt.date, ...] | None]]:
        """(id, old dates, new dates) of every deadline or estimate that changed."""
        ids = [*self.new.dates, *(i for i in self.old.dates if i not in self.new.dates)]
        return [
            (i, self.old.dates.get(i), self.new.dates.get(i))
            for i in ids
            if self.old.dates.get(i) != self.new.dates.get(i)
            or (i in self.old.estimated) != (i in self.new.estimated)
        ]


@dataclass(frozen=True)
class Scope:
    """What a change between two versions can move: a change that leaves every rule the
    timeline reads alone moves no date, so the dates need not be worked out (the same for
    the verdict). Worked out once per re-check."""

    verdict: bool = True
    dates: bool = True

    @classmethod
    def of(cls, old: Flows, new: Flows) -> Scope:
        facts = (old.questions, old.derived) != (new.questions, new.derived)
        verdict = (old.channels, old.age, old.passport, old.items, old.parks) != (
            new.channels,
            new.age,
            new.passport,
            new.items,
            new.parks,
        )
        dates = old.timeline != new.timeline or not old.calendar.same_schedule(new.calendar)
        return cls(verdict or facts, dates or facts)


EVERYTHING = Scope()


def evaluate(
    flows: Flows, data: Mapping[str, Any], today: dt.date, scope: Scope = EVERYTHING
) -> Result | None:
    """The applicant's results under `flows` (what `scope` says may change); None when there
    is nothing to re-check."""
    if not data.get("consent_at") or not data.get("finished"):
        return None
    try:
        answers = answer_values(flows, data.get("answers") or {})
        verdict = assess(flows, answers, today) if scope.verdict else None
        timeline = timeline_of(flows, data, today) if scope.dates else None
    except (KeyError, ValueError, TypeError):
        return None  # answers the flows no longer ask for a verdict: left to a person
    dates: dict[str, tuple[dt.date, ...]] = {}
    estimated = set()
    if timeline is None:
        return verdict_only(flows, answers, verdict)
    for deadline in timeline.deadlines:
        dates[deadline.id] = (deadline.act_by,)
        if deadline.estimated:
            estimated.add(deadline.id)
    for estimate in timeline.estimates:
        dates[estimate.id] = (estimate.earliest, estimate.latest)
        if estimate.estimated:
            estimated.add(estimate.id)
    return replace(
        verdict_only(flows, answers, verdict), dates=dates, estimated=frozenset(estimated)
    )


def verdict_only(flows: Flows, answers: Mapping[str, Any], verdict: Assessment | None) -> Result:
    if verdict is None:
        return Result(False, (), (), {})
    park = flows.park(str(answers.get("park", "")))
    facts = facts_of(flows, answers)
    return Result(
        verdict.eligible,
        tuple(verdict.channels),
        tuple((entry.item.id, entry.detail) for entry in verdict.checklist),
        {},
        frozenset(),
        tuple((p.title, p.detail) for p in park.perks if p.applies(facts)) if park else (),
        tuple(w.id for w in verdict.warnings),
    )


def compare(
    user: UserKey,
    data: Mapping[str, Any],
    old: Flows,
    new: Flows,
    today: dt.date,
    scope: Scope = EVERYTHING,
) -> Delta | None:
    """The applicant's change from `old` to `new`; None when nothing of theirs changed."""
    before, after = evaluate(old, data, today, scope), evaluate(new, data, today, scope)
    if before is None or after is None:
        return None
    delta = Delta(user, before, after)
    return delta if delta.any else None


async def applicant_records(storage: Storage) -> AsyncIterator[tuple[UserKey, dict[str, Any]]]:
    """Every applicant's record (forwards left out: their applicant is listed itself)."""
    async for key, record in storage.records():
        if not applicants.is_forward(record.data):
            yield key, record.data


@dataclass
class Summary:
    """What a re-check found: how many applicants, and who changed how (a sample of each)."""

    checked: int = 0
    verdict: int = 0
    checklist: int = 0
    dates: int = 0
    affected: int = 0
    samples: dict[str, list[str]] = field(
        default_factory=lambda: {"verdict": [], "checklist": [], "dates": []}
    )

    def add(self, delta: Delta) -> None:
        self.affected += 1
        for kind in ("verdict", "checklist", "dates"):
            if getattr(delta, kind):
                setattr(self, kind, getattr(self, kind) + 1)
                if len(self.samples[kind]) < SAMPLE:
                    self.samples[kind].append(str(delta.user))


async def dry_run(storage: Storage, old: Flows, new: Flows, today: dt.date) -> Summary:
    """Re-check every applicant; nothing is written or sent."""
    summary = Summary()
    scope = Scope.of(old, new)
    async for key, data in applicant_records(storage):
        summary.checked += 1
        delta = compare(key, data, old, new, today, scope)
        if delta is not None:
            summary.add(delta)
    return summary
