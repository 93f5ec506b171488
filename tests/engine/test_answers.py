"""Parsing what people type: dates, countries, option numbers and labels."""

from __future__ import annotations

import datetime as dt

import pytest

from kvisa.bot.content.model import Option
from kvisa.bot.engine.choice import match_option, readable
from kvisa.bot.policy.answers import Invalid, coerce_field, parse_country, parse_date
from kvisa.errors import InputError
from tests.support import content

TODAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    "text",
    [
        "1998-04-27",
        "1998/4/27",
        "1998.04.27",
        "19980427",
        "1998年4月27日",
        "１９９８－０４－２７",
        " 1998 - 04 - 27 ",
    ],
)
def test_year_first_dates_in_common_forms_are_read(text: str) -> None:
    assert parse_date(text) == dt.date(1998, 4, 27)


@pytest.mark.parametrize(
    "text",
    ["1990-02-31", "2026-13-01", "0199-01-01", "199-1-1", "27.04.1998", "tomorrow", "1998-04", ""],
)
def test_impossible_or_ambiguous_dates_get_a_hint(text: str) -> None:
    assert isinstance(parse_date(text), Invalid)


def test_day_first_dates_get_a_specific_hint_not_the_generic_one() -> None:
    generic, day_first = parse_date("tomorrow"), parse_date("27.04.1998")
    assert isinstance(generic, Invalid) and isinstance(day_first, Invalid)
    assert generic.hint != day_first.hint


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Germany", "DE"),
        ("germany", "DE"),
        ("德国", "DE"),
        ("DE", "DE"),
        ("deu", "DE"),
        ("U.S.A.", "US"),
        ("United States", "US"),
        ("美国", "US"),
        ("UK", "GB"),
        ("中国", "CN"),
    ],
)
def test_countries_by_english_or_chinese_name_or_code(text: str, code: str) -> None:
    assert parse_country(text) == code


@pytest.mark.parametrize("text", ["Atlantis", "EU", "Europe", "ZZ", "world"])
def test_unknown_countries_and_regions_are_refused(text: str) -> None:
    assert isinstance(parse_country(text), Invalid)


def test_options_match_by_number_id_or_label_ignoring_case_and_width() -> None:
    options = [Option("yes", "Yes", True), Option("no", "No", False)]
    labels = {"yes": ["Yes", "是"], "no": ["No", "否"]}
    assert match_option("１", options, labels) is options[0]
    assert match_option("YES", options, labels) is options[0]
    assert match_option("否", options, labels) is options[1]
    assert match_option("no", options, labels) is options[1]
    assert match_option("3", options, labels) is None
    assert match_option("maybe", options, labels) is None


def test_emoji_only_is_not_readable() -> None:
    assert not readable("😀🇨🇳") and not readable("!!!") and readable("是") and readable("1")


def test_profile_fields_coerce_or_name_what_is_expected() -> None:
    flows, _ = content()
    assert coerce_field(flows.question("degree_field_stem"), "yes", TODAY) is True
    assert coerce_field(flows.question("birth_date"), "1998-04-27", TODAY) == "1998-04-27"
    with pytest.raises(InputError) as caught:
        coerce_field(flows.question("birth_date"), "2030-01-01", TODAY)
    assert caught.value.field == "birth_date"
    with pytest.raises(InputError):
        coerce_field(flows.question("degree"), "phd", TODAY)
