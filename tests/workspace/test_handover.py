"""Conversations handed to a person: /human and "人工" on Telegram, the bot quiet meanwhile,
staff claim and reply from the page (the reply reaches the fake Telegram), /bot and the
page hand it back; WeChat's 48-hour rule; the admins told of one left unclaimed."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.clock import FixedClock
from kvisa.bot.content.calendar import WorkCalendar
from kvisa.bot.policy.office import OfficeHours
from kvisa.bot.workspace.pages_talk import UnclaimedWatch
from kvisa.identity import UserKey
from tests.channels.telegram.conftest import interview
from tests.support import ACADEMIC, NOON_SHANGHAI
from tests.workspace.conftest import ADMIN_CHAT, Start

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


async def test_human_queues_the_conversation_and_the_bot_stays_quiet(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(77)
    await interview(user, **ACADEMIC)
    replies = await user.send("/human my employer asks about the visa fee")
    assert len(replies) == 1 and "expect a reply today" in replies[0].text
    assert await user.send("hello?") == []  # kept for the person, not answered
    assert await user.send("/checklist") == []
    state = await user.state()
    assert state is not None and state["handover"]["status"] == "queued"
    texts = [m["text"] for m in state["handover"]["messages"]]
    assert texts == ["my employer asks about the visa fee", "hello?", "/checklist"]
    replies = await user.send("/bot")
    assert "back with the bot" in replies[0].text
    assert (await user.state() or {})["handover"] is None


async def test_typing_ren_gong_hands_over_and_says_when_the_office_opens(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(78, "zh")
    await interview(user, **ACADEMIC)
    replies = await user.send("人工")
    assert "工作人员" in replies[0].text
    state = await user.state()
    assert state is not None and state["handover"]["status"] == "queued"


def test_the_expected_reply_skips_nights_weekends_and_holidays() -> None:
    hours, calendar = OfficeHours.parse("09:00-18:00"), WorkCalendar()
    friday_evening = dt.datetime(2026, 9, 25, 19, 0, tzinfo=SHANGHAI)
    assert hours.next_opening(calendar, friday_evening) == dt.datetime(
        2026, 9, 28, 9, 0, tzinfo=SHANGHAI
    )
    # National Day: 1-7 October 2026 off (the calendar knows the official schedule).
    assert hours.next_opening(calendar, dt.datetime(2026, 9, 30, 20, tzinfo=SHANGHAI)).date() > (
        dt.date(2026, 10, 7)
    )
    assert hours.is_open(calendar, dt.datetime(2026, 11, 25, 10, tzinfo=SHANGHAI))
    assert (
        hours.working_minutes_between(
            calendar,
            dt.datetime(2026, 11, 27, 17, 0, tzinfo=SHANGHAI),  # Friday
            dt.datetime(2026, 11, 30, 9, 30, tzinfo=SHANGHAI),  # Monday
        )
        == 90
    )


async def test_staff_claim_reply_and_hand_back_from_the_page(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(79)
    await interview(user, **ACADEMIC)
    await user.send("/human")
    await user.send("Can my spouse come too?")
    ref = ag.workspace.applicants.ref(UserKey("telegram", "79"))
    agent = await ag.staffer("aaron")
    page = await agent.get("/agency/conversations")
    assert "Can my spouse come too?" in page and f"/agency/conversations/{ref}/claim" in page
    await agent.post(f"/agency/conversations/{ref}/claim")
    assert "with aaron" in agent.last
    await agent.post(f"/agency/conversations/{ref}/reply", {"text": "Yes, with a Q1 visa."})
    assert agent.status == 200
    delivered = [m.text for m in user.messages if "Q1" in m.text]
    assert delivered == ["Shanghai K Agency:\nYes, with a Q1 visa."]
    state = await user.state()
    assert state is not None and state["handover"]["held_by"] == "aaron"
    assert state["handover"]["messages"][-1]["from"] == "staff"
    await agent.post(f"/agency/conversations/{ref}/release")
    assert "back with the bot" in user.messages[-1].text
    assert (await user.state() or {})["handover"] is None
    actions = [e["action"] for e in await ag.audit(ref=ref)]
    assert {"claim", "reply", "hand-back"} <= set(actions)


async def test_a_wechat_applicant_outside_48_hours_cannot_be_written_to(agency: Start) -> None:
    ag = await agency()
    user = UserKey("wechat", "oAbC-outside")
    data = {
        "lang": "en",
        "consent_at": "2026-11-01T00:00:00+00:00",
        "answers": {},
        "last_seen": "2026-11-20T00:00:00+00:00",  # five days before the clock
        "handover": {"status": "queued", "since": "2026-11-20T00:00:00+00:00", "messages": []},
    }
    await ag.storage.put(user, data, expected_version=0)
    await ag.workspace.applicants.refresh(user, data)
    ref = ag.workspace.applicants.ref(user)
    agent = await ag.staffer("aaron")
    page = await agent.get("/agency/conversations")
    assert "within 48 hours" in page and f"/agency/conversations/{ref}/reply" not in page
    await agent.post(f"/agency/conversations/{ref}/reply", {"text": "Hello"})
    assert agent.status == 409 and "48 hours" in agent.last


async def test_admins_are_told_of_a_conversation_left_unclaimed(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(80)
    await interview(user, **ACADEMIC)
    await user.send("/human")
    ws = ag.workspace
    watch = UnclaimedWatch(ws, OfficeHours(), ws.applicants)
    assert await watch.look() == 0  # just queued
    ws.clock = FixedClock(NOON_SHANGHAI + dt.timedelta(minutes=45))
    assert await watch.look() == 1
    assert await watch.look() == 0  # told once
    told = [m.text for m in ag.tg.fake.messages[ADMIN_CHAT]]
    assert any("45 minutes" in text for text in told)
