"""Broadcast fixtures: `kvisa serve` (Telegram) against the fake Bot API, with admins and
applicants stored directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.channels.telegram.conftest import Telegram, fake
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.support import NOON_SHANGHAI, free_port

ADMIN = 1
ADMIN_TOKEN = "admin-token-0123456789abcdef"
MARK = ("Policy update from", "政策更新")


def applicant(
    lang: str = "en", park: str = "lingang", events: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return (
        Session(
            lang=lang,
            consent_at="2026-11-01T00:00:00+00:00",
            finished=True,  # type: ignore[arg-type]
            awaiting=Waiting(Kind.MENU),
            answers={"park": park, "plan": "employed"},
            events=events or {"entered": "2026-11-20"},
            last_seen="2026-11-25T03:00:00+00:00",
        ).to_json()
        | extra
    )


async def store_applicants(storage: Storage, chat_ids: range, **kwargs: Any) -> None:
    for n, chat in enumerate(chat_ids):
        lang = "zh" if n % 3 == 0 else "en"
        await storage.put(
            UserKey("telegram", str(chat)), applicant(lang=lang, **kwargs), expected_version=0
        )


def broadcasts_to(fake: FakeBotApi, chat: int) -> list[str]:
    return [m.text for m in fake.messages[chat] if any(mark in m.text for mark in MARK)]


Serve = Callable[..., Awaitable[Telegram]]
__all__ = ["fake"]  # the Telegram tests' fixture: the fake Bot API on loopback


@pytest.fixture
async def serve(fake: FakeBotApi, tmp_path: Path) -> AsyncIterator[Serve]:
    """Start `kvisa serve` (Telegram, polling) with admin telegram:1; the same data directory
    each time, so a second start is a restart."""
    servers: list[Server] = []

    async def start(**env: str) -> Telegram:
        values = {
            "KVISA_DATA_DIR": str(tmp_path / "var"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": fake.base_url,
            "KVISA_HTTP_PORT": str(free_port()),
            "KVISA_ADMINS": f"telegram:{ADMIN}",
            "KVISA_AGENCY_NAME": "Shanghai K Agency",
            "KVISA_AGENCY_NAME_ZH": "上海K签代理",
        }
        server = Server(Settings.from_env(values | env), clock=FixedClock(NOON_SHANGHAI))
        servers.append(server)
        await server.start()
        return Telegram(fake, server, webhook=False)

    yield start
    for server in reversed(servers):
        await server.stop()
