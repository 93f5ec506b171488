"""wechatpy's endpoints on our own HTTP session: every call goes through the session that
WeChatApi.close closes, and comes back as wechatpy's client would hand it back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.messages import Attachment
from kvisa.errors import ChannelError
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi

PNG = Attachment("timeline.png", "image/png", b"\x89PNG", "Your timeline")


@pytest.fixture
async def api(tmp_path: Path, fake_api: FakeWeChatApi) -> AsyncIterator[WeChatApi]:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        api = WeChatApi(storage, APP_ID, APP_SECRET, fake_api.base_url)
        try:
            yield api
        finally:
            api.close()


async def test_every_call_goes_through_the_session_that_close_closes(
    api: WeChatApi, fake_api: FakeWeChatApi
) -> None:
    """Pins what the client relies on: wechatpy's endpoints call the client's public get and
    post, which send on our session (wechatpy's own has no public way to be closed)."""
    sent: list[str] = []

    def note(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sent.append(response.request.path_url.split("?")[0])

    api.client.http.hooks["response"].append(note)

    await api.send_text("o_user_0", "你好, K visa")
    media_id = await api.upload_image(PNG)
    await api.send_image("o_user_0", media_id)
    await api.send_template("o_user_0", "tmpl", {"first": {"value": "截止日期"}})
    await api.create_menu({"button": [{"type": "click", "name": "清单", "key": "checklist"}]})

    assert sent == [call.path for call in fake_api.calls]
    assert sent[0] == "/cgi-bin/token" and len(sent) == 6
    assert fake_api.texts_to("o_user_0") == ["你好, K visa"]
    assert fake_api.sent("/cgi-bin/menu/create")[0].json["button"][0]["name"] == "清单"
    assert fake_api.sent("/cgi-bin/media/upload")[0].upload == (
        "timeline.png",
        "image/png",
        b"\x89PNG",
    )


async def test_an_errcode_from_wechat_is_a_channel_error(
    api: WeChatApi, fake_api: FakeWeChatApi
) -> None:
    fake_api.refuse_next("/cgi-bin/menu/create", 40018)  # invalid button name

    with pytest.raises(ChannelError):
        await api.create_menu({"button": []})
