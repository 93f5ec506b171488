"""Reporting steps and reading the timeline in the chat, with its picture and calendar file."""

from __future__ import annotations

import datetime as dt
import io
import re

from icalendar import Calendar
from PIL import Image

from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from tests.support import ACADEMIC, Chat


async def finished(
    engine: Engine, lang_hint: str | None = None, user: str = "alice", **answers: str
) -> Chat:
    chat = Chat(engine, user=UserKey("console", user), lang_hint=lang_hint)
    await chat.interview(**{**ACADEMIC, **answers})
    return chat


async def report(chat: Chat, event: str, date: str) -> None:
    await chat.send("/timeline")
    await chat.choose(event)
    if date == "today":
        await chat.choose("_today")
    else:
        await chat.send(date)


async def test_timeline_shows_text_and_a_picture_and_offers_steps(engine: Engine) -> None:
    chat = await finished(engine)
    await chat.send("/timeline")
    pictures = [a for o in chat.replies for a in o.attachments if a.content_type == "image/png"]
    assert len(pictures) == 1
    assert Image.open(io.BytesIO(pictures[0].data)).size[0] >= 800
    assert "entered" in chat.option_ids and (await chat.awaiting()) == {"kind": "report"}


async def test_reporting_entry_adds_the_work_permit_deadline(engine: Engine) -> None:
    chat = await finished(engine)
    await report(chat, "visa_applied", "2026-09-01")
    await report(chat, "entered", "2026-09-16")
    state = await chat.state()
    assert state and state["events"] == {"visa_applied": "2026-09-01", "entered": "2026-09-16"}
    # National Day: 1 Oct is closed, so the text names the holiday and the day before.
    assert "Sep 30, 2026" in chat.replies[0].text


async def test_entry_before_the_visa_application_is_refused(engine: Engine) -> None:
    chat = await finished(engine)
    await report(chat, "visa_applied", "2026-09-01")
    await report(chat, "entered", "2026-08-30")
    state = await chat.state()
    assert state and "entered" not in state["events"]
    assert (await chat.awaiting()) == {"kind": "event_date", "id": "entered"}


async def test_future_and_impossible_dates_are_refused(engine: Engine) -> None:
    chat = await finished(engine)
    for text in ("2027-01-01", "2026-02-30", "soon", ""):
        await report(chat, "entered", text)
        assert "entered" not in (await chat.state())["events"]  # type: ignore[index]


async def test_reporting_again_with_another_date_asks_before_replacing(engine: Engine) -> None:
    chat = await finished(engine)
    await report(chat, "entered", "2026-09-10")
    await report(chat, "entered", "2026-09-12")
    assert (await chat.awaiting())["kind"] == "event_confirm"  # type: ignore[index]
    await chat.choose("no")
    assert (await chat.state())["events"]["entered"] == "2026-09-10"  # type: ignore[index]
    await report(chat, "entered", "2026-09-12")
    await chat.choose("yes")
    assert (await chat.state())["events"]["entered"] == "2026-09-12"  # type: ignore[index]


async def test_lingang_submission_asks_about_deficiency_tolerance(engine: Engine) -> None:
    chat = await finished(engine)  # ACADEMIC heads for Lingang
    await report(chat, "entered", "2026-09-16")
    await report(chat, "work_permit_submitted", "2026-09-29")
    assert (await chat.awaiting()) == {"kind": "deficiency"}
    await chat.choose("yes")
    state = await chat.state()
    assert state and state["deficiency_tolerance"] is True
    assert "Oct 9, 2026" in chat.replies[0].text  # 3 working days after 29 Sep, across National Day


async def test_other_parks_are_not_asked_about_deficiency_tolerance(engine: Engine) -> None:
    chat = await finished(engine, park="zhangjiang")
    await report(chat, "entered", "2026-09-16")
    await report(chat, "work_permit_submitted", "2026-09-29")
    assert (await chat.awaiting()) == {"kind": "report"}


async def test_calendar_file_has_the_deadlines_in_both_languages(engine: Engine) -> None:
    for hint, summary in ((None, "Apply for the work permit"), ("zh", "申请工作许可")):
        chat = await finished(engine, lang_hint=hint, user=f"cal-{hint}")
        await report(chat, "entered", "2026-11-20")
        await chat.send("/calendar")
        files = [a for o in chat.replies for a in o.attachments if a.filename.endswith(".ics")]
        assert len(files) == 1
        summaries = [str(e["SUMMARY"]) for e in Calendar.from_ical(files[0].data).walk("VEVENT")]
        assert summary in summaries


async def test_timeline_after_reporting_entry_on_3_december_is_coherent(engine: Engine) -> None:
    # Seen on the console: after reporting entry on 3 December the timeline still listed "Visa
    # decision expected Dec 8-10" after "Entered China Dec 3", showed the exact 180-day count
    # as "≈Jun 1, 2027", and the passport's validity as a dated step after entry.
    december_3 = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)
    for hint, entered, stay in (
        (None, "Dec 3, 2026 · Entered China", "Jun 1, 2027 · Last day of this stay"),
        ("zh", "2026年12月3日 · 已入境中国", "2027年6月1日 · 本次停留最后一天"),
    ):
        chat = Chat(engine, user=UserKey("console", f"dec3-{hint}"), lang_hint=hint, at=december_3)
        await chat.interview(**{**ACADEMIC, "passport_expiry": "2027-09-01"})
        await chat.send("/timeline")
        before = chat.replies[0].text
        assert before.splitlines()[2].startswith(("ℹ️ Mar 1, 2027", "ℹ️ 2027年3月1日"))  # passport
        await report(chat, "entered", "today")
        text = chat.replies[0].text
        rows = [line for line in text.splitlines() if " · " in line]
        assert [row.split(" ", 1)[1] for row in rows[:1]] == [entered]
        assert any(stay in row and "≈" not in row for row in rows)
        assert len(rows) == 3  # entry, work permit by 18 Dec, end of stay: no visa window
        assert "≈" not in text and "passport" not in text.lower() and "护照" not in text


async def test_chinese_texts_write_dates_the_chinese_way(engine: Engine) -> None:
    december_3 = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)
    chat = Chat(engine, user=UserKey("console", "zh-dates"), lang_hint="zh", at=december_3)
    await chat.interview(**ACADEMIC)
    texts = [chat.text]
    await report(chat, "entered", "today")
    texts.append(chat.text)
    for command in ("/mydata", "/reminders", "/checklist"):
        await chat.send(command)
        texts.append(chat.text)
    await chat.send("/calendar")
    (ics,) = [a for o in chat.replies for a in o.attachments if a.filename.endswith(".ics")]
    texts += [str(e["DESCRIPTION"]) for e in Calendar.from_ical(ics.data).walk("VEVENT")]
    everything = "\n".join(texts)
    assert "2026年12月3日" in everything and "2026年12月18日" in everything
    months = r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b"
    assert not re.search(months, everything)
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", everything)  # no 12/3/2026


async def test_timeline_waits_for_the_interview(engine: Engine) -> None:
    chat = Chat(engine)
    await chat.send("/start")
    await chat.choose("agree")
    await chat.send("/timeline")
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}


async def test_reported_steps_are_in_mydata_and_gone_after_delete(engine: Engine) -> None:
    chat = await finished(engine)
    await report(chat, "entered", "2026-09-16")
    await chat.send("/mydata")
    assert "Entered China" in chat.replies[0].text
    await chat.send("/delete")
    await chat.choose("yes")
    assert await chat.state() is None
