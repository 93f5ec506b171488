"""`kvisa assess` input: a JSON profile, or a CSV or XLSX file with one candidate a row.

Every data row comes out as a `Row`: the profile (answer id -> value) or the first `Problem`
found in it. What concerns the whole file (empty, a header without rows, a required column
missing, not a workbook) raises `FileProblem`, before any row when it can be known then.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as default
from pathlib import Path
from typing import Any, Literal

from kvisa.bot.content.model import Flows, Question, column_key
from kvisa.bot.i18n import N_
from kvisa.errors import BotError

MAX_FIELD = 10_000  # characters in one value; no answer needs more than a few hundred
SHOWN = 200  # characters of a value repeated in an error
# Headers of the column that is echoed back with each result (a candidate's reference).
ID_HEADERS = ("id", "编号", "候选人编号", "序号")
Kind = Literal["json", "csv", "xlsx"]


class FileProblem(BotError):
    """The input file as a whole cannot be assessed; `message` is a msgid for `params`."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Problem:
    """Why one row was not assessed: its field and column, what was expected (a msgid)."""

    field: str
    column: str | None
    expected: str
    value: object
    params: Mapping[str, object] = default(default_factory=dict)

    @property
    def expected_text(self) -> str:
        return self.expected.format(**self.params) if self.params else self.expected


@dataclass(frozen=True)
class Row:
    number: int  # 1 = the first row below the header (a spreadsheet's row 2)
    profile: dict[str, Any]
    id: object = None  # the echoed `id` cell, shown safely; None when there is no id column
    problem: Problem | None = None


@dataclass
class Table:
    """An opened input: what its columns mean, and its rows (read as they are iterated)."""

    kind: Kind
    columns: Mapping[str, str]  # field -> the header that gives it in this file
    unknown: tuple[str, ...]  # headers (or JSON keys) that are ignored
    rows: Iterator[Row]
    encoding: str | None = None
    blank_rows: list[int] = default(default_factory=list)  # grows while `rows` is read


# ---------------------------------------------------------------------------------------------
# Text: UTF-8 (with or without BOM), else GB18030; an undecodable byte marks its own row.

UTF8, GB18030 = "UTF-8", "GB18030"
_MARK_ERRORS = "kvisa-assess-mark"
# Each byte the chosen encoding cannot read becomes the lone surrogate U+DC00 + byte, a
# character no decoder produces, so the row and the column holding it can be named later.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _mark(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_MARK_ERRORS, _mark)

_OTHER_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in; unreadable bytes are marked, never dropped.

    UTF-8 when the file has its BOM or is valid UTF-8; else GB18030 when the whole file is;
    else whichever of the two reads more of the lines that are not plain ASCII (UTF-8 on a tie).
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", _MARK_ERRORS), UTF8
    if data.startswith(_OTHER_BOMS):
        raise FileProblem(N_("it is UTF-16 or UTF-32 text: save it as CSV UTF-8 and try again"))
    for codec, name in (("utf-8", UTF8), ("gb18030", GB18030)):
        try:
            return data.decode(codec), name
        except UnicodeDecodeError:
            pass
    utf8 = gb = 0
    for line in data.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            try:
                line.decode("gb18030")
                gb += 1
            except UnicodeDecodeError:
                pass
    codec, name = ("gb18030", GB18030) if gb > utf8 else ("utf-8", UTF8)
    return data.decode(codec, _MARK_ERRORS), name


def shown(value: object) -> object:
    """A value as it may be repeated in output: JSON-safe, unreadable bytes as \\xNN, short."""
    if isinstance(value, str):
        text = _SURROGATE.sub(_escape, value)
        return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(value):,} characters)"
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite_name(value)
    if isinstance(value, NonFinite):
        return value.name
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return "[…]"
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return shown(str(value))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04X}"


def _non_finite_name(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


@dataclass(frozen=True)
class NonFinite:
    """JSON's NaN, Infinity or -Infinity, kept apart so it is refused by name."""

    name: str


def value_problem(
    field_id: str, column: str | None, value: object, encoding: str
) -> Problem | None:
    """What makes a value unreadable before any answer rule looks at it, if anything."""
    if isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad:
            code = ord(bad.group())
            if 0xDC80 <= code <= 0xDCFF:
                expected = N_("text in {encoding} (byte 0x{byte:02X} is not {encoding})")
                params: dict[str, object] = {"encoding": encoding, "byte": code - 0xDC00}
            else:
                expected, params = N_("text without lone surrogates (U+{code:04X})"), {"code": code}
            return Problem(field_id, column, expected, shown(value), params)
        if len(value) > MAX_FIELD:
            return Problem(
                field_id,
                column,
                N_("at most {limit:,} characters"),
                shown(value),
                {"limit": MAX_FIELD},
            )
        return None
    if isinstance(value, (dict, list)):
        return Problem(
            field_id,
            column,
            N_("a single value (text, a number, true or false), not a list or an object"),
            shown(value),
        )
    if isinstance(value, NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        return Problem(field_id, column, N_("a finite number or text"), shown(value))
    return None


# ---------------------------------------------------------------------------------------------
# Columns: ids, the aliases declared in flows/interview.yaml, event ids, and the id column.


def known_columns(flows: Flows) -> dict[str, str]:
    """Header key (see `column_key`) -> the field it gives."""
    known = {column_key(header): "id" for header in ID_HEADERS}
    known[column_key("deficiency_tolerance")] = "deficiency_tolerance"
    for event in flows.timeline.events:
        known[column_key(event.id)] = event.id
    for question in flows.questions:
        for name in (question.id, *question.aliases):
            known[column_key(name)] = question.id
    return known


def required_questions(flows: Flows) -> list[Question]:
    """Questions every row must answer: asked of everyone, with no default."""
    return [
        q
        for q in flows.questions
        if q.when is None and q.kind != "zone" and not (q.date and q.date.default)
    ]


@dataclass(frozen=True)
class Header:
    fields: tuple[str | None, ...]  # per position: the field, or None for an ignored column
    columns: dict[str, str]  # field -> header
    unknown: tuple[str, ...]


def read_header(flows: Flows, cells: Sequence[object]) -> Header:
    known = known_columns(flows)
    names = [_header_text(cell) for cell in cells]
    while names and not names[-1]:
        names.pop()  # spreadsheets carry empty cells after the last column
    fields: list[str | None] = []
    columns: dict[str, str] = {}
    unknown: list[str] = []
    for position, name in enumerate(names, 1):
        field_id = known.get(column_key(name)) if name else None
        if field_id is None:
            unknown.append(name if name else f"#{position}")
        elif field_id in columns:
            raise FileProblem(
                N_("the columns {first!r} and {second!r} both give {field}: keep one"),
                first=columns[field_id],
                second=name,
                field=field_id,
            )
        else:
            columns[field_id] = name
        fields.append(field_id)
    missing = [q for q in required_questions(flows) if q.id not in columns]
    if missing:
        listed = "; ".join(
            q.id + (f" ({', '.join(q.aliases)})" if q.aliases else "") for q in missing
        )
        raise FileProblem(N_("no column for {fields}: every row needs it"), fields=listed)
    return Header(tuple(fields), columns, tuple(unknown))


def _header_text(cell: object) -> str:
    text = shown(cell_value(cell))
    return text.strip() if isinstance(text, str) else str(text)


def cell_value(cell: object) -> object:
    """A CSV or spreadsheet cell as a profile value: text as typed, dates as YYYY-MM-DD."""
    if cell is None:
        return ""
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, bool):
        return cell
    if isinstance(cell, dt.datetime):
        return cell.date().isoformat() if cell.time() == dt.time() else cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    if isinstance(cell, float):
        if math.isfinite(cell) and cell.is_integer():
            return str(int(cell))
        return cell if not math.isfinite(cell) else repr(cell)
    return str(cell)


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def table_rows(
    flows: Flows,
    kind: Kind,
    records: Iterable[Sequence[object] | csv.Error],
    encoding: str,
) -> Table:
    """The header (the first record that is not blank) and the rows below it."""
    iterator = iter(records)
    for record in iterator:
        if isinstance(record, csv.Error):
            raise FileProblem(N_("the header cannot be read as CSV ({error})"), error=str(record))
        if not all(_blank(cell) for cell in record):
            header = read_header(flows, record)
            break
    else:
        raise FileProblem(N_("the file is empty: no header and no rows"))
    blank_rows: list[int] = []

    def rows() -> Iterator[Row]:
        number = 0
        for number, record in enumerate(iterator, 1):  # noqa: B007 - the count is used below
            if isinstance(record, csv.Error):
                problem = Problem("", None, N_("a CSV row ({error})"), None, {"error": str(record)})
                yield Row(number, {}, None, problem)
            elif all(_blank(cell) for cell in record):
                blank_rows.append(number)
            else:
                yield row_of(number, header, record, encoding)
        if number == len(blank_rows):
            raise FileProblem(N_("the file has a header but no rows"))

    return Table(kind, header.columns, header.unknown, rows(), encoding, blank_rows)


def row_of(number: int, header: Header, record: Sequence[object], encoding: str) -> Row:
    profile: dict[str, Any] = {}
    problem: Problem | None = None
    ident: object = None
    for position, cell in enumerate(record):
        field_id = header.fields[position] if position < len(header.fields) else None
        if field_id is None:
            if position >= len(header.fields) and not _blank(cell) and problem is None:
                problem = Problem(
                    "",
                    None,
                    N_("at most {count} values, one for each column of the header"),
                    len(record),
                    {"count": len(header.fields)},
                )
            continue
        value = cell_value(cell)
        problem = problem or value_problem(field_id, header.columns[field_id], value, encoding)
        if field_id == "id":
            ident = shown(value)
        profile[field_id] = value
    if "id" in header.columns and ident is None:
        ident = ""
    return Row(number, profile, ident, problem)


# ---------------------------------------------------------------------------------------------
# The three formats.


def open_csv(flows: Flows, path: Path) -> Table:
    text, encoding = decode(path.read_bytes())
    # The stdlib's default limit (128 KiB) would raise mid-file; a long value is a row's problem.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    lines = io.StringIO(text, newline="")
    first = lines.readline()
    lines.seek(0)
    return table_rows(
        flows, "csv", _records(csv.reader(lines, delimiter=_delimiter(first))), encoding
    )


def _delimiter(header_line: str) -> str:
    """Comma, unless the header line holds more semicolons or tabs (other Excel exports)."""
    return max((",", ";", "\t"), key=header_line.count)


def _records(reader: Iterator[list[str]]) -> Iterator[Sequence[object] | csv.Error]:
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # not met with the default dialect; a row's problem if it is
            yield exc
            continue
        yield record


def open_xlsx(flows: Flows, path: Path) -> Table:
    import openpyxl  # imported when needed: it costs about 0.2 s

    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl has no error root: zip, XML and value errors alike
        raise FileProblem(N_("it is not an Excel workbook (.xlsx) that can be read")) from exc

    def records() -> Iterator[Sequence[object]]:
        count = 0
        try:
            if not workbook.worksheets:
                return
            for count, record in enumerate(workbook.worksheets[0].iter_rows(values_only=True)):  # noqa: B007
                yield record
        except Exception as exc:  # as above: a damaged sheet fails while it is read
            raise FileProblem(
                N_("the workbook is damaged after its row {row}: the rows after it were not read"),
                row=count,
            ) from exc
        finally:
            workbook.close()

    return table_rows(flows, "xlsx", records(), "XLSX")


def open_json(flows: Flows, path: Path) -> Table:
    text, encoding = decode(path.read_bytes())
    if not text.strip():
        raise FileProblem(N_("the file is empty: no header and no rows"))
    problem: Problem | None
    try:
        profile = json.loads(text, parse_constant=NonFinite)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and numbers longer than Python reads (4300 digits).
        where = (
            f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        )
        problem = Problem("profile", None, N_("a JSON object ({where})"), None, {"where": where})
        return Table("json", {}, (), iter([Row(1, {}, None, problem)]), encoding)
    if not isinstance(profile, dict):
        problem = Problem("profile", None, N_("a JSON object"), type(profile).__name__)
        return Table("json", {}, (), iter([Row(1, {}, None, problem)]), encoding)
    known = known_columns(flows)
    values: dict[str, Any] = {}
    columns: dict[str, str] = {}
    unknown: list[str] = []
    problem = None
    for key, value in profile.items():
        field_id = known.get(column_key(key))
        if field_id is None:
            unknown.append(str(shown(key)))
            continue
        if field_id in columns:
            problem = problem or Problem(
                field_id,
                key,
                N_("one key for {field}, not also {other!r}"),
                None,
                {"field": field_id, "other": columns[field_id]},
            )
        columns[field_id] = key
        problem = problem or value_problem(field_id, key, value, encoding)
        values[field_id] = value
    return Table("json", columns, tuple(unknown), iter([Row(1, values, None, problem)]), encoding)
