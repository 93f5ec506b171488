"""Every fact in flows/ names its source and the day it was checked; old checks are warned."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.content.freshness import stale_facts
from kvisa.bot.content.loader import load_flows
from kvisa.bot.paths import flows_dir
from kvisa.errors import FlowError
from tests.content.test_loader import edit, line_of

SHIPPED = load_flows(flows_dir())


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(flows_dir(), target)
    return target


def check(flows: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "flows", "check", *args],
        capture_output=True,
        text=True,
        env={"KVISA_FLOWS_DIR": str(flows), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_every_shipped_fact_has_a_known_source_and_an_as_of_date() -> None:
    assert len(SHIPPED.dated) >= 40
    for fact in SHIPPED.dated:
        assert fact.source in SHIPPED.sources
        assert fact.as_of <= dt.date(2026, 12, 31)
    perks = [perk for park in SHIPPED.parks for perk in park.perks]
    assert perks and all(perk.source == "seed_guide" for perk in perks)


@pytest.mark.parametrize(
    ("file", "fact_line", "removed"),
    [
        ("policy.yaml", "  practice_from: 18", "  as_of: 2026-11-25\n  below_practice"),
        ("timeline.yaml", "  - id: work_permit_decision", None),
        ("parks.yaml", '      - title: "Start-up subsidy"', None),
        ("checklist.yaml", "  - id: medical_exam", None),
    ],
)
def test_a_fact_without_as_of_is_refused_at_its_file_and_line(
    flows_copy: Path, file: str, fact_line: str, removed: str | None
) -> None:
    path = flows_copy / file
    text = path.read_text(encoding="utf-8")
    start = text.index(fact_line)
    as_of = text.index("as_of: 2026-11-25", start)
    line_start = text.rindex("\n", 0, as_of) + 1
    line_end = text.index("\n", as_of) + 1
    path.write_text(text[:line_start] + text[line_end:], encoding="utf-8")

    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)

    assert caught.value.file == f"flows/{file}"
    assert "as_of" in str(caught.value)
    run = check(flows_copy)
    assert run.returncode == 1
    assert f"flows/{file}:" in run.stderr and "as_of" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_perk_without_source_is_refused_at_its_line(flows_copy: Path) -> None:
    path = flows_copy / "parks.yaml"
    detail = '        detail: "One window for foreign talents'
    text = path.read_text(encoding="utf-8")
    start = text.index(detail)
    source = text.index("        source: seed_guide\n", start)
    path.write_text(
        text[:source] + text[source + len("        source: seed_guide\n") :], encoding="utf-8"
    )

    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)

    assert caught.value.file == "flows/parks.yaml"
    assert caught.value.line == line_of(path, '      - title: "One-stop service"')
    assert "source" in str(caught.value)


def test_an_as_of_that_is_not_a_date_is_refused(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    line = edit(path, "as_of: 2026-11-25", "as_of: last week")

    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)

    assert (caught.value.file, caught.value.line) == ("flows/faq.yaml", line)


def test_flows_check_warns_about_an_old_as_of_and_still_passes(flows_copy: Path) -> None:
    path = flows_copy / "parks.yaml"
    text = path.read_text(encoding="utf-8")
    index = text.index("as_of: 2026-11-25", text.index("Start-up subsidy"))
    path.write_text(text[:index] + "as_of: 2025-12-01" + text[index + 17 :], encoding="utf-8")
    stale_line = text[:index].count("\n")  # the fact's mapping starts on the line of `- title`

    run = check(flows_copy, "--today", "2026-12-02")

    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"flows/parks.yaml:{stale_line - 3}:")
    assert "2025-12-01" in warnings[0] and "366 days" in warnings[0]


def test_the_age_limit_is_a_setting(flows_copy: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "flows", "check", "--today", "2026-12-02"],
        capture_output=True,
        text=True,
        env={
            "KVISA_FLOWS_DIR": str(flows_copy),
            "KVISA_CONTENT_MAX_AGE_DAYS": "3",
            "PATH": "/usr/bin:/bin",
        },
        timeout=60,
    )

    assert run.returncode == 0
    assert run.stderr.count("warning") == len(SHIPPED.dated)


@given(
    today=st.dates(dt.date(2026, 11, 25), dt.date(2030, 1, 1)),
    max_age=st.integers(1, 3650),
)
def test_a_fact_is_stale_exactly_when_older_than_the_limit(today: dt.date, max_age: int) -> None:
    stale = stale_facts(SHIPPED, today, max_age)

    expected = [f for f in SHIPPED.dated if (today - f.as_of).days > max_age]
    assert sorted(stale, key=lambda f: (f.file, f.line)) == sorted(
        expected, key=lambda f: (f.file, f.line)
    )
