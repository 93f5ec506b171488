"""The decision on typed answers: channels, age rules, warnings, checklist."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.content.model import add_months
from kvisa.bot.policy.eligibility import age_on, assess
from tests.support import content

BASE: dict[str, Any] = {
    "degree": "bachelor",
    "degree_field_stem": True,
    "degree_from_recognized": True,
    "stem_work_at_recognized": False,
    "birth_date": dt.date(2000, 5, 1),
    "residence_country": "BR",
    "passport_expiry": dt.date(2030, 1, 1),
    "planned_application": dt.date(2026, 12, 1),
    "plan": "startup",
    "park": "lingang",
}
TODAY = dt.date(2026, 11, 25)
dates = st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))


def test_turning_18_on_the_application_date_is_within_embassy_practice() -> None:
    flows, _ = content()
    result = assess(flows, {**BASE, "birth_date": dt.date(2008, 12, 1)}, TODAY)
    assert result.age_at_application == 18 and result.eligible and not result.under_age
    assert "age_below_practice" not in [w.id for w in result.warnings]


def test_under_18_is_outside_embassy_practice_not_refused() -> None:
    # The guide sets no age limit; 18-35 is what embassies generally apply. Under 18 used to
    # be refused outright.
    flows, _ = content()
    younger = assess(flows, {**BASE, "birth_date": dt.date(2008, 12, 2)}, TODAY)
    assert younger.under_age and younger.eligible and younger.channels == ("academic",)
    assert [w.id for w in younger.warnings] == ["age_below_practice"]


def test_exactly_35_needs_no_proof_but_36_does() -> None:
    flows, _ = content()
    assert not assess(flows, {**BASE, "birth_date": dt.date(1991, 12, 1)}, TODAY).needs_age_proof
    result = assess(flows, {**BASE, "birth_date": dt.date(1990, 11, 30)}, TODAY)
    assert (
        result.needs_age_proof and result.eligible and "achievements_proof" in result.checklist_ids
    )


def test_passport_expiring_within_six_months_of_application_warns() -> None:
    flows, _ = content()
    short = assess(flows, {**BASE, "passport_expiry": dt.date(2027, 5, 31)}, TODAY)
    ok = assess(flows, {**BASE, "passport_expiry": dt.date(2027, 6, 1)}, TODAY)
    assert [w.id for w in short.warnings] == ["passport_validity"]
    assert ok.warnings == ()


def test_passport_gives_the_last_application_date_it_allows_not_a_date_to_act_by() -> None:
    # "Valid for at least 6 months" at application: the bot used to show "must be valid until
    # <application + 6 months>", a date after entry; it now says until when one can apply.
    flows, _ = content()
    result = assess(flows, {**BASE, "passport_expiry": dt.date(2027, 5, 31)}, TODAY)
    assert result.passport == (dt.date(2026, 11, 30), dt.date(2027, 5, 31))
    (warning,) = result.warnings
    assert dict(warning.dates) == {
        "date": dt.date(2026, 11, 30),
        "expiry": dt.date(2027, 5, 31),
        "planned": dt.date(2026, 12, 1),
    }


@given(dates)
def test_latest_application_leaves_six_months_and_no_later_day_does(expiry: dt.date) -> None:
    flows, _ = content()
    if not dt.date(1901, 1, 1) <= expiry <= dt.date(2099, 1, 1):
        return
    latest = flows.passport.latest_application(expiry)
    assert add_months(latest, 6) <= expiry < add_months(latest + dt.timedelta(days=1), 6)


def test_non_stem_degree_without_research_work_is_refused_with_the_rule() -> None:
    flows, _ = content()
    result = assess(flows, {**BASE, "degree_field_stem": False}, TODAY)
    assert not result.eligible and result.channels == ()
    academic = next(r for r in result.channel_results if r.id == "academic")
    assert len(academic.unmet) == 1 and "STEM" in academic.unmet[0]


def test_missing_planned_date_means_today() -> None:
    flows, _ = content()
    result = assess(flows, {k: v for k, v in BASE.items() if k != "planned_application"}, TODAY)
    assert result.planned_application == TODAY


def test_checklist_follows_the_plan() -> None:
    flows, _ = content()
    for plan, item in (
        ("employed", "employment_contract"),
        ("startup", "business_plan"),
        ("research", "research_project_materials"),
    ):
        ids = assess(flows, {**BASE, "plan": plan}, TODAY).checklist_ids
        others = {"employment_contract", "business_plan", "research_project_materials"} - {item}
        assert item in ids and not others & set(ids)


@given(dates, dates)
def test_age_is_whole_years_completed(birth: dt.date, day: dt.date) -> None:
    age = age_on(birth, day)
    if day >= birth:
        assert age >= 0
        assert add_months(birth, 12 * age) <= day
        anniversary = add_months(birth, 12 * (age + 1))
        # someone born on 29 Feb is a year older on 1 Mar in common years
        assert day < anniversary or (birth.month, birth.day) == (2, 29)


@given(dates, st.integers(-1200, 1200))
def test_add_months_keeps_the_day_or_clamps_to_month_end(day: dt.date, months: int) -> None:
    if not dt.date(1901, 1, 1) <= day <= dt.date(2099, 1, 1):
        return
    moved = add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day == day.day or (moved.day < day.day and (moved + dt.timedelta(days=1)).day == 1)
