"""The cases the workspace lists: the index the engine keeps, search and filters, the case
page, ticking and notes, the deadlines and their CSV, /delete reaching notes, index and log;
and the `kvisa staff` command."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from pathlib import Path

from kvisa.bot.cases.applicants import CASES, search_groups, terms
from kvisa.bot.workspace.accounts import StaffStore
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.telegram.conftest import interview
from tests.support import ACADEMIC
from tests.workspace.conftest import Start


async def test_the_engine_keeps_the_index_as_applicants_chat(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(91)
    await interview(user, **ACADEMIC)
    ref = ag.workspace.applicants.ref(UserKey("telegram", "91"))
    doc = await ag.workspace.applicants.catalog.get(CASES, ref)
    assert doc is not None and doc["verdict"] == "eligible" and doc["park"] == "lingang"
    await user.send("/timeline")
    await user.press("entered")
    await user.send("2026-11-20")
    doc = await ag.workspace.applicants.catalog.get(CASES, ref)
    assert doc is not None and doc["step"] == "entered" and doc["next"]["id"]
    lingang = await ag.staffer("vera")
    page = await lingang.get("/agency/cases?park=lingang&reached=visa_applied")
    assert "telegram:91" in page  # entering China means the visa was applied for


async def test_search_finds_a_case_by_channel_id_or_by_a_word_of_a_note(agency: Start) -> None:
    ag = await agency()
    ref = await ag.store(5001)
    await ag.store(5002, park="zhangjiang")
    agent = await ag.staffer("aaron")
    await agent.post("/agency/cases", {"search": "telegram:5001"})
    assert "telegram:5001" in agent.last and "telegram:5002" not in agent.last
    await agent.post(f"/agency/cases/{ref}/notes", {"note": "候选人 张伟, from Siemens"})
    for query in ("张伟", "siemens", "5001"):
        await agent.post("/agency/cases", {"search": query})
        assert "telegram:5001" in agent.last and "telegram:5002" not in agent.last, query
    await agent.post("/agency/cases", {"search": "张三"})
    assert "telegram:5001" not in agent.last


def test_search_terms_split_chinese_names_into_characters() -> None:
    assert terms("张伟 Siemens-AG") == {"张", "伟", "siemens", "ag"}
    assert search_groups("Telegram:42") == [["t:telegram:42"]]
    assert search_groups("张伟") == [["t:伟"], ["t:张"]]


async def test_cases_are_listed_by_next_deadline_a_page_at_a_time(agency: Start) -> None:
    ag = await agency()
    for n in range(55):
        await ag.store(6000 + n, events={"entered": f"2026-11-{1 + n % 20:02d}"})
    viewer = await ag.staffer("vera")
    first = await viewer.get("/agency/cases")
    assert "(55)" in first and "Page 1 of 2" in first
    await viewer.post("/agency/cases", {"page": "2"})
    assert viewer.last.count("/agency/cases/") == 5


async def test_an_agent_ticks_a_checklist_item_for_the_applicant(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(92)
    await interview(user, **ACADEMIC)
    ref = ag.workspace.applicants.ref(UserKey("telegram", "92"))
    agent = await ag.staffer("aaron")
    page = await agent.get(f"/agency/cases/{ref}")
    assert 'aria-pressed="false"' in page
    item = page.split('data-item="')[1].split('"')[0]
    await agent.post(f"/agency/cases/{ref}/tick", {"item": item})
    assert 'aria-pressed="true"' in agent.last
    assert item in ((await user.state()) or {})["ticked"]
    replies = await user.send("/checklist")
    assert "☑" in replies[-1].text or any("☑" in label for label, _ in replies[-1].buttons)


async def test_the_deadlines_page_lists_overdue_and_soon_and_exports_csv(agency: Start) -> None:
    ag = await agency()
    await ag.store(7001, events={"entered": "2026-11-20"})  # work permit due in December
    await ag.store(7002, events={"entered": "2026-10-01"})  # overdue by now
    await ag.store(7003, events={"entered": "2026-11-24", "work_permit_submitted": "2026-11-24"})
    viewer = await ag.staffer("vera")
    page = await viewer.get("/agency/deadlines")
    assert "telegram:7001" in page and "telegram:7002" in page and "overdue by" in page
    async with viewer.http.get(ag.base + "/agency/deadlines.csv") as response:
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "Applicant" and {r[0] for r in rows[1:]} >= {
        "telegram:7001",
        "telegram:7002",
    }
    overdue = next(r for r in rows if r[0] == "telegram:7002")
    assert int(overdue[3]) < 0


async def test_delete_erases_the_notes_the_index_entry_and_the_ref_in_the_log(
    agency: Start,
) -> None:
    ag = await agency()
    user = ag.tg.user(93)
    await interview(user, **ACADEMIC)
    key = UserKey("telegram", "93")
    ref = ag.workspace.applicants.ref(key)
    agent = await ag.staffer("aaron")
    await agent.post(f"/agency/cases/{ref}/notes", {"note": "Wang Fang, passport renewal"})
    assert await ag.workspace.notes.of(key)
    await user.send("/delete")
    await user.press("yes")
    assert await ag.workspace.notes.of(key) == []
    assert await ag.workspace.applicants.catalog.get(CASES, ref) is None
    assert (await ag.workspace.applicants.catalog.query(CASES, [["t:wang"]])).total == 0
    assert await ag.audit(ref=ref) == []
    logged = await ag.audit(actor="aaron")
    assert any(e["action"] == "note" and e["ref"].startswith("erased-") for e in logged)
    await agent.get(f"/agency/cases/{ref}")
    assert agent.status == 404


def run_kvisa(args: list[str], data_dir: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"KVISA_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


async def test_kvisa_staff_adds_lists_disables_and_resets_accounts(tmp_path: Path) -> None:
    data = tmp_path / "var"
    added = await asyncio.to_thread(
        run_kvisa, ["staff", "add", "mei", "--role", "agent"], data, "long enough pass\n" * 2
    )
    assert added.returncode == 0, added.stderr
    short = await asyncio.to_thread(
        run_kvisa, ["staff", "add", "li", "--role", "viewer"], data, "short\nshort\n"
    )
    assert short.returncode == 1 and "12 characters" in short.stderr
    differ = await asyncio.to_thread(
        run_kvisa,
        ["staff", "add", "li", "--role", "viewer"],
        data,
        "long enough pass\nother one!!!!\n",
    )
    assert differ.returncode == 1 and "differ" in differ.stderr
    listed = await asyncio.to_thread(run_kvisa, ["staff", "list"], data, "")
    assert "mei\tagent\tactive" in listed.stdout and "li" not in listed.stdout
    assert (
        await asyncio.to_thread(run_kvisa, ["staff", "disable", "mei"], data, "")
    ).returncode == 0
    async with SqliteStorage(data / "kvisa.db") as storage:
        store = StaffStore(storage)
        assert await store.verify("mei", "long enough pass") is None  # disabled
        await store.set_disabled("mei", False)
        before = await store.get("mei")
    reset = await asyncio.to_thread(
        run_kvisa, ["staff", "reset", "mei"], data, "a brand new password\n" * 2
    )
    assert reset.returncode == 0, reset.stderr
    async with SqliteStorage(data / "kvisa.db") as storage:
        store = StaffStore(storage)
        after = await store.verify("mei", "a brand new password")
        assert after is not None and before is not None
        assert after.generation != before.generation  # its sessions end
        assert after.password_hash.startswith("$argon2id$")
