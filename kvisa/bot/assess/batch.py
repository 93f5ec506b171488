"""`kvisa assess` from file to results: every row assessed, or named with its column and problem."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kvisa.bot.assess.reading import (
    GB18030,
    FileProblem,
    Kind,
    Problem,
    Row,
    Table,
    open_csv,
    open_json,
    open_xlsx,
    shown,
)
from kvisa.bot.assess.writing import ResultWriter, open_output
from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import N_, Text
from kvisa.bot.policy.profile import assess_profile
from kvisa.errors import InputError

logger = logging.getLogger(__name__)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_today(value: str) -> dt.date | None:
    """`--today` as YYYY-MM-DD (only that form), or None."""
    if not _ISO_DAY.match(value.strip()):
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def open_input(flows: Flows, kind: Kind, path: Path) -> Table:
    return {"json": open_json, "csv": open_csv, "xlsx": open_xlsx}[kind](flows, path)


def assess_file(
    flows: Flows,
    t: Text,
    kind: Kind,
    path: Path,
    today: dt.date,
    output: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """The whole command: 0 when every row was assessed, 1 when any was not or the file failed.

    Results go to `output` (.xlsx: a workbook; else JSON lines) or to `out` as JSON.
    """
    try:
        table = open_input(flows, kind, path)
        writer = open_output(output, out, t, indent=2 if kind == "json" else None)
        try:
            summary = run(flows, t, table, today, writer, err, str(path))
        except BaseException:
            writer.discard()
            raise
        writer.close()
    except FileProblem as problem:
        print(file_problem_line(t, str(path), problem), file=err)
        return 1
    return 1 if summary.failed else 0


@dataclass
class Summary:
    assessed: int = 0
    failed: int = 0
    blank: int = 0


def run(
    flows: Flows,
    t: Text,
    table: Table,
    today: dt.date,
    writer: ResultWriter,
    err: TextIO,
    name: str,
) -> Summary:
    """Assess every row of `table` into `writer`; warnings and row problems go to `err`."""
    if table.unknown:
        message = (
            N_("kvisa assess: warning: {file}: unknown keys, ignored: {names}")
            if table.kind == "json"
            else N_("kvisa assess: warning: {file}: unknown columns, ignored: {names}")
        )
        print(t(message, file=name, names=", ".join(map(repr, table.unknown))), file=err)
    if table.encoding == GB18030:
        print(
            t(N_("kvisa assess: {file}: read as GB18030 (Chinese Excel's CSV)"), file=name),
            file=err,
        )
    summary = Summary()
    for row in table.rows:
        record, problem = assess_row(flows, t, table, row, today)
        writer.write(record)
        if problem is not None:
            summary.failed += 1
            print(row_problem_line(t, row.number, problem), file=err)
        else:
            summary.assessed += 1
    summary.blank = len(table.blank_rows)
    if table.kind != "json":
        print(
            t(
                N_(
                    "kvisa assess: rows assessed: {assessed}, not assessed: {failed}, "
                    "blank and skipped: {blank}"
                ),
                assessed=summary.assessed,
                failed=summary.failed,
                blank=summary.blank,
            ),
            file=err,
        )
    return summary


def assess_row(
    flows: Flows, t: Text, table: Table, row: Row, today: dt.date
) -> tuple[dict[str, Any], Problem | None]:
    """The row's output record, and its problem when it was not assessed."""
    problem = row.problem
    result: dict[str, Any] = {}
    if problem is None:
        try:
            result = assess_profile(flows, t, row.profile, today)
        except InputError as exc:
            problem = Problem(
                exc.field, table.columns.get(exc.field), exc.expected, shown(exc.value)
            )
        except Exception as exc:  # a policy bug must not cost the other rows their results
            logger.error("assess: row %d failed in the policy (%s)", row.number, type(exc).__name__)
            problem = Problem("", None, N_("a row the policy can assess (internal error)"), None)
    if problem is not None:
        result = {
            "error": {
                "row": row.number,
                "field": problem.field,
                "column": problem.column,
                "expected": problem.expected_text,
                "value": problem.value,
            }
        }
    if table.kind == "json":
        return result, problem
    return {"row": row.number, **({} if row.id is None else {"id": row.id}), **result}, problem


def row_problem_line(t: Text, row: int, problem: Problem) -> str:
    field, column = problem.field, problem.column
    where = f"{column} ({field})" if column and field and column != field else column or field
    expected = t(problem.expected, **problem.params)
    value = repr(problem.value)
    if not where:
        return t(
            N_("kvisa assess: row {row}: expected {expected}, got {value}"),
            row=row,
            expected=expected,
            value=value,
        )
    return t(
        N_("kvisa assess: row {row}: {column}: expected {expected}, got {value}"),
        row=row,
        column=where,
        expected=expected,
        value=value,
    )


def file_problem_line(t: Text, name: str, problem: FileProblem) -> str:
    return t(
        N_("kvisa assess: {file}: {problem}"),
        file=name,
        problem=t(problem.message, **problem.params),
    )
