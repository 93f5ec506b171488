"""Facts whose `as_of` date is old: `kvisa flows check` warns so the agency checks them again."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.content.model import DatedFact, Flows


def stale_facts(flows: Flows, today: dt.date, max_age_days: int) -> list[DatedFact]:
    """The facts last checked more than `max_age_days` days before `today`, in file order."""
    oldest = today - dt.timedelta(days=max_age_days)
    return sorted(
        (fact for fact in flows.dated if fact.as_of < oldest), key=lambda f: (f.file, f.line)
    )


def stale_warning(fact: DatedFact, today: dt.date, max_age_days: int) -> str:
    age = (today - fact.as_of).days
    return (
        f"{fact.file}:{fact.line}: warning: as_of {fact.as_of.isoformat()} is {age} days old "
        f"(more than KVISA_CONTENT_MAX_AGE_DAYS={max_age_days}); check it against "
        f"source {fact.source!r} and update as_of"
    )
