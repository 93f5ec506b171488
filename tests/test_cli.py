"""The `kvisa` command as a user runs it: real processes, real files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROFILE = {
    "degree": "doctorate",
    "degree_field_stem": True,
    "degree_from_recognized": True,
    "stem_work_at_recognized": True,
    "birth_date": "1988-03-01",
    "residence_country": "SG",
    "passport_expiry": "2027-02-01",
    "planned_application": "2026-12-01",
    "plan": "employed",
    "park": "zhangjiang",
    "key_enterprise": True,
}


def kvisa(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KVISA_DATA_DIR": str(cwd / "var"), **(env or {})},
    )


def test_assess_profile_answers_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE))
    run = kvisa("assess", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    assert out["eligible"] is True
    assert out["channels"] == ["academic", "work"]
    assert out["age_at_application"] == 38 and out["needs_age_proof"] is True
    ids = [item["id"] for item in out["checklist"]]
    assert {
        "commitment_letter",
        "achievements_proof",
        "research_proof",
        "employment_contract",
    } <= set(ids)
    assert all({"id", "step", "title"} <= item.keys() for item in out["checklist"])
    assert {w["id"] for w in out["warnings"]} == {"passport_validity", "age_proof"}


def test_assess_in_chinese_translates_titles(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE))
    run = kvisa("assess", str(path), "--today", "2026-11-25", "--lang", "zh", cwd=tmp_path)
    out = json.loads(run.stdout)
    passport = next(i for i in out["checklist"] if i["id"] == "passport")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in passport["title"])


def test_assess_csv_reports_bad_rows_and_still_assesses_the_others(tmp_path: Path) -> None:
    path = tmp_path / "candidates.csv"
    rows = [
        {**PROFILE, "id": "c1"},
        {**PROFILE, "id": "c2", "birth_date": "1990-02-31"},
        {**PROFILE, "id": "c3", "degree": "none", "stem_work_at_recognized": "no", "park": "other"},
    ]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = kvisa("assess", "--csv", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["row"] for line in lines] == [1, 2, 3]
    assert lines[0]["eligible"] is True and lines[0]["id"] == "c1"
    assert lines[1]["error"]["field"] == "birth_date" and "date" in lines[1]["error"]["expected"]
    assert lines[2]["eligible"] is False and lines[2]["channels"] == []
    assert {r["rule"] for r in lines[2]["reasons"]} == {"academic", "work"}
    assert "row 2: birth_date" in run.stderr


def test_assess_missing_required_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({k: v for k, v in PROFILE.items() if k != "plan"}))
    run = kvisa("assess", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 1
    assert json.loads(run.stdout)["error"]["field"] == "plan"


def test_chat_with_piped_input_prints_every_reply_and_resumes_later(tmp_path: Path) -> None:
    first = kvisa(
        "chat",
        "--user",
        "bob",
        "--clock",
        "2026-11-25T04:00:00+00:00",
        cwd=tmp_path,
        stdin="1\n3\nyes\n",
    )
    assert first.returncode == 0, first.stderr
    assert "1. I agree" in first.stdout and "(3/12)" in first.stdout
    second = kvisa("chat", "--user", "bob", cwd=tmp_path, stdin="/mydata\n")
    assert second.returncode == 0, second.stderr
    assert "(3/12)" in second.stdout  # resumed at the third question
    assert "Master's" in second.stdout  # and /mydata shows the answer given in the first run


def test_chat_in_chinese(tmp_path: Path) -> None:
    run = kvisa("chat", "--user", "li", "--lang", "zh", cwd=tmp_path, stdin="1\n")
    assert run.returncode == 0, run.stderr
    assert "(1/12)" in run.stdout
    chinese = sum("\u4e00" <= ch <= "\u9fff" for ch in run.stdout)
    assert chinese > 50


@pytest.mark.parametrize("user", ["../outside", "a/b", "..", ".hidden", "", "x" * 65, "名字"])
def test_chat_refuses_a_user_id_that_is_not_a_plain_name(tmp_path: Path, user: str) -> None:
    run = kvisa("chat", "--user", user, cwd=tmp_path, stdin="1\n")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--user" in run.stderr
    assert run.stdout == ""
    assert not (tmp_path / "outside").exists() and not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    "clock", ["tomorrow", "2025-09-30T23:00:00+08:00", "2100-01-01", "0001-01-01"]
)
def test_chat_refuses_a_clock_it_cannot_run_on(tmp_path: Path, clock: str) -> None:
    run = kvisa("chat", "--clock", clock, cwd=tmp_path, stdin="1\n")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--clock" in run.stderr
    assert run.stdout == ""


def test_chat_refuses_a_clock_before_the_conversations_last_message(tmp_path: Path) -> None:
    first = kvisa("chat", "--user", "ann", "--clock", "2026-12-10T09:00", cwd=tmp_path, stdin="1\n")
    assert first.returncode == 0, first.stderr

    back = kvisa("chat", "--user", "ann", "--clock", "2026-12-01T09:00", cwd=tmp_path, stdin="")

    assert back.returncode == 2
    assert back.stderr.count("\n") == 1 and "Dec 10, 2026 09:00" in back.stderr
    later = kvisa("chat", "--user", "ann", "--clock", "2026-12-11T09:00", cwd=tmp_path, stdin="")
    assert later.returncode == 0, later.stderr


def test_chat_clock_without_an_offset_is_on_the_applicants_clock(tmp_path: Path) -> None:
    run = kvisa("chat", "--clock", "2026-12-01T09:00", cwd=tmp_path, stdin="/clock +1h\n")
    assert run.returncode == 0, run.stderr
    assert "Dec 1, 2026 10:00 (UTC+8 · Shanghai)" in run.stdout


def test_chat_skips_an_undecodable_line_and_goes_on(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "chat", "--user", "bytes"],
        cwd=tmp_path,
        input=b"1\n\xff\xfe\x00\n3\nyes\n",
        capture_output=True,
        timeout=120,
        env={**os.environ, "KVISA_DATA_DIR": str(tmp_path / "var"), "PYTHONIOENCODING": "utf-8"},
    )
    assert run.returncode == 0, run.stderr
    stderr = run.stderr.decode()
    assert stderr.count("\n") == 1 and "Line 2" in stderr
    assert "(3/12)" in run.stdout.decode()  # consent, Master's, STEM: the chat went on


def test_assess_returns_deadlines_and_estimates_for_reported_events(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(
        json.dumps(
            {
                **PROFILE,
                "park": "lingang",
                "planned_application": "2026-11-25",
                "visa_applied": "2026-09-01",
                "entered": "2026-09-16",
                "work_permit_submitted": "2026-09-29",
                "deficiency_tolerance": True,
            }
        )
    )
    run = kvisa("assess", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    deadlines = {d["id"]: d for d in out["deadlines"]}
    assert deadlines["work_permit_apply"]["date"] == "2026-10-01"
    assert deadlines["work_permit_apply"]["act_by"] == "2026-09-30"
    assert deadlines["lingang_supplement"]["date"] == "2026-10-09"
    # 180 calendar days: exact, though 2027's schedule is not published (15 March, a Monday).
    assert deadlines["stay_limit"]["date"] == "2027-03-15"
    assert deadlines["stay_limit"]["estimated"] is False
    # The passport condition is checked at the application, reported here: no longer listed.
    assert set(deadlines) == {"work_permit_apply", "lingang_supplement", "stay_limit"}
    estimates = {e["id"]: e for e in out["estimates"]}
    assert estimates["work_permit_decision"] == {
        "id": "work_permit_decision",
        "title": "Work permit decision expected",
        "earliest": "2026-10-14",
        "latest": "2026-10-19",
        "estimated": False,
    }
    assert "residence_permit_decision" not in estimates  # its event is not known


def test_assess_refuses_an_entry_before_the_visa_application(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({**PROFILE, "visa_applied": "2026-10-01", "entered": "2026-09-01"}))
    run = kvisa("assess", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 1
    assert json.loads(run.stdout)["error"]["field"] in {"visa_applied", "entered"}


def test_console_saves_the_timeline_picture_and_calendar_and_prints_their_paths(
    tmp_path: Path,
) -> None:
    script = (
        "\n".join(
            [
                "1",
                "3",
                "yes",
                "yes",
                "no",
                "1995-03-05",
                "DE",
                "DE",
                "2030-03-01",
                "1",
                "2",
                "2",
                "/timeline",
                "2",
                "2026-11-20",
                "/calendar",
                "/lang zh",
                "/timeline",
            ]
        )
        + "\n"
    )
    run = kvisa(
        "chat", "--user", "tl", "--clock", "2026-11-25T04:00:00+00:00", cwd=tmp_path, stdin=script
    )
    assert run.returncode == 0, run.stderr
    saved = sorted(p.name for p in (tmp_path / "var" / "attachments" / "tl").iterdir())
    assert saved == ["kvisa-deadlines.ics", "timeline.png"]
    assert str(tmp_path / "var" / "attachments" / "tl" / "timeline.png") in run.stdout


def test_broadcast_from_files_dry_run_queue_status_cancel(tmp_path: Path) -> None:
    import asyncio

    from kvisa.identity import UserKey
    from kvisa.storage.sqlite import SqliteStorage
    from tests.broadcasts.conftest import applicant

    async def store_users() -> None:
        (tmp_path / "var").mkdir()
        async with SqliteStorage(tmp_path / "var" / "kvisa.db") as storage:
            await storage.put(
                UserKey("telegram", "1"), applicant(park="lingang"), expected_version=0
            )
            await storage.put(
                UserKey("wechat", "oA"), applicant(park="zhangjiang", lang="zh"), expected_version=0
            )

    asyncio.run(store_users())
    (tmp_path / "en.txt").write_text("Lingang now accepts online applications.\n", encoding="utf-8")
    (tmp_path / "zh.txt").write_text("临港现已接受网上申请。\n", encoding="utf-8")
    dry = kvisa(
        "broadcast",
        "--en",
        "en.txt",
        "--zh",
        "zh.txt",
        "--segment",
        "park=lingang",
        "--dry-run",
        cwd=tmp_path,
    )
    assert dry.returncode == 0, dry.stderr
    assert (
        "Recipients: 1 (Telegram 1, WeChat 0)." in dry.stdout
        and "临港现已接受网上申请" in dry.stdout
    )
    one_language = kvisa("broadcast", "--en", "en.txt", "--zh", "en.txt", cwd=tmp_path)
    assert (
        one_language.returncode == 1
        and "--zh" in one_language.stderr
        and "Chinese" in one_language.stderr
    )
    missing = kvisa("broadcast", "--en", "en.txt", cwd=tmp_path)
    assert missing.returncode == 2 and "both --en FILE and --zh FILE" in missing.stderr
    queued = kvisa("broadcast", "--en", "en.txt", "--zh", "zh.txt", "--no-follow", cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    broadcast_id = queued.stdout.split("queued broadcast ")[1].split()[0]
    status = kvisa("broadcast", "--status", broadcast_id, "--no-follow", cwd=tmp_path)
    shown = json.loads(status.stdout)
    assert (
        shown["status"] == "queued"
        and shown["total"] == 2
        and shown["per_channel"] == {"telegram": 1, "wechat": 1}
    )
    assert "cancelling" in kvisa("broadcast", "--cancel", broadcast_id, cwd=tmp_path).stdout
    assert broadcast_id in kvisa("broadcasts", cwd=tmp_path).stdout


def test_assess_keeps_every_row_of_a_file_with_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    # The trial lost 14,910 of 20,000 rows and printed a traceback.
    path = tmp_path / "candidates.csv"
    lines = ["id," + ",".join(PROFILE)]
    lines += [f"c{n}," + ",".join(str(v).lower() for v in PROFILE.values()) for n in range(2000)]
    data = "\n".join(lines).encode("utf-8").replace(b"c1500,", b"Jos\xe9,")
    path.write_bytes(data)
    run = kvisa("assess", "--csv", str(path), "--today", "2026-11-25", cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["row"] for line in out] == list(range(1, 2001))
    assert [line["row"] for line in out if "error" in line] == [1501]
    assert "row 1501: id: expected text in UTF-8 (byte 0xE9 is not UTF-8)" in run.stderr


def test_assess_xlsx_in_and_xlsx_out(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["编号", "出生日期", *[k for k in PROFILE if k != "birth_date"]])
    sheet.append(["c1", "1988-03-01", *[v for k, v in PROFILE.items() if k != "birth_date"]])
    book.save(tmp_path / "candidates.xlsx")
    run = kvisa(
        "assess",
        "--xlsx",
        "candidates.xlsx",
        "--output",
        "results.xlsx",
        "--today",
        "2026-11-25",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    results = openpyxl.load_workbook(tmp_path / "results.xlsx").worksheets[0]
    assert [cell.value for cell in results[2]][:3] == [1, "c1", True]


def test_assess_bad_today_is_a_message_and_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE))
    run = kvisa("assess", str(path), "--today", "2026-02-30", cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == (
        "kvisa assess: --today: expected a date as YYYY-MM-DD, got '2026-02-30'"
    )
    zh = kvisa("assess", str(path), "--today", "tomorrow", "--lang", "zh", cwd=tmp_path)
    assert zh.returncode == 2 and "应为 YYYY-MM-DD" in zh.stderr


def test_assess_empty_input_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    run = kvisa("assess", "--csv", "empty.csv", cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip() == "kvisa assess: empty.csv: the file is empty: no header and no rows"
