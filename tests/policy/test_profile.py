"""`kvisa assess` on one profile: what the corrected content gives HR."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kvisa.bot.policy.profile import assess_profile
from tests.support import content

TODAY = dt.date(2026, 11, 25)
PROFILE: dict[str, Any] = {
    "degree": "master",
    "degree_field_stem": True,
    "degree_from_recognized": True,
    "stem_work_at_recognized": False,
    "birth_date": "1996-03-01",
    "residence_country": "SG",
    "passport_expiry": "2027-05-31",
    "planned_application": "2026-12-01",
    "plan": "research",
    "park": "zhangjiang",
}


def assessed(lang: str = "en", **fields: Any) -> dict[str, Any]:
    flows, catalogs = content()
    return assess_profile(flows, catalogs[lang], {**PROFILE, **fields}, TODAY)  # type: ignore[index]


def test_a_nationality_field_changes_nothing() -> None:
    # The question is gone (the guide ties nothing to nationality but "as required"): a profile
    # that still carries it is assessed exactly as one without it.
    assert assessed(nationality="IN") == assessed()


def test_the_passport_gives_the_last_application_date_in_the_readers_format() -> None:
    out = assessed("zh")
    (passport,) = [d for d in out["deadlines"] if d["id"] == "passport_apply_by"]
    assert passport["date"] == "2026-11-30" and passport["met"] is False
    assert passport["estimated"] is False
    (warning,) = out["warnings"]
    assert warning["id"] == "passport_validity"
    assert "2026年11月30日" in warning["text"] and "2027年5月31日" in warning["text"]


def test_under_18_is_eligible_with_a_warning_and_no_reason() -> None:
    out = assessed(birth_date="2009-01-01", passport_expiry="2031-01-01")
    assert out["eligible"] is True and out["under_age"] is True and out["reasons"] == []
    assert [w["id"] for w in out["warnings"]] == ["age_below_practice"]
