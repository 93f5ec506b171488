"""flows/faq.yaml as content: `kvisa flows check` refuses an entry without a source or without
one of the languages, naming the file and line; an edited faq.yaml that passes the check is what
the bot answers from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kvisa.bot.content import load_content
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.publishing.conftest import edit, flows_copy
from tests.support import NOON_SHANGHAI

__all__ = ["flows_copy"]


def check(flows: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "flows", "check"],
        capture_output=True,
        text=True,
        env={"KVISA_FLOWS_DIR": str(flows), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_entry_without_a_source_is_refused_at_its_line(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    edit(path, r"^(  - id: what_is_k_visa\n(?:    .*\n)*?)    source: \S+\n", r"\1")
    run = check(flows_copy)
    assert run.returncode == 1
    assert f"flows/faq.yaml:{line_of(path, '  - id: what_is_k_visa')}" in run.stderr
    assert "source" in run.stderr and "Traceback" not in run.stderr


def test_an_entry_without_chinese_phrasings_is_refused(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    edit(path, r"^(  - id: over_35\n(?:    .*\n)*?)      zh:\n(?:        - .*\n)+", r"\1")
    run = check(flows_copy)
    assert run.returncode == 1
    assert "flows/faq.yaml:" in run.stderr and "'zh' phrasings" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_answer_without_its_chinese_translation_is_refused(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    edit(path, r'^(  - id: over_35\n    question: )"[^"]*"', r'\1"Is 36 too old for a K visa?"')
    run = check(flows_copy)
    assert run.returncode == 1
    assert "no Chinese translation for 'Is 36 too old for a K visa?'" in run.stderr


async def test_an_edit_that_passes_the_check_is_what_the_bot_answers_from(
    flows_copy: Path, tmp_path: Path
) -> None:
    path = flows_copy / "faq.yaml"
    phrasing = "is the quokka rule about working days true"
    edit(
        path,
        r"^(  - id: work_permit_deadline\n(?:    .*\n)*?      en:\n)",
        rf'\1        - "{phrasing}"\n',
    )
    assert check(flows_copy).returncode == 0
    flows, catalogs = load_content(Settings.from_env({"KVISA_FLOWS_DIR": str(flows_copy)}))
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        engine = Engine(flows, catalogs, storage)
        user = UserKey("console", "bob")
        replies = await engine.handle(Inbound.from_text(user, "quokka rule?", NOON_SHANGHAI))
        deadline = next(e for e in flows.faq if e.id == "work_permit_deadline")
        assert deadline.answer in "\n".join(r.text for r in replies)


def test_a_related_target_that_is_no_id_is_refused_at_its_line(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    edit(path, r"^(    related: )\{checklist: (\w+)\}", r"\1{checklist: [\2]}")
    run = check(flows_copy)
    assert run.returncode == 1
    assert "flows/faq.yaml:" in run.stderr and "unknown checklist" in run.stderr
    assert "Traceback" not in run.stderr
