"""Reminders in the conversation: the time zone question, the buttons every reminder carries,
and /reminders. Against the real flows, catalogs and SQLite."""

from __future__ import annotations

import datetime as dt

import pytest

from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound
from kvisa.bot.policy.zones import zone_choices
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import MORNING, session
from tests.support import ACADEMIC, Chat

NOW = MORNING[7]  # 09:00 on Fri 27 Nov in Shanghai


async def test_a_country_with_several_clocks_asks_for_the_time_zone(chat: Chat) -> None:
    answers = {**ACADEMIC, "residence_country": "United States", "time_zone": "America/Los_Angeles"}
    await chat.interview(**answers)
    state = await chat.state()
    assert state and state["answers"]["time_zone"] == "America/Los_Angeles"
    await chat.send("/mydata")
    assert "Los Angeles" in chat.text


async def test_a_country_with_one_clock_does_not_ask(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)  # Germany: one clock, no question
    state = await chat.state()
    assert state and "time_zone" not in state["answers"]


async def test_changing_the_country_asks_the_time_zone_again(chat: Chat) -> None:
    eastern = next(c.zone for c in zone_choices("US") if "America/New_York" in c.members)
    await chat.interview(**{**ACADEMIC, "residence_country": "US", "time_zone": eastern})
    await chat.send("/edit")
    await chat.choose("residence_country")
    await chat.send("Canada")
    assert (await chat.awaiting()) == {"kind": "question", "id": "time_zone"}
    assert chat.option_ids[:-1] == [c.zone for c in zone_choices("CA")]
    pacific = next(c.zone for c in zone_choices("CA") if "America/Vancouver" in c.members)
    await chat.choose(pacific)
    state = await chat.state()
    assert state and state["answers"]["time_zone"] == pacific
    await chat.send("/edit")
    await chat.choose("residence_country")
    await chat.send("Germany")  # one clock: the answer goes
    state = await chat.state()
    assert state and "time_zone" not in state["answers"]


async def press(engine: Engine, chat: Chat, option: str) -> None:
    """A reminder's button, pressed whatever the chat is waiting for (no prompt number)."""
    chat.replies = await engine.handle(Inbound(chat.user, chat.at, option=option))


async def test_done_records_the_event_today_whatever_the_chat_is_asking(
    storage: SqliteStorage, engine: Engine, chat: Chat
) -> None:
    await storage.put(chat.user, session(), expected_version=0)
    chat.at = NOW
    await chat.send("/faq")  # in the middle of something else
    await press(engine, chat, "rem:done:work_permit_apply")
    state = await chat.state()
    assert state and state["events"]["work_permit_submitted"] == "2026-11-27"
    assert state["awaiting"] == {"kind": "faq"}  # and back to it
    await press(engine, chat, "rem:done:work_permit_apply")
    state_again = await chat.state()
    assert state_again and state_again["events"] == state["events"]  # pressed twice: recorded once


async def test_the_nudge_button_records_the_decision(
    storage: SqliteStorage, engine: Engine, chat: Chat
) -> None:
    events = {"entered": dt.date(2026, 11, 2), "work_permit_submitted": dt.date(2026, 11, 5)}
    await storage.put(chat.user, session(events=events), expected_version=0)
    chat.at = NOW
    await press(engine, chat, "rem:done:work_permit_decision")
    state = await chat.state()
    assert state and state["events"]["work_permit_granted"] == "2026-11-27"


async def test_done_on_a_deadline_without_an_event_stops_its_reminders(
    storage: SqliteStorage, engine: Engine, chat: Chat
) -> None:
    await storage.put(chat.user, session(), expected_version=0)
    await press(engine, chat, "rem:done:stay_limit")
    state = await chat.state()
    assert state and state["reminders_dismissed"] == {"stay_limit": "2027-05-19"}


async def test_remind_me_tomorrow_snoozes_but_not_past_the_last_day(
    storage: SqliteStorage, engine: Engine, chat: Chat
) -> None:
    await storage.put(chat.user, session(), expected_version=0)
    chat.at = NOW
    await press(engine, chat, "rem:later:work_permit_apply")
    state = await chat.state()
    assert state and state["snoozed"] == {"work_permit_apply": "2026-11-28"}
    chat.at = MORNING[0]  # the last day: tomorrow is too late
    await press(engine, chat, "rem:later:work_permit_apply")
    state = await chat.state()
    assert state and state["snoozed"] == {"work_permit_apply": "2026-11-28"}


async def test_reminders_lists_what_is_scheduled_and_pauses_and_resumes(
    storage: SqliteStorage, engine: Engine, chat: Chat
) -> None:
    await storage.put(chat.user, session(), expected_version=0)
    chat.at = NOW - dt.timedelta(hours=1)
    await chat.send("/reminders")
    assert chat.text.count("•") == 8  # 4 for the work permit, 4 for the end of the stay
    assert "09:00" in chat.text
    await chat.choose("rem:pause")
    state = await chat.state()
    assert state and state["reminders_paused"] is True
    await chat.send("/reminders")
    await chat.choose("rem:resume")
    state = await chat.state()
    assert state and state["reminders_paused"] is False
    await chat.send("/reminders")
    await chat.choose("_done")
    assert (await chat.awaiting()) == {"kind": "menu"}


def test_kvisa_assess_takes_the_time_zone_as_optional() -> None:
    from kvisa.bot.policy.profile import answers_from_profile
    from kvisa.errors import InputError
    from tests.support import content

    flows, _ = content()
    profile = {
        "degree": "master",
        "degree_field_stem": True,
        "degree_from_recognized": True,
        "stem_work_at_recognized": False,
        "birth_date": "1998-04-27",
        "nationality": "US",
        "residence_country": "US",
        "passport_expiry": "2031-01-01",
        "plan": "research",
        "park": "other",
    }
    assert "time_zone" not in answers_from_profile(flows, profile, dt.date(2026, 11, 25))
    zoned = answers_from_profile(
        flows, {**profile, "time_zone": "America/Chicago"}, dt.date(2026, 11, 25)
    )
    assert zoned["time_zone"] == "America/Chicago"
    with pytest.raises(InputError) as refused:
        answers_from_profile(flows, {**profile, "time_zone": "Mars/Olympus"}, dt.date(2026, 11, 25))
    assert refused.value.field == "time_zone"
