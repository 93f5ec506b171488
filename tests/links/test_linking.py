"""/link, /unlink and /channel through the engine, on both backends: codes, the profile
choice, consent per person, brute force, and two channels writing at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.applicants import identities, route
from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.sqlite import SqliteStorage
from tests.links.conftest import MovableClock
from tests.support import ACADEMIC, NOON_SHANGHAI, Chat, engine_on

TG, WX = UserKey("telegram", "1001"), UserKey("wechat", "oAlice")
HALF = {k: ACADEMIC[k] for k in ("degree", "degree_field_stem", "degree_from_recognized")}


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


async def record(engine: Engine, key: UserKey) -> dict[str, Any] | None:
    stored = await engine.storage.get(key)
    return stored.data if stored else None


async def interview_until(chat: Chat, stop: str, answers: dict[str, str]) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    while (awaiting := await chat.awaiting()) and awaiting.get("id") != stop:
        value = answers[awaiting["id"]]
        await (chat.choose(value) if value in chat.option_ids else chat.send(value))


async def test_link_as_first_message_joins_the_profile_and_both_sides_hear_of_it(
    storage: Storage,
) -> None:
    engine = engine_on(storage)
    told: list[tuple[UserKey, str]] = []

    async def notify(user: UserKey, messages: Any) -> None:
        told.extend((user, m.text) for m in messages)

    engine.links.notify = notify
    tg = Chat(engine, user=TG)
    await interview_until(tg, "birth_date", ACADEMIC)
    code = code_in((await tg.send("/link")).pop(0).text)

    wx = Chat(engine, user=WX)
    await wx.send(f"/link {code}")

    assert "Linked" in wx.text and "Telegram" in wx.text
    assert "(5/12)" in wx.text  # the interview goes on where Telegram left it
    forward = await record(engine, WX)
    assert forward is not None and forward["linked_to"] == str(TG)
    applicant = await record(engine, TG)
    assert applicant is not None
    assert identities(TG, applicant) == [TG, WX]
    assert [u for u, _ in told] == [TG] and "WeChat" in told[0][1]

    await wx.send(ACADEMIC["birth_date"])  # an answer on WeChat lands in the one profile
    applicant = await record(engine, TG)
    assert applicant is not None and applicant["answers"]["birth_date"] == "1998-04-27"
    await tg.send("/mydata")
    assert "WeChat" in tg.text


async def test_a_code_works_once_and_for_ten_minutes(storage: Storage) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    await interview_until(tg, "birth_date", ACADEMIC)
    code = code_in((await tg.send("/link")).pop(0).text)
    late = Chat(engine, user=WX, at=NOON_SHANGHAI + dt.timedelta(minutes=11))
    other = Chat(engine, user=UserKey("wechat", "oBob"))
    await other.send(f"/link {code}")
    assert "Linked" in other.text
    await late.send(f"/link {code}")
    assert "does not work" in late.text
    assert await record(engine, WX) is None  # nothing kept of someone who never agreed


async def test_profile_choice_keeps_the_other_for_unlink_to_give_back(storage: Storage) -> None:
    engine = engine_on(storage)
    tg, wx = Chat(engine, user=TG), Chat(engine, user=WX)
    await interview_until(tg, "birth_date", ACADEMIC)
    await wx.interview(**{**ACADEMIC, "park": "zhangjiang", "key_enterprise": "no"})
    code = code_in((await tg.send("/link")).pop(0).text)

    await wx.send(f"/link {code}")
    assert wx.option_ids == ["mine", "theirs", "cancel"]
    labels = [o.label for o in wx.last_prompt.options]
    assert "eligible" in labels[0] and "interview started, 4 answers" in labels[1]
    await wx.choose("mine")

    applicant = await record(engine, TG)
    assert applicant is not None
    assert applicant["answers"]["park"] == "zhangjiang" and applicant["finished"]
    assert applicant["link_kept"]["data"]["answers"].get("park") is None

    await tg.send("/unlink")
    await tg.choose("yes")
    telegram, wechat = await record(engine, TG), await record(engine, WX)
    assert telegram is not None and wechat is not None
    assert not telegram["finished"] and "park" not in telegram["answers"]  # given back
    assert wechat["answers"]["park"] == "zhangjiang" and wechat["identities"] == [str(WX)]
    assert telegram["identities"] == [str(TG)]
    await wx.send("/mydata")
    assert "Zhangjiang" in wx.text


async def test_consent_is_asked_once_and_only_when_neither_side_has_it(storage: Storage) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    code = code_in((await tg.send("/link")).pop(0).text)  # before agreeing to anything
    wx = Chat(engine, user=WX)
    await wx.send(f"/link {code}")
    assert wx.option_ids == ["agree", "decline"]
    await wx.choose("agree")
    assert "Linked" in wx.text
    applicant = await record(engine, TG)
    assert applicant is not None and applicant["consent_at"]
    assert identities(TG, applicant) == [TG, WX]


async def test_unlink_gives_each_a_copy_and_channel_chooses_where_pushes_go(
    storage: Storage,
) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    await tg.interview(**ACADEMIC)
    code = code_in((await tg.send("/link")).pop(0).text)
    wx = Chat(engine, user=WX, at=NOON_SHANGHAI + dt.timedelta(minutes=1))
    await wx.send(f"/link {code}")
    applicant = await record(engine, TG)
    assert applicant is not None
    assert route(TG, applicant, NOON_SHANGHAI) == [WX, TG]  # the last written from first
    await tg.send("/channel telegram")
    applicant = await record(engine, TG)
    assert applicant is not None and route(TG, applicant, NOON_SHANGHAI) == [TG, WX]

    await wx.send("/unlink")
    await wx.choose("yes")
    telegram, wechat = await record(engine, TG), await record(engine, WX)
    assert telegram is not None and wechat is not None
    assert telegram["answers"] == wechat["answers"] and wechat["consent_at"]
    await wx.send("/timeline")  # WeChat's own profile now
    assert (await record(engine, TG)) == telegram


async def test_two_messages_at_once_from_both_channels_lose_no_answer(storage: Storage) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    await tg.interview(**ACADEMIC)
    code = code_in((await tg.send("/link")).pop(0).text)
    wx = Chat(engine, user=WX)
    await wx.send(f"/link {code}")
    # Two engines: two processes sharing the storage (their locks do not see each other).
    other = engine_on(storage)
    await asyncio.gather(
        Chat(engine, user=TG).send("/news off"),
        Chat(other, user=WX).send("/reminders"),
        Chat(other, user=TG).send("/lang zh"),
    )
    applicant = await record(engine, TG)
    assert applicant is not None
    assert applicant["news_off"] and applicant["lang"] == "zh"
    assert set(applicant["seen"]) == {str(TG), str(WX)}


async def test_ten_thousand_wrong_codes_link_nobody_and_the_owner_links_after_the_lock(
    tmp_path: Path,
) -> None:
    clock = MovableClock(NOON_SHANGHAI.timestamp())
    async with SqliteStorage(tmp_path / "kvisa.db", now=clock) as storage:
        engine = engine_on(storage)
        tg = Chat(engine, user=TG)
        await tg.interview(**ACADEMIC)
        code = code_in((await tg.send("/link")).pop(0).text)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        sprayed = [f"{(int(code) + 1 + n) % 1_000_000:06d}" for n in range(10_000)]
        sprayed = [c for c in sprayed if c != code] or [wrong]
        refused = {"locked": 0, "busy": 0, "wrong": 0}
        for n, guess in enumerate(sprayed[:10_000]):
            attacker = UserKey("wechat", f"oMallory{n // 5}")  # many accounts, 5 each
            context = await engine.links.redeem(attacker, attacker, guess, NOON_SHANGHAI)
            assert context.kind == "refused"
            refused[context.reason] += 1
        assert refused["busy"] > 9_000  # the deployment-wide limit stopped the spray
        again = UserKey("wechat", "oMallory0")
        for _ in range(3):
            context = await engine.links.redeem(again, again, wrong, NOON_SHANGHAI)
        assert context.reason in ("locked", "busy")
        wx = Chat(engine, user=WX)
        await wx.send(f"/link {code}")
        assert "Too many" in wx.text  # the legitimate user waits too
        clock.seconds += 3601
        fresh = code_in((await tg.send("/link")).pop(0).text)
        await wx.send(f"/link {fresh}")
        assert "Linked" in wx.text
        applicant = await record(engine, TG)
        assert applicant is not None and identities(TG, applicant) == [TG, WX]


async def test_five_wrong_codes_lock_one_account_for_an_hour(tmp_path: Path) -> None:
    clock = MovableClock(NOON_SHANGHAI.timestamp())
    async with SqliteStorage(tmp_path / "kvisa.db", now=clock) as storage:
        engine = engine_on(storage)
        tg = Chat(engine, user=TG)
        await tg.interview(**ACADEMIC)
        code = code_in((await tg.send("/link")).pop(0).text)
        wx = Chat(engine, user=WX)
        for _ in range(5):
            await wx.send(f"/link {(int(code) + 1) % 1_000_000:06d}")
        assert "locked" in wx.text
        await wx.send(f"/link {code}")
        assert "locked" in wx.text
        clock.seconds += 3601
        fresh = code_in((await tg.send("/link")).pop(0).text)
        await wx.send(f"/link {fresh}")
        assert "Linked" in wx.text


@pytest.mark.parametrize("text", ["/link", "/start link-123456"])
async def test_codes_are_stored_hashed(storage: Storage, text: str) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    code = code_in((await tg.send("/link")).pop(0).text)
    names = [v.name async for v in storage.values()] + [c.name async for c in storage.claims()]
    values = [v.value async for v in storage.values()]
    assert not any(code in n for n in names)
    assert not any(code.encode() in v for v in values)
    await Chat(engine, user=WX).send(text)


async def test_after_delete_on_one_channel_the_other_starts_afresh(storage: Storage) -> None:
    engine = engine_on(storage)
    tg = Chat(engine, user=TG)
    await tg.interview(**ACADEMIC)
    code = code_in((await tg.send("/link")).pop(0).text)
    wx = Chat(engine, user=WX)
    await wx.send(f"/link {code}")
    # Another process still remembers where WeChat's applicant was.
    other = engine_on(storage)
    await Chat(other, user=WX).send("/mydata")
    await tg.send("/delete")
    await tg.choose("yes")
    assert await record(engine, TG) is None and await record(engine, WX) is None

    greeting = await Chat(other, user=WX).send("hello")
    assert await record(engine, TG) is None  # nothing brought back to life
    assert "Hello!" in greeting[0].text  # a newcomer on WeChat
