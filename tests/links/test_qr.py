"""The WeChat QR code for /link on Telegram: made through wechatpy's public qrcode API against
the fake, and left out (the text code alone) when the account may not create such codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.engine.links import Links
from kvisa.errors import ChannelError
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi

TG = UserKey("telegram", "1001")


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatApi]:
    api = FakeWeChatApi()
    await api.start()
    yield api
    await api.stop()


async def test_the_qr_code_carries_the_code_as_its_scene(
    fake: FakeWeChatApi, tmp_path: Path
) -> None:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        api = WeChatApi(storage, APP_ID, APP_SECRET, fake.base_url)
        links = Links(storage)
        links.qr = api.link_qr
        try:
            issued = await links.issue(TG, TG)
        finally:
            api.close()
    assert issued.qr is not None and issued.qr.startswith(b"\x89PNG")
    assert issued.qr.endswith(f"link-{issued.code}".encode())
    (created,) = fake.sent("/cgi-bin/qrcode/create")
    assert created.json == {
        "expire_seconds": 600,
        "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": f"link-{issued.code}"}},
    }


async def test_an_account_that_may_not_create_qr_codes_gives_the_text_code_alone(
    fake: FakeWeChatApi, tmp_path: Path
) -> None:
    fake.refuse_next("/cgi-bin/qrcode/create", 48001)  # api unauthorized (unverified account)
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        api = WeChatApi(storage, APP_ID, APP_SECRET, fake.base_url)
        links = Links(storage)
        links.qr = api.link_qr
        try:
            issued = await links.issue(TG, TG)
            fake.refuse_next("/cgi-bin/qrcode/create", 48001)
            with pytest.raises(ChannelError):
                await api.link_qr("link-000000", 600)
        finally:
            api.close()
    assert issued.kind == "issued" and len(issued.code) == 6 and issued.qr is None
