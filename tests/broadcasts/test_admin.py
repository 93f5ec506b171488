"""Who may broadcast and how: the admin's chat (compose, preview, send, progress, list, cancel),
refusals (non-admins, one language only), /news, and the HTTP admin API with its token."""

from __future__ import annotations

import asyncio

import aiohttp

from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.identity import UserKey
from tests.broadcasts.conftest import ADMIN, ADMIN_TOKEN, Serve, broadcasts_to, store_applicants
from tests.channels.telegram.fake_api import FakeBotApi

EN = "Lingang now accepts online applications for the work permit."
ZH = "临港现已接受工作许可的网上申请。"


async def wait_done(store: BroadcastStore, broadcast_id: str, fake: FakeBotApi) -> None:
    async def done() -> bool:
        broadcast = await store.get(broadcast_id)
        return broadcast is not None and broadcast.status == "done"

    async with asyncio.timeout(20):
        while not await done():
            await asyncio.sleep(0.05)


async def test_an_admin_composes_previews_and_sends_and_sees_progress(
    fake: FakeBotApi, serve: Serve
) -> None:
    tg = await serve()
    assert tg.server.storage is not None
    await store_applicants(tg.server.storage, range(20_000, 20_006), park="lingang")
    await store_applicants(tg.server.storage, range(30_000, 30_003), park="zhangjiang")
    admin = tg.user(ADMIN)
    assert "English text" in (await admin.send("/broadcast"))[0].text
    refused = await admin.send(EN)
    assert "Chinese text" in refused[0].text
    assert (
        "not look like Chinese" in (await admin.send("Only English again"))[0].text
    )  # one language: refused
    asked = await admin.send(ZH)
    assert asked[-1].option_ids[:2] == ["bc:seg:0", "bc:seg:1"]
    preview = await admin.send("park=lingang")  # a typed segment
    assert EN in preview[0].text and ZH in preview[0].text
    assert "Recipients: 6 (Telegram 6, WeChat 0)." in preview[1].text
    queued = await admin.press("bc:send")
    assert "queued for 6 recipients" in queued[-1].text
    broadcast_id = queued[-1].text.split()[1]
    await wait_done(BroadcastStore(tg.server.storage), broadcast_id, fake)
    assert all(len(broadcasts_to(fake, chat)) == 1 for chat in range(20_000, 20_006))
    assert all(broadcasts_to(fake, chat) == [] for chat in range(30_000, 30_003))
    await fake.wait_for(
        lambda: any("finished" in m.text for m in fake.messages[ADMIN]), what="final progress"
    )
    progress = [m for m in fake.messages[ADMIN] if f"Broadcast {broadcast_id}:" in m.text]
    assert len(progress) == 1  # one message, edited in place
    assert fake.calls_to("editMessageText", ADMIN)
    listed = await admin.send("/broadcasts")
    assert broadcast_id in listed[0].text and "Sent 6" in listed[0].text


async def test_discard_and_cancel(fake: FakeBotApi, serve: Serve) -> None:
    tg = await serve()
    admin = tg.user(ADMIN)
    await admin.send("/broadcast")
    await admin.send(EN)
    await admin.send(ZH)
    await admin.press("bc:seg:0")
    assert "discarded" in (await admin.press("bc:discard"))[-1].text
    assert "no broadcast" in (await admin.send("/broadcast_cancel abcdef"))[0].text.lower()
    await admin.send("/broadcast")
    assert "discarded" in (await admin.send("/cancel"))[0].text


async def test_admin_commands_from_anyone_else_are_unknown(
    fake: FakeBotApi, serve: Serve, caplog
) -> None:  # type: ignore[no-untyped-def]
    tg = await serve()
    stranger = tg.user(777)
    await stranger.send("/start")
    for command in ("/broadcast", "/broadcasts", "/broadcast_cancel abcdef"):
        reply = await stranger.send(command)
        assert "I don't know the command" in reply[0].text
    assert "refused for telegram:777" in caplog.text


async def test_news_off_keeps_an_applicant_out_of_broadcasts(
    fake: FakeBotApi, serve: Serve
) -> None:
    tg = await serve()
    assert tg.server.storage is not None and tg.server.composer is not None
    await store_applicants(tg.server.storage, range(40_000, 40_002))
    user = tg.user(40_001)
    assert "no longer receive" in (await user.send("/news off"))[0].text
    assert "are off" in (await user.send("/news"))[0].text
    from kvisa.bot.broadcasts.segment import Segment

    broadcast = await tg.server.composer.create(EN, ZH, Segment(), author="cli")
    assert broadcast.total == 1
    await wait_done(BroadcastStore(tg.server.storage), broadcast.id, fake)
    assert broadcasts_to(fake, 40_001) == [] and len(broadcasts_to(fake, 40_000)) == 1
    assert "again" in (await user.send("/news on"))[0].text
    record = await tg.server.storage.get(UserKey("telegram", "40001"))
    assert record and record.data["news_off"] is False


async def test_the_http_admin_api(fake: FakeBotApi, serve: Serve) -> None:
    tg = await serve(KVISA_ADMIN_TOKEN=ADMIN_TOKEN)
    assert tg.server.storage is not None
    await store_applicants(tg.server.storage, range(50_000, 50_003))
    base = f"http://127.0.0.1:{tg.server.settings.http_port}/admin/broadcasts"
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": ADMIN_TOKEN},
        ):
            async with http.post(base, json={"en": EN, "zh": ZH}, headers=headers) as response:
                assert response.status == 401
        async with http.post(base, json={"en": EN}, headers=good) as response:
            assert response.status == 400 and (await response.json())["field"] == "zh"
        async with http.post(
            base, json={"en": EN, "zh": ZH, "segment": "park=mars"}, headers=good
        ) as response:
            assert response.status == 400 and (await response.json())["field"] == "park"
        async with http.post(base, data=b"{not json", headers=good) as response:
            assert response.status == 400
        async with http.post(
            base,
            json={"en": EN, "zh": ZH, "segment": {"lang": ["zh"]}, "dry_run": True},
            headers=good,
        ) as response:
            assert response.status == 200
            assert await response.json() == {
                "dry_run": True,
                "segment": "lang=zh",
                "recipients": 1,
                "per_channel": {"telegram": 1},
                "wechat_outside_window": 0,
            }
        async with http.post(base, json={"en": EN, "zh": ZH}, headers=good) as response:
            assert response.status == 201
            created = await response.json()
        assert created["total"] == 3 and response.headers["Location"].endswith(created["id"])
        await wait_done(BroadcastStore(tg.server.storage), created["id"], fake)
        async with http.get(f"{base}/{created['id']}", headers=good) as response:
            shown = await response.json()
        assert (
            shown["status"] == "done" and shown["counts"] == {"sent": 3} and shown["remaining"] == 0
        )
        async with http.get(base, headers=good) as response:
            assert [b["id"] for b in (await response.json())["broadcasts"]] == [created["id"]]
        async with http.post(f"{base}/{created['id']}/cancel", headers=good) as response:
            assert (await response.json()) == {"id": created["id"], "cancelling": False}


async def test_without_a_token_there_is_no_admin_api(fake: FakeBotApi, serve: Serve) -> None:
    tg = await serve()
    url = f"http://127.0.0.1:{tg.server.settings.http_port}/admin/broadcasts"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": "Bearer anything-at-all-really"}) as response,
    ):
        assert response.status == 404
