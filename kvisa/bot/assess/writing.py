"""`kvisa assess` output: JSON (one line a row, or one indented object), or an XLSX workbook."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

from kvisa.bot.i18n import N_, Text

XLSX_CELL_LIMIT = 32_767  # characters Excel keeps in a cell


class ResultWriter(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None:
        """Finish the output (a file appears only now)."""

    def discard(self) -> None:
        """Give up: a file output is not written at all."""


def dumps(record: Mapping[str, Any], indent: int | None = None) -> str:
    # allow_nan=False: output is standard JSON, never NaN or Infinity (reading names them first).
    return json.dumps(record, ensure_ascii=False, allow_nan=False, indent=indent)


class JsonWriter:
    """One JSON line a record; or, with `indent`, indented objects (the single-profile form)."""

    def __init__(self, stream: TextIO, indent: int | None = None) -> None:
        self.stream = stream
        self.indent = indent

    def write(self, record: Mapping[str, Any]) -> None:
        self.stream.write(dumps(record, self.indent) + "\n")

    def close(self) -> None:
        self.stream.flush()

    def discard(self) -> None:
        self.stream.flush()


def _lines(items: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]) -> str:
    return "\n".join(line(item) for item in items)


class XlsxWriter:
    """A workbook with one sheet, one row a candidate; saved whole when closed."""

    def __init__(self, path: Path, t: Text) -> None:
        from openpyxl import Workbook

        self.path = path
        self.t = t
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(t(N_("Assessment")))
        self.sheet.freeze_panes = "A2"
        self.sheet.append(
            [
                self.cell(t(title))
                for title in (
                    N_("Row"),
                    N_("ID"),
                    N_("Eligible"),
                    N_("Channels"),
                    N_("Age at application"),
                    N_("Needs proof of early career (above 35)"),
                    N_("Planned application"),
                    N_("Why not eligible"),
                    N_("Checklist"),
                    N_("Warnings"),
                    N_("Deadlines"),
                    N_("Decisions expected"),
                    N_("Problem: column"),
                    N_("Problem: expected"),
                    N_("Problem: value"),
                )
            ]
        )

    def cell(self, value: object) -> object:
        """A value as a cell; text always stays text (a leading = is not made a formula)."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        if not isinstance(value, str):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)[:XLSX_CELL_LIMIT]
        cell = WriteOnlyCell(self.sheet, value=text)
        cell.data_type = "s"
        return cell

    def write(self, record: Mapping[str, Any]) -> None:
        t = self.t
        error: Mapping[str, Any] = record.get("error") or {}
        row: list[object] = [record.get("row"), record.get("id")]
        if error:
            row += [None] * 10 + [
                error.get("column") or error.get("field"),
                error.get("expected"),
                error.get("value"),  # already shown safely: text, a number, true/false or none
            ]
        else:
            row += [
                record["eligible"],
                ", ".join(record["channels"]),
                record["age_at_application"],
                record["needs_age_proof"],
                record["planned_application"],
                _lines(record["reasons"], lambda r: str(r["text"])),
                _lines(record["checklist"], lambda i: str(i["title"])),
                _lines(record["warnings"], lambda w: str(w["text"])),
                _lines(
                    record["deadlines"],
                    lambda d: t(
                        N_("{title}: {date} (act by {act_by})"),
                        title=d["title"],
                        date=d["date"],
                        act_by=d["act_by"],
                    ),
                ),
                _lines(
                    record["estimates"],
                    lambda e: t(
                        N_("{title}: {earliest} to {latest}"),
                        title=e["title"],
                        earliest=e["earliest"],
                        latest=e["latest"],
                    ),
                ),
            ]
        self.sheet.append([self.cell(value) for value in row])

    def close(self) -> None:
        # Written beside the target and renamed, so a failure never leaves half a workbook.
        partial = partial_path(self.path)
        try:
            self.workbook.save(partial)
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)

    def discard(self) -> None:
        self.workbook.close()


def open_output(path: Path | None, stream: TextIO, t: Text, indent: int | None) -> ResultWriter:
    """Where results go: an .xlsx workbook, another file as JSON lines, or `stream`."""
    if path is None:
        return JsonWriter(stream, indent)
    if path.suffix.lower() == ".xlsx":
        return XlsxWriter(path, t)
    return _JsonFile(path)


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class _JsonFile(JsonWriter):
    """JSON lines into a file, renamed into place when complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(partial_path(path).open("w", encoding="utf-8"))

    def close(self) -> None:
        self.stream.close()
        os.replace(partial_path(self.path), self.path)

    def discard(self) -> None:
        self.stream.close()
        partial_path(self.path).unlink(missing_ok=True)
