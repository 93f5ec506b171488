"""Our own stand-in for api.weixin.qq.com, on loopback: the calls the bot makes, recorded.

Like WeChat, it hands out one valid token per account at a time (a new token retires the
previous one), refuses calls with a retired or unknown token (40001), and can be told to
refuse the next calls of an endpoint with a given errcode.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APP_ID = "wx0123456789abcdef"
APP_SECRET = "s3cr3t-app-secret"


@dataclass
class Call:
    path: str
    query: dict[str, str]
    json: dict[str, Any] = field(default_factory=dict)
    upload: tuple[str, str, bytes] | None = None  # filename, content type, data


class FakeWeChatApi:
    def __init__(self, app_id: str = APP_ID, secret: str = APP_SECRET) -> None:
        self.app_id, self.secret = app_id, secret
        self.calls: list[Call] = []
        self.token_requests = 0
        self.valid_token: str | None = None
        self.failures: dict[str, list[int]] = {}  # path -> errcodes for its next calls
        self._numbers = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- what tests look at ------------------------------------------------------------------

    def sent(self, path: str, to: str | None = None) -> list[Call]:
        return [
            c for c in self.calls if c.path == path and (to is None or c.json.get("touser") == to)
        ]

    def texts_to(self, openid: str) -> list[str]:
        return [
            c.json["text"]["content"]
            for c in self.sent("/cgi-bin/message/custom/send", openid)
            if c.json.get("msgtype") == "text"
        ]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        """Until `condition` holds (checked after every call); fails after `timeout` seconds."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    def refuse_next(self, path: str, *errcodes: int) -> None:
        self.failures.setdefault(path, []).extend(errcodes)

    def retire_token(self) -> None:
        """As if the token had expired at WeChat: calls with it now get 42001."""
        self.valid_token = None

    # --- the server --------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/cgi-bin/token", self.token)
        for path in (
            "/cgi-bin/message/custom/send",
            "/cgi-bin/message/template/send",
            "/cgi-bin/menu/create",
            "/cgi-bin/qrcode/create",
        ):
            app.router.add_post(path, self.json_call)
        app.router.add_get("/cgi-bin/showqrcode", self.show_qr)
        app.router.add_post("/cgi-bin/media/upload", self.upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        query = dict(request.query)
        if (query.get("grant_type"), query.get("appid"), query.get("secret")) != (
            "client_credential",
            self.app_id,
            self.secret,
        ):
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.valid_token = f"TOKEN-{next(self._numbers)}"
        await self._record(Call(request.path, query))
        return web.json_response({"access_token": self.valid_token, "expires_in": 7200})

    def _refusal(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token or token != self.valid_token:
            return web.json_response(
                {
                    "errcode": 40001 if self.valid_token else 42001,
                    "errmsg": "invalid credential, access_token is invalid or not latest",
                }
            )
        if self.failures.get(request.path):
            errcode = self.failures[request.path].pop(0)
            return web.json_response(
                {"errcode": errcode, "errmsg": f"refused by the fake ({errcode})"}
            )
        return None

    async def json_call(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        await self._record(Call(request.path, dict(request.query), await request.json()))
        if request.path.endswith("template/send"):
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._numbers)})
        if request.path.endswith("qrcode/create"):  # the scene comes back with the picture
            body = await request.json()
            scene = body["action_info"]["scene"]["scene_str"]
            return web.json_response(
                {
                    "ticket": f"TICKET-{scene}",
                    "expire_seconds": 600,
                    "url": "http://weixin.qq.com/q/x",
                }
            )
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def show_qr(self, request: web.Request) -> web.Response:
        """The QR picture of a ticket: PNG's signature, then the ticket (tests read it back)."""
        await self._record(Call(request.path, dict(request.query)))
        ticket = request.query.get("ticket", "")
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + ticket.encode(), content_type="image/png")

    async def upload(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.post()
        media = form["media"]
        assert isinstance(media, web.FileField), "media must be a file part"
        with media.file:
            data = media.file.read()
        await self._record(
            Call(
                request.path, dict(request.query), upload=(media.filename, media.content_type, data)
            )
        )
        return web.json_response(
            {
                "type": request.query.get("type"),
                "media_id": f"MEDIA-{next(self._numbers)}",
                "created_at": 1_700_000_000,
            }
        )
