"""Log lines: one JSON object each, with the request id, users pseudonymised with a keyed hash,
no message text above DEBUG, and a bad request costs one short line, not a traceback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot import logs
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from tests.channels.telegram.conftest import Telegram, interview
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.ops.conftest import WEBHOOK_SECRET
from tests.reminders.conftest import MORNING, session
from tests.support import ACADEMIC, free_port

KEY = b"a key for these tests only"
SHORT_LINE = 1024  # bytes: what a bad request may cost in the log


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger as `kvisa` sets it up (JSON, INFO), into a buffer; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("INFO", KEY, stream=stream, force=True)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[tuple[Telegram, str]]:
    async with FakeBotApi() as fake:
        port = free_port()
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(tmp_path / "var"),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(port),
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        )
        server = Server(settings, FixedClock(MORNING[7]))
        try:
            await server.start()
            yield Telegram(fake, server, webhook=True), f"http://127.0.0.1:{port}"
        finally:
            await server.stop()


def test_a_line_is_one_json_object_with_the_pseudonym_and_the_request_id(
    log_stream: io.StringIO,
) -> None:
    token = logs.request_id.set("req-1")
    try:
        logging.getLogger("kvisa.test").warning(
            "a reminder failed", extra={"user": UserKey("telegram", "424242")}
        )
        try:
            raise KeyError("x" * 5000)
        except KeyError:
            logging.getLogger("kvisa.test").exception("it broke")
    finally:
        logs.request_id.reset(token)
    first, second = lines(log_stream)
    assert first["user"] == logs.pseudonym(UserKey("telegram", "424242"), KEY)
    assert first["user"].startswith("telegram:") and "424242" not in json.dumps(first)
    assert first["request_id"] == "req-1" and first["level"] == "WARNING"
    assert second["error"].startswith("KeyError: ") and "Traceback" not in second["error"]
    assert len(json.dumps(second)) < SHORT_LINE


def test_pseudonyms_are_keyed_and_stable() -> None:
    alice = UserKey("wechat", "oAbC123")
    assert logs.pseudonym(alice, KEY) == logs.pseudonym(alice, KEY)
    assert logs.pseudonym(alice, KEY) != logs.pseudonym(alice, b"another key")
    assert logs.pseudonym(alice, KEY) != logs.pseudonym(UserKey("wechat", "oAbC124"), KEY)


def test_the_key_is_shared_by_replicas_and_never_the_secret_itself() -> None:
    one = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    two = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    other = Settings.from_env({"TELEGRAM_BOT_TOKEN": "42:another-token"})
    assert one.pseudonym_key == two.pseudonym_key != other.pseudonym_key
    assert TOKEN.encode() not in one.pseudonym_key
    given_key = Settings.from_env({"KVISA_LOG_KEY": "0123456789abcdef-log"})
    assert given_key.pseudonym_key == b"0123456789abcdef-log"


@given(st.text(max_size=100))
def test_a_request_id_from_outside_is_kept_only_when_short_and_plain(text: str) -> None:
    kept = logs.clean_request_id(text)
    assert kept is None or (
        kept == text
        and len(kept) <= 64
        and all(c.isalnum() and c.isascii() or c in "-_.:" for c in kept)
    )


async def test_a_conversation_logs_no_message_text_and_no_user_id(
    bot: tuple[Telegram, str], log_stream: io.StringIO
) -> None:
    tg, _ = bot
    user = tg.user(5_550_123)
    await interview(user, **ACADEMIC)
    tg.fake.fail("sendMessage", times=1, how="400")  # a warning about this user
    assert tg.server.storage is not None and tg.server.reminders is not None
    await tg.server.storage.put(UserKey("telegram", "5550124"), session(), expected_version=0)
    await tg.server.reminders.reschedule_all()
    async with asyncio.timeout(30):  # the reminder failure, logged
        while "a reminder failed" not in log_stream.getvalue():
            await asyncio.sleep(0.05)
    text = log_stream.getvalue()
    records = lines(log_stream)
    assert any(r.get("user") == logs.pseudonym("telegram:5550124", KEY) for r in records)
    for secret in ("5550123", "5550124", "1998-04-27", "Germany", "2031-01-01"):
        assert secret not in text


async def test_a_bad_request_costs_one_short_line_with_its_request_id(
    bot: tuple[Telegram, str], log_stream: io.StringIO
) -> None:
    tg, base = bot
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "X-Request-Id": "proxy-7"}
    async with aiohttp.ClientSession() as http:
        # Valid JSON, not an Update: refused in one warning carrying the proxy's request id.
        async with http.post(base + "/telegram", json={"update_id": "x"}, headers=headers) as r:
            assert r.status == 200 and r.headers["X-Request-Id"] == "proxy-7"
        async with http.post(base + "/telegram", data=b"{not json", headers=headers) as r:
            assert r.status == 400 and r.headers["X-Request-Id"]
    # Bytes that are not HTTP at all.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rpartition(":")[2]))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\x00: 1\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)
    records = lines(log_stream)
    skipped = [r for r in records if "not a valid Update" in r["message"]]
    assert [r["request_id"] for r in skipped] == ["proxy-7"]
    assert records, "the malformed request was not logged at all"
    for line in log_stream.getvalue().splitlines():
        assert len(line.encode()) < SHORT_LINE and "Traceback" not in line
