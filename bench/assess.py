"""`kvisa assess` on 20,000 candidates: rows per second, CSV and XLSX in, JSON lines and XLSX out.

Runs the command as HR does (a new process each time, start-up included) on generated files:
UTF-8 CSV, GB18030 CSV with Chinese headers and one unreadable byte, and an XLSX workbook.
`--baseline DIR` also runs the CSV case with the checkout in DIR (e.g. an export of main) for
a before/after on the same machine, back to back.
Run: .venv/bin/python bench/assess.py [--rows 20000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.assess.conftest import CANDIDATE, CHINESE_COLUMNS, COLUMNS  # noqa: E402

VARIANTS = [  # a spread of decisions: eligible both ways, refused, Lingang, a bad date
    {},
    {"degree": "none", "stem_work_at_recognized": "no", "park": "other", "plan": "startup"},
    {"park": "lingang", "birth_date": "1999-07-15", "residence_country": "DE"},
    {"degree": "master", "degree_field_stem": "no", "birth_date": "2001-01-31"},
    {"birth_date": "1990-02-31"},
]


def rows(count: int) -> list[list[str]]:
    return [
        [{**CANDIDATE, "id": f"候选人{n}", **VARIANTS[n % len(VARIANTS)]}[c] for c in COLUMNS]
        for n in range(1, count + 1)
    ]


def write_csv(path: Path, header: list[str], body: list[list[str]], encoding: str) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([header, *body])
    path.write_bytes(buffer.getvalue().encode(encoding))


def write_xlsx(path: Path, body: list[list[str]]) -> None:
    from openpyxl import Workbook

    book = Workbook()  # not write-only: shared strings and a dimension, as Excel saves them
    sheet = book.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for row in body:
        sheet.append(row)
    book.save(path)


def timed(args: list[str], cwd: Path, checkout: Path = ROOT) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout), "KVISA_DATA_DIR": str(cwd / "var")}
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "assess", *args, "--today", "2026-11-25"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if run.returncode not in (0, 1) or "Traceback" in run.stderr:
        raise SystemExit(f"kvisa assess {' '.join(args)} failed:\n{run.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--baseline", type=Path, help="another checkout to run the CSV case with")
    options = parser.parse_args()
    count = options.rows
    body = rows(count)
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        write_csv(work / "utf8.csv", COLUMNS, body, "utf-8")
        gb = [row[:] for row in body]
        gb[count // 2][0] = "@@"
        write_csv(work / "gb18030.csv", CHINESE_COLUMNS, gb, "gb18030")
        data = (work / "gb18030.csv").read_bytes().replace(b"@@", b"\xff", 1)
        (work / "gb18030.csv").write_bytes(data)
        write_xlsx(work / "candidates.xlsx", body)
        cases = [
            ("CSV UTF-8 -> JSON lines", ["--csv", "utf8.csv"], ROOT),
            ("CSV GB18030, one bad byte -> JSON lines", ["--csv", "gb18030.csv"], ROOT),
            ("XLSX -> JSON lines", ["--xlsx", "candidates.xlsx"], ROOT),
            ("CSV UTF-8 -> XLSX", ["--csv", "utf8.csv", "--output", "out.xlsx"], ROOT),
            ("XLSX -> XLSX", ["--xlsx", "candidates.xlsx", "--output", "out.xlsx"], ROOT),
        ]
        if options.baseline:
            cases.insert(
                0, ("baseline: CSV UTF-8 -> JSON lines", ["--csv", "utf8.csv"], options.baseline)
            )
        print(f"kvisa assess, {count:,} rows, one process each (start-up included), best of 3")
        print("(the cases run in turn, three rounds, so a baseline runs back to back with ours)")
        best = {name: float("inf") for name, _, _ in cases}
        for _ in range(3):
            for name, args, checkout in cases:
                best[name] = min(best[name], timed(args, work, checkout))
        for name, seconds in best.items():
            print(f"{name:<42} {seconds:6.2f} s   {count / seconds:8,.0f} rows/s")


if __name__ == "__main__":
    main()
