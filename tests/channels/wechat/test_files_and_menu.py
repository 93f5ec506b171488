"""Signed file links, and `kvisa wechat menu` against the fake API."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from kvisa.bot.channels.wechat import files
from kvisa.bot.channels.wechat.convert import utf8_len
from kvisa.bot.channels.wechat.menu import NAME_LIMIT, menu
from kvisa.bot.cli import main
from kvisa.bot.engine.engine import commands
from kvisa.bot.messages import Attachment, Outbound
from kvisa.identity import UserKey
from tests.channels.wechat.callbacks import TOKEN
from tests.channels.wechat.conftest import Bot
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi
from tests.support import content

COMMANDS = commands()

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
KEY = files.link_key(APP_SECRET)


def test_a_link_is_valid_until_it_expires() -> None:
    expires = int((NOW + dt.timedelta(hours=1)).timestamp())
    sig = files.signature(KEY, "abcdefghijklmnopqrstuv", expires)

    assert files.valid(KEY, "abcdefghijklmnopqrstuv", str(expires), sig, NOW)
    assert not files.valid(
        KEY, "abcdefghijklmnopqrstuv", str(expires), sig, NOW + dt.timedelta(hours=2)
    )


def test_a_link_with_another_id_expiry_or_key_is_not_valid() -> None:
    expires = int((NOW + dt.timedelta(hours=1)).timestamp())
    sig = files.signature(KEY, "abcdefghijklmnopqrstuv", expires)

    assert not files.valid(KEY, "bbcdefghijklmnopqrstuv", str(expires), sig, NOW)
    assert not files.valid(KEY, "abcdefghijklmnopqrstuv", str(expires + 3600), sig, NOW)
    assert not files.valid(
        files.link_key("another secret"), "abcdefghijklmnopqrstuv", str(expires), sig, NOW
    )
    assert not files.valid(KEY, "abcdefghijklmnopqrstuv", "soon", sig, NOW)


def test_a_stored_file_keeps_its_name_type_and_bytes() -> None:
    attachment = Attachment("kvisa-deadlines.ics", "text/calendar", b"BEGIN:VCALENDAR\n\x00\xff")

    assert files.unpack(files.pack(attachment)) == attachment


async def test_a_pushed_file_is_served_once_and_unknown_ids_are_not(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")
    await user.say("1")
    ics = Attachment(
        "kvisa-deadlines.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "Deadlines"
    )

    await bot.channel.send(
        UserKey("wechat", user.openid), [Outbound("Your calendar", attachments=(ics,))]
    )

    text = bot.api.texts_to(user.openid)[0]
    link = text.splitlines()[-1]
    async with bot.http.get(link) as response:
        assert response.status == 200
        assert await response.read() == ics.data
        assert "kvisa-deadlines.ics" in response.headers["Content-Disposition"]
    forged_id = link.replace("/files/", "/files/x")
    async with bot.http.get(forged_id) as response:
        assert response.status == 403


def test_the_menu_buttons_send_known_commands_and_fit_wechats_name_limit() -> None:
    _, catalogs = content()

    top = menu(catalogs)["button"]
    buttons = [*top[:2], *top[2]["sub_button"]]

    assert len(top) <= 3  # WeChat's limit
    assert [b["key"] for b in buttons] == ["checklist", "timeline", "help", "human", "link"]
    assert {b["key"] for b in buttons} <= {name for name, _ in COMMANDS}
    assert all(b["type"] == "click" and 0 < utf8_len(b["name"]) <= 60 for b in buttons)
    assert all(0 < utf8_len(b["name"]) <= NAME_LIMIT for b in top)


async def test_kvisa_wechat_menu_installs_the_menu(
    tmp_path: Path, fake_api: FakeWeChatApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name, value in {
        "KVISA_DATA_DIR": str(tmp_path / "var"),
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "WECHAT_API_BASE": fake_api.base_url,
        "KVISA_PUBLIC_URL": "https://bot.example.org",  # WeChat's settings go together
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)

    # The command runs its own event loop, as from a shell; the fake API keeps serving on ours.
    assert await asyncio.to_thread(main, ["wechat", "menu"]) == 0

    (call,) = fake_api.sent("/cgi-bin/menu/create")
    top = call.json["button"]
    assert [b.get("key") for b in top] == ["checklist", "timeline", None]
    assert [b["key"] for b in top[2]["sub_button"]] == ["help", "human", "link"]


def test_kvisa_wechat_menu_without_settings_names_the_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)

    assert main(["wechat", "menu"]) != 0

    assert "WECHAT_APP_ID" in capsys.readouterr().err
