"""`kvisa assess` on real files: the command's own function with the shipped flows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvisa.bot.assess.batch import assess_file
from kvisa.bot.assess.reading import Kind
from kvisa.bot.i18n import Lang
from tests.support import content

TODAY = dt.date(2026, 11, 25)
# One candidate as HR would type them: every answer id a column, the id first.
CANDIDATE = {
    "id": "c1",
    "degree": "doctorate",
    "degree_field_stem": "yes",
    "degree_from_recognized": "yes",
    "stem_work_at_recognized": "yes",
    "birth_date": "1988-03-01",
    "residence_country": "SG",
    "passport_expiry": "2030-02-01",
    "planned_application": "2026-12-01",
    "plan": "employed",
    "park": "zhangjiang",
    "key_enterprise": "yes",
}
COLUMNS = list(CANDIDATE)
# The same columns under Chinese headers (aliases declared in flows/interview.yaml).
CHINESE_COLUMNS = [
    "编号",
    "最高学历",
    "STEM学位",
    "毕业于知名院校",
    "目前从事STEM教学或科研",
    "出生日期",
    "居住国家或地区",
    "护照到期日",
    "计划申请日期",
    "在沪计划",
    "园区",
    "重点科技企业",
]


def csv_text(rows: Sequence[Sequence[object]], delimiter: str = ",") -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue()


def candidates(count: int, **changes: dict[str, str]) -> list[list[str]]:
    """A header and `count` rows; `changes["r3"]` replaces values in row 3."""
    rows = [COLUMNS]
    for number in range(1, count + 1):
        row = {**CANDIDATE, "id": f"c{number}", **changes.get(f"r{number}", {})}
        rows.append([row[column] for column in COLUMNS])
    return rows


@dataclass
class Outcome:
    code: int
    records: list[dict[str, Any]]
    err: str

    def rows(self) -> list[int]:
        return [record["row"] for record in self.records]

    def errors(self) -> dict[int, dict[str, Any]]:
        return {r["row"]: r["error"] for r in self.records if "error" in r}


def run_assess(
    kind: Kind,
    path: Path,
    *,
    lang: Lang = "en",
    output: Path | None = None,
    today: dt.date = TODAY,
) -> Outcome:
    """What `kvisa assess --csv/--xlsx FILE` (or a JSON profile) prints and returns."""
    flows, catalogs = content()
    out, err = io.StringIO(), io.StringIO()
    code = assess_file(flows, catalogs[lang], kind, path, today, output, out, err)
    text = out.getvalue()

    def strict(name: str) -> None:
        raise AssertionError(f"{name} in the output")

    if kind == "json" and text:
        records = [json.loads(text, parse_constant=strict)]
    else:
        records = [json.loads(line, parse_constant=strict) for line in text.split("\n") if line]
    return Outcome(code, records, err.getvalue())
