"""`kvisa content publish|list|diff|rollback` against the SQLite file of KVISA_DATA_DIR."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.i18n import SEPARATOR
from kvisa.storage.sqlite import SqliteStorage
from tests.publishing.conftest import CATALOGS, applicant, edit, store

ZH = CATALOGS["zh"]


def kvisa(data: Path, flows: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "content", *args],
        capture_output=True,
        text=True,
        env={"KVISA_DATA_DIR": str(data), "KVISA_FLOWS_DIR": str(flows), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


async def seed(data: Path) -> None:
    async with SqliteStorage(data / "kvisa.db") as storage:
        await store(
            storage,
            {
                "32": applicant("en", birth_date="1994-06-01"),
                "28": applicant("zh", birth_date="1998-06-01"),
            },
        )


async def notices(data: Path) -> list[str]:
    async with SqliteStorage(data / "kvisa.db") as storage:
        return await BroadcastStore(storage).ids()


def test_publish_list_diff_and_rollback(tmp_path: Path, flows_copy: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    asyncio.run(seed(data))

    first = kvisa(data, flows_copy, "publish", "--note", "baseline", "--author", "mei")
    again = kvisa(data, flows_copy, "publish")
    edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")
    dry = kvisa(data, flows_copy, "publish", "--dry-run", "--today", "2026-12-02")
    assert asyncio.run(notices(data)) == []  # the dry run sent and queued nothing
    listed_before = kvisa(data, flows_copy, "list")
    second = kvisa(data, flows_copy, "publish", "--note", "proof from 30", "--today", "2026-12-02")
    diff = kvisa(data, flows_copy, "diff", "1", "2")
    back = kvisa(data, flows_copy, "rollback", "1", "--today", "2026-12-02")
    listed = kvisa(data, flows_copy, "list")

    for run in (first, again, dry, second, diff, back, listed):
        assert run.returncode == 0, run.stderr
    assert "published version 1" in first.stdout
    assert "nothing to publish: the content is version 1 already" in again.stdout
    assert "2 applicants re-checked; 1 affected" in dry.stdout
    assert "checklist changes: 1  e.g. telegram:32" in dry.stdout
    assert "nothing was published or sent" in dry.stdout
    assert len(listed_before.stdout.splitlines()) == 1
    assert "1 applicants affected: their notices are queued as broadcast cv2" in second.stdout
    english, chinese = diff.stdout.split(SEPARATOR)
    assert "Age practice: extra proof needed above the age of: 35 → 30" in english
    assert ZH("Age practice") in chinese
    assert "queued as broadcast cv3" in back.stdout  # the rollback tells them again
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2", "3"]
    assert lines[0].split("\t")[2] == "mei" and lines[0].endswith("baseline")
    assert "rollback to 1" in lines[2] and lines[2].endswith("(current)")
    assert lines[2].split("\t")[3] == lines[0].split("\t")[3]  # the same content hash
    assert asyncio.run(notices(data)) == ["cv2", "cv3"]


def test_bad_ids_get_one_clear_line_and_a_non_zero_exit(tmp_path: Path, flows_copy: Path) -> None:
    data = tmp_path / "var"
    kvisa(data, flows_copy, "publish")

    for args, named in [
        (("diff", "1", "9"), "B: expected a published version (versions 1 to 1), got '9'"),
        (("diff", "x", "1"), "A: expected a version id"),
        (("rollback", "0"), "ID: expected a version id"),
        (("rollback", "5"), "ID: expected a published version"),
    ]:
        run = kvisa(data, flows_copy, *args)
        assert run.returncode == 2
        assert named in run.stderr and len(run.stderr.splitlines()) == 1
        assert "Traceback" not in run.stderr


def test_publishing_invalid_flows_names_file_and_line(tmp_path: Path, flows_copy: Path) -> None:
    edit(flows_copy / "faq.yaml", r"^    as_of: 2026-11-25\n", "")

    run = kvisa(tmp_path / "var", flows_copy, "publish")

    assert run.returncode == 1
    assert "flows/faq.yaml:" in run.stderr and "as_of" in run.stderr
    assert "Traceback" not in run.stderr
