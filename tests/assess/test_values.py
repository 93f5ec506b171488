"""Values and files that cannot be assessed each get a clear message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvisa.bot.assess.batch import parse_today
from kvisa.bot.assess.reading import MAX_FIELD, Kind
from tests.assess.conftest import CANDIDATE, COLUMNS, candidates, csv_text, run_assess

PROFILE = {k: v for k, v in CANDIDATE.items() if k != "id"}


def test_a_field_over_10000_characters_fails_its_row_with_a_short_value(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        csv_text(candidates(3, r2={"residence_country": "D" * (MAX_FIELD + 1)})), encoding="utf-8"
    )
    outcome = run_assess("csv", path)
    assert outcome.code == 1 and outcome.rows() == [1, 2, 3]
    error = outcome.errors()[2]
    assert error["field"] == "residence_country" and "10,000 characters" in error["expected"]
    assert len(error["value"]) < 300 and "10,001 characters" in error["value"]
    assert len(outcome.err) < 2000


def test_a_field_of_exactly_10000_characters_reaches_the_answer_rules(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(csv_text(candidates(1, r1={"id": "i" * MAX_FIELD})), encoding="utf-8")
    outcome = run_assess("csv", path)
    assert outcome.code == 0, outcome.err  # the id is free text: 10,000 characters are allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [("birth_date", {"year": 1988}), ("degree", ["master", "doctorate"]), ("plan", [])],
)
def test_a_nested_json_value_is_refused_by_name(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "nested.json"
    path.write_text(json.dumps({**PROFILE, field: value}))
    outcome = run_assess("json", path)
    assert outcome.code == 1
    error = outcome.records[0]["error"]
    assert error["field"] == field and "not a list or an object" in error["expected"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused_and_never_reach_the_output(
    tmp_path: Path, literal: str
) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(PROFILE)[:-1] + f', "planned_application": {literal}}}')
    outcome = run_assess("json", path)  # run_assess's parser fails on NaN in the output
    assert outcome.code == 1
    error = outcome.records[0]["error"]
    assert (
        error["field"] == "planned_application" and error["expected"] == "a finite number or text"
    )
    assert error["value"] in ("NaN", "Infinity", "-Infinity")


def test_nan_as_a_json_profile_id_or_unknown_key_never_reaches_the_output(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(PROFILE)[:-1] + ', "id": NaN, "score": NaN}')
    outcome = run_assess("json", path)
    assert outcome.code == 1 and outcome.records[0]["error"]["field"] == "id"
    assert "'score'" in outcome.err


@pytest.mark.parametrize(("kind", "name"), [("csv", "empty.csv"), ("json", "empty.json")])
def test_an_empty_file_exits_non_zero_with_a_message(tmp_path: Path, kind: Kind, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    outcome = run_assess(kind, path)
    assert outcome.code == 1 and outcome.records == []
    assert f"{name}: the file is empty" in outcome.err


def test_a_file_of_blank_lines_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n , \r\n\r\n")
    outcome = run_assess("csv", path)
    assert outcome.code == 1 and "the file is empty" in outcome.err


def test_a_header_without_rows_exits_non_zero_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "header-only.csv"
    path.write_text(csv_text([COLUMNS]) + "\r\n,,,\r\n", encoding="utf-8")
    outcome = run_assess("csv", path)
    assert outcome.code == 1 and outcome.records == []
    assert "header-only.csv: the file has a header but no rows" in outcome.err


def test_a_json_file_that_is_not_one_object_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "degree": "master",\n  "plan": }\n')
    outcome = run_assess("json", path)
    assert outcome.code == 1
    error = outcome.records[0]["error"]
    assert error["field"] == "profile" and "line 3" in error["expected"]


def test_deeply_nested_json_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    outcome = run_assess("json", path)
    assert outcome.code == 1 and outcome.records[0]["error"]["field"] == "profile"


@pytest.mark.parametrize(
    "value", ["2026-13-01", "2026-02-30", "tomorrow", "20261125", "2026-W48-3", ""]
)
def test_a_bad_today_is_refused(value: str) -> None:
    assert parse_today(value) is None


def test_today_is_read_as_an_iso_date() -> None:
    assert str(parse_today("2026-11-25")) == "2026-11-25"
