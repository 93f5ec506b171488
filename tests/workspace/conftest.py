"""The workspace under test: `kvisa serve` (Telegram against the fake Bot API, SQLite) with
three staff accounts, and a staff member's browser-like HTTP client (cookies, CSRF token)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.bot.workspace.accounts import StaffStore
from kvisa.identity import UserKey
from tests.broadcasts.conftest import applicant
from tests.channels.telegram.conftest import Telegram, fake
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.support import NOON_SHANGHAI, free_port

PASSWORD = "correct horse battery"
STAFF = {"ada": "admin", "aaron": "agent", "vera": "viewer"}
ADMIN_CHAT = 1
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
__all__ = ["fake"]


@dataclass
class Staffer:
    """A staff member's browser: cookies kept, the page's CSRF token remembered."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""
    last: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def _seen(self, response: aiohttp.ClientResponse, text: str) -> str:
        self.last, self.status = text, response.status
        self.headers = dict(response.headers)
        found = CSRF.search(text)
        if found:
            self.csrf = found.group(1)
        return text

    async def get(self, path: str, **kwargs: Any) -> str:
        async with self.http.get(self.base + path, **kwargs) as response:
            return self._seen(response, await response.text())

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> str:
        form = aiohttp.FormData()
        for key, value in {"csrf": self.csrf, **(data or {})}.items():
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    form.add_field(key, item)
        async with self.http.post(self.base + path, data=form, **kwargs) as response:
            return self._seen(response, await response.text())

    async def sign_in(self, name: str, password: str = PASSWORD) -> str:
        await self.get("/agency/")
        return await self.post("/agency/signin", {"name": name, "password": password})


@dataclass
class Agency:
    server: Server
    tg: Telegram
    base: str
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def storage(self) -> Any:
        assert self.server.storage is not None
        return self.server.storage

    @property
    def workspace(self) -> Any:
        assert self.server.workspace is not None
        return self.server.workspace

    async def staffer(self, name: str | None = None) -> Staffer:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.clients.append(http)
        staffer = Staffer(self.base, http)
        if name is not None:
            await staffer.sign_in(name)
            assert staffer.status == 200 and "/agency/signout" in staffer.last, staffer.last[:500]
        return staffer

    async def store(self, chat_id: int, **kwargs: Any) -> str:
        """An applicant stored directly (consented, interview finished), indexed; their ref."""
        user = UserKey("telegram", str(chat_id))
        data = applicant(**kwargs)
        await self.storage.put(user, data, expected_version=0)
        await self.workspace.applicants.refresh(user, data)
        ref: str = self.workspace.applicants.ref(user)
        return ref

    async def audit(self, **kwargs: Any) -> list[dict[str, Any]]:
        page = await self.workspace.audit.recent(0, 200, **kwargs)
        return [doc for _, doc in page.docs]


Start = Callable[..., Awaitable[Agency]]


@pytest.fixture
async def agency(fake: FakeBotApi, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Agency] = []

    async def start(**env: str) -> Agency:
        port = free_port()
        values = {
            "KVISA_DATA_DIR": str(tmp_path / "var"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": fake.base_url,
            "KVISA_HTTP_PORT": str(port),
            "KVISA_ADMINS": f"telegram:{ADMIN_CHAT}",
            "KVISA_AGENCY_NAME": "Shanghai K Agency",
            "KVISA_AGENCY_NAME_ZH": "上海K签代理",
        }
        server = Server(Settings.from_env(values | env), clock=FixedClock(NOON_SHANGHAI))
        await server.start()
        assert server.storage is not None
        store = StaffStore(server.storage)
        for name, role in STAFF.items():
            if await store.get(name) is None:
                await store.add(name, role, PASSWORD, NOON_SHANGHAI)
        agency = Agency(server, Telegram(fake, server, webhook=False), f"http://127.0.0.1:{port}")
        started.append(agency)
        return agency

    yield start
    for agency in reversed(started):
        for http in agency.clients:
            await http.close()
        await agency.server.stop()
