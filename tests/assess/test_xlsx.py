"""Excel workbooks in and out (openpyxl), since HR works in Excel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

from tests.assess.conftest import CHINESE_COLUMNS, COLUMNS, candidates, csv_text, run_assess


def workbook(path: Path, rows: list[list[object]], first_sheet: str | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    if first_sheet is not None:
        sheet.title = first_sheet
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def read_back(path: Path) -> list[tuple[object, ...]]:
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    return list(sheet.iter_rows(values_only=True))


def test_cells_typed_by_excel_are_read_as_hr_meant_them(tmp_path: Path) -> None:
    rows: list[list[object]] = list(candidates(2))
    # Excel keeps dates as dates, numbers as numbers and TRUE as a boolean.
    rows[1] = [1001, "doctorate", True, True, True, dt.datetime(1988, 3, 1), "SG"]
    rows[1] += [dt.date(2030, 2, 1), None, "employed", "zhangjiang", 1]
    outcome = run_assess("xlsx", workbook(tmp_path / "typed.xlsx", rows))
    assert outcome.code == 0, outcome.err
    assert [r["id"] for r in outcome.records] == ["1001", "c2"]
    assert outcome.records[0]["planned_application"] == "2026-11-25"  # empty: the default


def test_xlsx_with_chinese_headers_and_trailing_empty_cells(tmp_path: Path) -> None:
    rows: list[list[object]] = [[*CHINESE_COLUMNS, None, None]]
    rows += [[*row, None, None] for row in candidates(2)[1:]]
    rows.insert(2, [None] * len(rows[0]))
    outcome = run_assess("xlsx", workbook(tmp_path / "zh.xlsx", rows))
    assert outcome.code == 0, outcome.err
    assert outcome.rows() == [1, 3] and "unknown columns" not in outcome.err


def test_xlsx_problems_name_row_and_column(tmp_path: Path) -> None:
    rows: list[list[object]] = list(candidates(3, r2={"plan": "tourism"}))
    rows[3][5] = float("nan")  # openpyxl writes it; the reader must still refuse it by name
    outcome = run_assess("xlsx", workbook(tmp_path / "bad.xlsx", rows))
    assert outcome.code == 1 and outcome.rows() == [1, 2, 3]
    assert outcome.errors()[2]["field"] == "plan"
    assert outcome.errors()[3]["field"] == "birth_date"


def test_a_file_that_is_not_a_workbook_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "renamed.xlsx"
    path.write_text("id,degree\nc1,master\n")
    outcome = run_assess("xlsx", path)
    assert outcome.code == 1 and outcome.records == []
    assert "renamed.xlsx: it is not an Excel workbook" in outcome.err


def test_an_empty_workbook_and_a_header_only_workbook_exit_non_zero(tmp_path: Path) -> None:
    empty = run_assess("xlsx", workbook(tmp_path / "empty.xlsx", []))
    assert empty.code == 1 and "the file is empty" in empty.err
    header = run_assess("xlsx", workbook(tmp_path / "header.xlsx", [COLUMNS]))
    assert header.code == 1 and "a header but no rows" in header.err


def test_results_go_to_a_workbook_one_row_per_input_row(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    rows = candidates(3, r2={"birth_date": "1990-02-31"}, r3={"id": '=HYPERLINK("x")'})
    source.write_text(csv_text(rows), encoding="utf-8")
    target = tmp_path / "results.xlsx"
    outcome = run_assess("csv", source, output=target)
    assert outcome.code == 1 and outcome.records == []  # nothing on standard output
    header, *lines = read_back(target)
    assert header[:3] == ("Row", "ID", "Eligible")
    assert [line[0] for line in lines] == [1, 2, 3]
    assert lines[0][2] is True and "Passport" in str(lines[0][8])
    assert lines[1][12:14] == ("birth_date", "a real date as YYYY-MM-DD")
    assert lines[2][1] == '=HYPERLINK("x")'  # text stays text: never a formula
    assert not (tmp_path / "results.xlsx.partial").exists()


def test_the_workbook_speaks_chinese_with_lang_zh(tmp_path: Path) -> None:
    source = workbook(tmp_path / "in.xlsx", list(candidates(1)))
    target = tmp_path / "结果.xlsx"
    assert run_assess("xlsx", source, output=target, lang="zh").code == 0
    header, line = read_back(target)
    assert header[:3] == ("行", "编号", "是否符合条件")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(line[8]))


def test_a_file_problem_leaves_no_output_file(tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_bytes(b"")
    for name in ("out.xlsx", "out.jsonl"):
        assert run_assess("csv", source, output=tmp_path / name).code == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


def test_results_as_json_lines_in_a_file(tmp_path: Path) -> None:
    source = workbook(tmp_path / "in.xlsx", list(candidates(2)))
    target = tmp_path / "out.jsonl"
    assert run_assess("xlsx", source, output=target).code == 0
    assert [line[:12] for line in target.read_text("utf-8").splitlines()] == [
        '{"row": 1, "',
        '{"row": 2, "',
    ]
