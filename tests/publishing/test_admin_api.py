"""The admin API's content routes, on `kvisa serve` against the fake Bot API: list, diff,
dry run, publish (the serving process queues and delivers the notices), rollback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.broadcasts.conftest import ADMIN_TOKEN, Serve, fake, serve
from tests.channels.telegram.fake_api import FakeBotApi
from tests.publishing.conftest import applicant, edit

__all__ = ["fake", "serve"]
GOOD = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers or GOOD) as response:
        return response.status, await response.json()


async def delivered(storage: Storage, broadcast_id: str) -> None:
    """Wait for the serving process to queue (within its 5 s look) and deliver the notices."""
    store = BroadcastStore(storage)
    async with asyncio.timeout(30):
        while (done := await store.get(broadcast_id)) is None or done.status != "done":
            await asyncio.sleep(0.1)


async def test_publish_dry_run_diff_and_rollback_over_http(
    fake: FakeBotApi, serve: Serve, flows_copy: Path
) -> None:
    tg = await serve(KVISA_ADMIN_TOKEN=ADMIN_TOKEN, KVISA_FLOWS_DIR=str(flows_copy))
    storage = tg.server.storage
    assert storage is not None
    await storage.put(
        UserKey("telegram", "60001"), applicant("zh", birth_date="1994-06-01"), expected_version=0
    )
    await storage.put(
        UserKey("telegram", "60002"), applicant("en", birth_date="1998-06-01"), expected_version=0
    )
    base = f"http://127.0.0.1:{tg.server.settings.http_port}/admin/content"
    async with aiohttp.ClientSession() as http:
        refused, _ = await call(http, "GET", f"{base}/versions", Authorization="Bearer nope")
        first, one = await call(http, "POST", f"{base}/publish", {"note": "baseline"})
        edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")
        dry, preview = await call(http, "POST", f"{base}/publish", {"dry_run": True})
        second, two = await call(http, "POST", f"{base}/publish", {"note": "proof from 30"})
        await delivered(storage, "cv2")
        diffed, changes = await call(http, "GET", f"{base}/diff?a=1&b=2")
        bad_note, bad = await call(http, "POST", f"{base}/publish", {"note": 7})
        bad_id, wrong = await call(http, "POST", f"{base}/rollback/x")
        missing, absent = await call(http, "POST", f"{base}/rollback/9")
        rolled, three = await call(http, "POST", f"{base}/rollback/1", {"note": "too early"})
        _, listed = await call(http, "GET", f"{base}/versions")

    assert refused == 401
    assert (first, one["version"]["id"], one["version"]["note"]) == (201, 1, "baseline")
    assert dry == 200 and preview["summary"]["affected"] == 1
    assert preview["summary"]["samples"]["checklist"] == ["telegram:60001"]
    assert second == 201 and two["version"]["id"] == 2
    assert diffed == 200 and any("35 → 30" in line for line in changes["changes"]["en"])
    assert (bad_note, bad["field"]) == (400, "note")
    assert (bad_id, wrong["field"]) == (400, "id")
    assert (missing, absent["field"]) == (400, "ID")
    assert rolled == 201 and three["version"]["rollback_of"] == 1
    assert [v["id"] for v in listed["versions"]] == [1, 2, 3] and listed["current"] == 3

    # The serving process re-checks and delivers: the one applicant concerned, once per change.
    await delivered(storage, "cv3")
    assert [m.text.count("version") > 0 for m in fake.messages.get(60001, [])] == [True, True]
    assert fake.messages.get(60002, []) == []
