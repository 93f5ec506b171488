"""Segments: parsing (with errors that say what is accepted), the canonical form, selection."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.broadcasts.segment import Segment, choices
from kvisa.bot.session import Session
from kvisa.errors import InputError
from kvisa.identity import UserKey
from tests.support import ACADEMIC, content

FLOWS, CATALOGS = content()
TODAY = dt.date(2026, 11, 25)
TG, WX = UserKey("telegram", "1"), UserKey("wechat", "oX")


def user(
    lang: str = "en", park: str = "lingang", events: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return (
        Session(
            lang=lang,
            consent_at="2026-11-01T00:00:00+00:00",
            finished=True,  # type: ignore[arg-type]
            answers={"park": park, "plan": "employed"},
            events=events or {},
        ).to_json()
        | extra
    )


def test_an_empty_segment_is_everyone_who_may_get_updates() -> None:
    everyone = Segment.parse(FLOWS, "")
    assert str(everyone) == "" and everyone.matches(FLOWS, TG, user(), TODAY)
    assert not everyone.matches(FLOWS, TG, None, TODAY)  # erased
    assert not everyone.matches(FLOWS, TG, user(consent_at=None), TODAY)  # never agreed
    assert not everyone.matches(FLOWS, TG, user(news_off=True), TODAY)  # /news off
    assert not everyone.matches(FLOWS, TG, user(inactive=True), TODAY)  # blocked the bot
    assert Segment.parse(FLOWS, "active=any").matches(FLOWS, TG, user(inactive=True), TODAY)
    assert not Segment.parse(FLOWS, "active=any").matches(FLOWS, TG, user(news_off=True), TODAY)


def test_entered_but_no_work_permit_yet() -> None:
    segment = Segment.parse(FLOWS, "reached=entered not_reached=work_permit_granted")
    assert segment.matches(FLOWS, TG, user(events={"entered": "2026-11-20"}), TODAY)
    assert not segment.matches(FLOWS, TG, user(events={}), TODAY)
    assert not segment.matches(
        FLOWS,
        TG,
        user(events={"entered": "2026-11-20", "work_permit_granted": "2026-11-24"}),
        TODAY,
    )


def test_language_park_plan_and_platform() -> None:
    segment = Segment.parse(FLOWS, "lang=zh park=lingang,zhangjiang channel=wechat plan=employed")
    assert segment.matches(FLOWS, WX, user(lang="zh", park="zhangjiang"), TODAY)
    assert not segment.matches(FLOWS, TG, user(lang="zh"), TODAY)
    assert not segment.matches(FLOWS, WX, user(lang="en"), TODAY)
    assert not segment.matches(FLOWS, WX, user(lang="zh", park="other"), TODAY)


def test_the_channel_of_eligibility_comes_from_the_rules() -> None:
    answers = ACADEMIC | {
        "residence_country": "DE",
        "planned_application": "2026-12-01",  # as stored
        "degree_field_stem": True,
        "degree_from_recognized": True,
        "stem_work_at_recognized": False,
    }
    academic = Session(
        consent_at="2026-11-01T00:00:00+00:00", finished=True, answers=answers
    ).to_json()
    assert Segment.parse(FLOWS, "eligible=academic").matches(FLOWS, TG, academic, TODAY)
    assert not Segment.parse(FLOWS, "eligible=work").matches(FLOWS, TG, academic, TODAY)
    assert not Segment.parse(FLOWS, "eligible=academic").matches(
        FLOWS, TG, user(), TODAY
    )  # unfinished answers


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("park=mars", "park", "one of zhangjiang, lingang"),
        ("planet=mars", "segment", "one of the keys lang, park"),
        ("lingang", "segment", "key=value"),
        ("reached=entered not_reached=entered", "reached", "other than"),
        ("active=maybe", "active", "yes or any"),
        ("channel=email", "channel", "telegram, wechat"),
    ],
)
def test_a_bad_segment_says_what_is_accepted(text: str, field: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        Segment.parse(FLOWS, text)
    assert caught.value.field == field and says in caught.value.expected


def test_the_api_takes_an_object_of_lists() -> None:
    segment = Segment.from_json(FLOWS, {"park": ["lingang"], "lang": "zh", "active": "any"})
    assert str(segment) == "lang=zh park=lingang active=any"
    with pytest.raises(InputError):
        Segment.from_json(FLOWS, {"park": [1]})
    with pytest.raises(InputError):
        Segment.from_json(FLOWS, ["park=lingang"])


ALLOWED = choices(FLOWS)


@st.composite
def segments(draw: st.DrawFn) -> str:
    parts = []
    for key, values in ALLOWED.items():
        if key == "not_reached":
            continue
        chosen = draw(st.lists(st.sampled_from(values), unique=True, max_size=3))
        if chosen:
            parts.append(f"{key}={','.join(chosen)}")
    reached = set(next((p.split("=")[1].split(",") for p in parts if p.startswith("reached=")), []))
    later = draw(
        st.lists(
            st.sampled_from([e for e in ALLOWED["not_reached"] if e not in reached]),
            unique=True,
            max_size=2,
        )
    )
    if later:
        parts.append("not_reached=" + ",".join(later))
    if draw(st.booleans()):
        parts.append("active=any")
    return " ".join(draw(st.permutations(parts)))


@given(segments())
def test_the_canonical_form_parses_back_to_the_same_segment(text: str) -> None:
    segment = Segment.parse(FLOWS, text)
    assert Segment.parse(FLOWS, str(segment)) == segment
    assert Segment.from_json(FLOWS, str(segment)) == segment
