"""Encodings: UTF-8, UTF-8 with BOM and GB18030 are read; an unreadable byte fails its row only."""

from __future__ import annotations

import codecs
from pathlib import Path

from tests.assess.conftest import CHINESE_COLUMNS, candidates, csv_text, run_assess


def test_utf8_file_with_chinese_values_is_read(tmp_path: Path) -> None:
    rows = candidates(2, r2={"id": "李四", "residence_country": "德国"})
    path = tmp_path / "utf8.csv"
    path.write_bytes(csv_text(rows).encode("utf-8"))
    outcome = run_assess("csv", path)
    assert outcome.code == 0, outcome.err
    assert [r["id"] for r in outcome.records] == ["c1", "李四"]
    assert "GB18030" not in outcome.err


def test_utf8_with_bom_as_excel_saves_csv_utf8(tmp_path: Path) -> None:
    path = tmp_path / "excel-utf8.csv"
    path.write_bytes(codecs.BOM_UTF8 + csv_text(candidates(2)).encode("utf-8"))
    outcome = run_assess("csv", path)
    assert outcome.code == 0, outcome.err
    assert [r["id"] for r in outcome.records] == ["c1", "c2"]  # the BOM is not in the header
    assert "unknown columns" not in outcome.err


def test_gb18030_file_from_chinese_excel_is_read(tmp_path: Path) -> None:
    rows = candidates(3, r2={"id": "张三", "residence_country": "德国"})
    rows[0] = CHINESE_COLUMNS
    path = tmp_path / "chinese-excel.csv"
    path.write_bytes(csv_text(rows).encode("gb18030"))
    outcome = run_assess("csv", path)
    assert outcome.code == 0, outcome.err
    assert [r["id"] for r in outcome.records] == ["c1", "张三", "c3"]
    assert "read as GB18030" in outcome.err


def test_a_byte_that_is_not_utf8_fails_its_row_and_the_others_are_assessed(
    tmp_path: Path,
) -> None:
    # The trial: one Latin-1 byte lost 14,910 of 20,000 rows and printed a traceback.
    rows = candidates(20, r1={"id": "王五"})
    data = csv_text(rows).encode("utf-8").replace(b"c7,", b"Jos\xe9,", 1)
    path = tmp_path / "one-bad-byte.csv"
    path.write_bytes(data)
    outcome = run_assess("csv", path)
    assert outcome.code == 1
    assert outcome.rows() == list(range(1, 21))
    assert list(outcome.errors()) == [7]
    error = outcome.errors()[7]
    assert (error["field"], error["column"]) == ("id", "id")
    assert "0xE9" in error["expected"] and error["value"] == "Jos\\xE9"
    assert "row 7: id:" in outcome.err and "Traceback" not in outcome.err


def test_an_unreadable_byte_in_a_gb18030_file_fails_its_row_only(tmp_path: Path) -> None:
    rows = candidates(
        4, r1={"id": "张三"}, r2={"id": "李四"}, r3={"birth_date": "1988-03-02"}, r4={"id": "赵六"}
    )
    rows[0] = CHINESE_COLUMNS
    data = csv_text(rows).encode("gb18030").replace(b"1988-03-02", b"1988-03-02\xff")
    path = tmp_path / "gb-bad-byte.csv"
    path.write_bytes(data)
    outcome = run_assess("csv", path)
    assert list(outcome.errors()) == [3]
    error = outcome.errors()[3]
    assert error["column"] == "出生日期" and error["field"] == "birth_date"
    assert "GB18030" in error["expected"]
    assert [r["id"] for r in outcome.records] == ["张三", "李四", "c3", "赵六"]


def test_utf16_is_refused_with_a_message_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "unicode-text.csv"
    path.write_bytes(csv_text(candidates(1)).encode("utf-16"))
    outcome = run_assess("csv", path)
    assert outcome.code == 1 and outcome.records == []
    assert "UTF-16" in outcome.err and "CSV UTF-8" in outcome.err
