"""Property tests: whatever the bytes, `kvisa assess` neither crashes nor loses a row."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvisa.bot.content.loader import load_flows
from kvisa.bot.paths import flows_dir
from tests.assess.conftest import CANDIDATE, COLUMNS, Outcome, csv_text, run_assess

FLOWS = load_flows(flows_dir())
ALIASES = {q.id: [q.id, *q.aliases] for q in FLOWS.questions} | {"id": ["id", "编号"]}
HEADER = csv_text([COLUMNS]).encode()
SUMMARY = re.compile(r"rows assessed: (\d+), not assessed: (\d+), blank and skipped: (\d+)")
# Text a cell may hold: any character (CSV quoting is the writer's job), Chinese often.
CELL = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from('，。张三出生日期,"\r\n ;\t')),
    max_size=12,
)


def assess_bytes(data: bytes) -> Outcome:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "candidates.csv"
        path.write_bytes(data)
        return run_assess("csv", path)


def records_below_the_header(data: bytes) -> int:
    """CSV records after the header, counted on the raw bytes: the structure (commas, quotes,
    line ends) is ASCII, the same in UTF-8, GB18030 and Latin-1, which reads any byte."""
    text = data.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    return sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=600), bom=st.booleans())
def test_random_bytes_below_a_header_lose_no_row_and_never_raise(body: bytes, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + HEADER + body
    outcome = assess_bytes(data)  # a traceback fails the test
    assert outcome.code in (0, 1)
    rows = outcome.rows()
    assert rows == sorted(set(rows))
    summary = SUMMARY.search(outcome.err)
    if summary is None:  # a file-level problem: only a header, or blank rows below it
        assert rows == [] and "the file has a header but no rows" in outcome.err
        return
    assessed, failed, blank = map(int, summary.groups())
    assert len(rows) == assessed + failed == len(outcome.errors()) + assessed
    assert len(rows) + blank == records_below_the_header(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_any_bytes_at_all_give_results_or_a_message(data: bytes) -> None:
    outcome = assess_bytes(data)
    assert outcome.code in (0, 1)
    assert outcome.records or outcome.err.startswith("kvisa assess: ")


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, list[int], list[int]]:
    """A CSV file HR might make: any headers among the aliases, rows of valid or random values,
    blank rows, extra columns, one of three encodings; some rows get a byte no encoding reads.

    Returns the file, the numbers of the rows that are not blank, and those of the bad bytes.
    """
    header = [draw(st.sampled_from(ALIASES[column])) for column in COLUMNS]
    header = [draw(st.sampled_from([name, name.upper(), f" {name} "])) for name in header]
    extra = draw(st.lists(st.sampled_from(["备注", "notes", ""]), max_size=2))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    rows: list[list[str]] = []
    for number in range(1, draw(st.integers(1, 12)) + 1):
        if draw(st.integers(0, 5)) == 0:
            rows.append([draw(st.sampled_from(["", " "]))] * (len(COLUMNS) + len(extra)))
            continue
        row = [f"c{number}"]
        for column in COLUMNS[1:]:
            row.append(draw(st.one_of(st.just(CANDIDATE[column]), CELL)))
        rows.append(row + [draw(CELL) for _ in extra])
    bad = [n for n, row in enumerate(rows, 1) if row[0] and draw(st.integers(0, 6)) == 0]
    for number in bad:
        rows[number - 1][0] = f"c{number}@@"  # replaced by an unreadable byte once encoded
    data = csv_text([header + extra, *rows]).encode(encoding)
    for number in bad:
        data = data.replace(f"c{number}@@".encode(), f"c{number}".encode() + b"\xff")
    kept = [n for n, row in enumerate(rows, 1) if any(cell.strip() for cell in row)]
    return data, kept, bad


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_random_csv_shapes_every_row_comes_out_once(
    case: tuple[bytes, list[int], list[int]],
) -> None:
    data, kept, bad = case
    outcome = assess_bytes(data)
    if not kept:
        assert outcome.code == 1 and "a header but no rows" in outcome.err
        return
    assert outcome.rows() == kept, outcome.err
    for number in bad:
        error = outcome.errors()[number]
        assert error["field"] == "id" and "0xFF" in error["expected"]
    assert outcome.code == (1 if outcome.errors() else 0)
    assert "internal error" not in outcome.err
