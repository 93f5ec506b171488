"""Headers: ids or the aliases in flows/interview.yaml; unknown and missing columns said once."""

from __future__ import annotations

from pathlib import Path

from tests.assess.conftest import CHINESE_COLUMNS, COLUMNS, candidates, csv_text, run_assess


def write(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    path.write_text(csv_text(rows, delimiter), encoding="utf-8")
    return path


def test_chinese_headers_declared_as_aliases_are_accepted(tmp_path: Path) -> None:
    rows = candidates(2)
    rows[0] = CHINESE_COLUMNS
    outcome = run_assess("csv", write(tmp_path / "zh.csv", rows))
    assert outcome.code == 0, outcome.err
    assert outcome.records[0]["eligible"] is True and outcome.records[0]["id"] == "c1"


def test_headers_match_whatever_their_case_width_and_spacing(tmp_path: Path) -> None:
    rows = candidates(1)
    rows[0] = [" ID", "Highest  Degree", *COLUMNS[2:5], "ＤＡＴＥ ＯＦ ＢＩＲＴＨ", *COLUMNS[6:]]
    outcome = run_assess("csv", write(tmp_path / "mixed.csv", rows))
    assert outcome.code == 0, outcome.err


def test_a_problem_names_the_column_as_headed_in_the_file(tmp_path: Path) -> None:
    rows = candidates(1, r1={"birth_date": "1990-02-31"})
    rows[0] = CHINESE_COLUMNS
    outcome = run_assess("csv", write(tmp_path / "zh.csv", rows))
    assert outcome.errors()[1]["column"] == "出生日期"
    assert outcome.errors()[1]["field"] == "birth_date"
    assert "row 1: 出生日期 (birth_date): expected" in outcome.err


def test_unknown_columns_are_one_warning_not_one_per_row(tmp_path: Path) -> None:
    rows = [row + [f"note {n}", "x"] for n, row in enumerate(candidates(5))]
    rows[0][-2:] = ["备注", "salary"]
    outcome = run_assess("csv", write(tmp_path / "extra.csv", rows))
    assert outcome.code == 0, outcome.err
    warnings = [line for line in outcome.err.splitlines() if "unknown columns" in line]
    assert len(warnings) == 1 and "'备注', 'salary'" in warnings[0]


def test_a_missing_required_column_is_reported_once_and_nothing_is_assessed(
    tmp_path: Path,
) -> None:
    rows = [
        [v for c, v in zip(COLUMNS, row, strict=True) if c != "birth_date"]
        for row in candidates(50)
    ]
    outcome = run_assess("csv", write(tmp_path / "no-birth-date.csv", rows))
    assert outcome.code == 1 and outcome.records == []
    assert len(outcome.err.splitlines()) == 1
    assert "birth_date" in outcome.err and "出生日期" in outcome.err


def test_a_missing_conditional_column_fails_only_the_rows_that_need_it(tmp_path: Path) -> None:
    rows = candidates(2, r2={"park": "lingang"})
    rows = [row[:-1] for row in rows]  # no key_enterprise: asked of Zhangjiang employees only
    outcome = run_assess("csv", write(tmp_path / "no-key-enterprise.csv", rows))
    assert list(outcome.errors()) == [1]
    assert outcome.errors()[1]["field"] == "key_enterprise"
    assert outcome.records[1]["eligible"] is True


def test_two_columns_for_the_same_answer_are_refused(tmp_path: Path) -> None:
    rows = [row + [row[5]] for row in candidates(1)]
    rows[0][-1] = "出生日期"
    outcome = run_assess("csv", write(tmp_path / "twice.csv", rows))
    assert outcome.code == 1 and outcome.records == []
    assert "'birth_date'" in outcome.err and "'出生日期'" in outcome.err


def test_semicolon_separated_export_is_read(tmp_path: Path) -> None:
    outcome = run_assess("csv", write(tmp_path / "semicolons.csv", candidates(2), ";"))
    assert outcome.code == 0, outcome.err
    assert outcome.rows() == [1, 2]


def test_more_values_than_columns_fail_the_row(tmp_path: Path) -> None:
    rows = candidates(2)
    rows[2] = rows[2] + ["shifted"]
    outcome = run_assess("csv", write(tmp_path / "wide.csv", rows))
    assert list(outcome.errors()) == [2]
    assert f"at most {len(COLUMNS)} values" in outcome.errors()[2]["expected"]


def test_blank_rows_are_skipped_and_keep_the_numbering(tmp_path: Path) -> None:
    rows = candidates(3)
    rows.insert(2, [""] * len(COLUMNS))
    rows.insert(3, [])
    outcome = run_assess("csv", write(tmp_path / "gaps.csv", rows))
    assert outcome.code == 0, outcome.err
    assert outcome.rows() == [1, 4, 5]  # rows 2 and 3 are blank, as in the spreadsheet
    assert "blank and skipped: 2" in outcome.err
