"""Our own fake of the Telegram Bot API: real HTTP on loopback at `{base}/bot{token}/{method}`.

It keeps what Telegram would keep (the bot's messages with their keyboards, pending updates,
the webhook, the command menus), records every call, and can misbehave the way Telegram does:
flood control (429 with retry_after, refusing early retries), a user who blocked the bot
(403), dropped connections and 5xx answers. Updates reach the bot by real long polling
(getUpdates with offset and timeout) or by a webhook POST carrying the secret header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "KVisa", "username": "kvisa_test_bot"}
TOKEN = "123456:TEST-fake-token"
JSON_PARAMS = {"reply_markup", "commands", "allowed_updates", "scope", "link_preview_options"}
SENDING = {"sendMessage", "sendPhoto", "sendDocument"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, Upload]
    status: int = 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


@dataclass
class Sent:
    """A message the bot sent, as it stands now (edits change it in place)."""

    chat_id: int
    message_id: int
    kind: str  # "text", "photo" or "document"
    text: str | None = None
    caption: str | None = None
    reply_markup: dict[str, Any] | None = None
    file: Upload | None = None
    edits: int = 0

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every button still on the message."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    @property
    def option_ids(self) -> list[str]:
        return [data.partition(":")[2] for _, data in self.buttons]

    def to_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "date": 1_790_000_000,
            "from": BOT_USER,
            "chat": {"id": self.chat_id, "type": "private", "first_name": "User"},
        }
        if self.text is not None:
            message["text"] = self.text
        if self.caption is not None:
            message["caption"] = self.caption
        if self.kind == "photo":
            message["photo"] = [
                {
                    "file_id": f"photo{self.message_id}",
                    "file_unique_id": f"p{self.message_id}",
                    "width": 800,
                    "height": 600,
                }
            ]
        if self.kind == "document" and self.file:
            message["document"] = {
                "file_id": f"doc{self.message_id}",
                "file_unique_id": f"d{self.message_id}",
                "file_name": self.file.filename,
            }
        if self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message


@dataclass
class Flood:
    refusals_left: int
    retry_after: int
    in_a_row: bool
    until: float = 0.0
    just_refused: bool = False


@dataclass
class FakeBotApi:
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))
    commands: dict[str | None, list[dict[str, str]]] = field(default_factory=dict)
    webhook: dict[str, Any] | None = None
    early_retries: int = 0  # calls that came back inside a flood window (retry_after not honoured)
    on_send: list[Callable[[Sent], None]] = field(default_factory=list)
    # The bot's global limit, as Telegram applies it to bulk messages: at most `limit` sending
    # calls a second (a token bucket holding one second's worth); beyond it, 429 retry_after 1.
    limit: float | None = None
    refused_by_limit: int = 0
    sent_times: list[float] = field(default_factory=list)  # loop time of each accepted sending call
    send_delay: float = 0.0  # seconds each sending call takes (a slow network, turns in flight)

    def __post_init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.confirmed_below = 0  # the highest getUpdates offset seen
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._query_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._floods: dict[int, Flood] = {}
        self._blocked: set[int] = set()
        self._failures: dict[str, list[str]] = defaultdict(list)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    # --- running --------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._endpoint)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Until `predicate()` holds; fails the test after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}") from None

    # --- faults ---------------------------------------------------------------------------

    def flood(
        self, chat_id: int, refusals: int = 1, retry_after: int = 1, in_a_row: bool = False
    ) -> None:
        """Flood control for a chat: each of its next `refusals` calls is refused once with 429
        (its retry then goes through), or, `in_a_row`, the next `refusals` attempts whatever
        they are. A 429 opens a `retry_after` window in which any call is refused again and
        counted in early_retries."""
        self._floods[chat_id] = Flood(refusals, retry_after, in_a_row)

    def block(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def fail(self, method: str, times: int = 1, how: str = "drop") -> None:
        """The next calls of `method` fail: "drop" closes the connection, "502" answers a proxy
        error page, "500" Telegram's own internal error, "429" flood control (retry after 1),
        "400" a refusal that no retry changes."""
        self._failures[method] += [how] * times

    # --- updates --------------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; returns its update_id."""
        update.setdefault("update_id", next(self._update_ids))
        self.updates.append(update)
        self._notify()
        return int(update["update_id"])

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def confirmed(self, update_id: int, timeout: float = 10.0) -> None:
        """Until the bot asked for updates past this one (so it has it and has queued it)."""
        await self.wait_for(
            lambda: self.confirmed_below > update_id, timeout, f"update {update_id} confirmed"
        )

    async def deliver(self, update: dict[str, Any], secret: str | None = None) -> int:
        """POST an update to the webhook, with the registered secret unless told otherwise
        (secret="" sends no header); returns the HTTP status."""
        assert self.webhook, "no webhook is set"
        update.setdefault("update_id", next(self._update_ids))
        secret = self.webhook.get("secret_token") if secret is None else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        if self._client is None:
            self._client = aiohttp.ClientSession()
        async with self._client.post(self.webhook["url"], json=update, headers=headers) as response:
            return response.status

    def new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids[chat_id])

    def message_update(
        self, chat_id: int, text: str, language_code: str | None = "en", chat_type: str = "private"
    ) -> dict[str, Any]:
        sender: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": "User"}
        if language_code:
            sender["language_code"] = language_code
        message: dict[str, Any] = {
            "message_id": self.new_message_id(chat_id),
            "date": 1_790_000_000,
            "chat": {"id": chat_id, "type": chat_type, "first_name": "User"},
            "from": sender,
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        return {"message": message}

    def callback_update(
        self, sent: Sent, data: str, language_code: str | None = "en"
    ) -> dict[str, Any]:
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        sender: dict[str, Any] = {"id": sent.chat_id, "is_bot": False, "first_name": "User"}
        if language_code:
            sender["language_code"] = language_code
        return {
            "callback_query": {
                "id": query_id,
                "from": sender,
                "chat_instance": f"ci{sent.chat_id}",
                "message": sent.to_json(),
                "data": data,
            }
        }

    # --- what happened --------------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id)
        ]

    def delivered(self, chat_id: int) -> list[Call]:
        """Successful calls that put something in the chat or changed it."""
        return [
            c
            for c in self.calls
            if c.chat_id == chat_id and c.status == 200 and c.method != "getUpdates"
        ]

    # --- the API --------------------------------------------------------------------------

    async def _endpoint(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params, files = await _params(request)
        call = Call(method, params, files)
        self.calls.append(call)
        try:
            if self._failures.get(method):
                how = self._failures[method].pop(0)
                call.status = 0
                if how == "drop":
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response()
                if how == "502":
                    call.status = 502
                    return web.Response(
                        status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
                    )
                if how == "429":
                    raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
                if how == "400":
                    raise ApiError(400, "Bad Request: chat not found")
                raise ApiError(500, "Internal Server Error")
            if self.send_delay and method in SENDING:
                await asyncio.sleep(self.send_delay)
            self._check_chat(call)
            self._check_limit(call)
            handler = getattr(self, f"_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(call)
        except ApiError as exc:
            call.status = exc.code
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.code)
        finally:
            self._notify()
        return web.json_response({"ok": True, "result": result})

    def _check_limit(self, call: Call) -> None:
        if call.method not in SENDING:
            return
        now = asyncio.get_running_loop().time()
        if self.limit is not None:
            if not hasattr(self, "_tokens"):
                self._tokens, self._stamp = self.limit, now
            self._tokens = min(self.limit, self._tokens + (now - self._stamp) * self.limit)
            self._stamp = now
            if self._tokens < 1:
                self.refused_by_limit += 1
                raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
            self._tokens -= 1
        self.sent_times.append(now)

    def _check_chat(self, call: Call) -> None:
        chat = call.chat_id
        if chat is None:
            return
        if chat in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        flood = self._floods.get(chat)
        if flood is None:
            return
        now = asyncio.get_running_loop().time()
        if now < flood.until - 0.05:  # a little slack for the clocks' resolution
            self.early_retries += 1
            left = math.ceil(flood.until - now)
            raise ApiError(429, f"Too Many Requests: retry after {left}", retry_after=left)
        if flood.refusals_left > 0 and (flood.in_a_row or not flood.just_refused):
            flood.refusals_left -= 1
            flood.until = now + flood.retry_after
            flood.just_refused = True
            raise ApiError(
                429,
                f"Too Many Requests: retry after {flood.retry_after}",
                retry_after=flood.retry_after,
            )
        flood.just_refused = False

    async def _getMe(self, call: Call) -> Any:
        return BOT_USER

    async def _getUpdates(self, call: Call) -> Any:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(call.params.get("offset") or 0)
        limit = int(call.params.get("limit") or 100)
        timeout = float(call.params.get("timeout") or 0)
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            self.confirmed_below = max(self.confirmed_below, offset)
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.updates and not self._closing and loop.time() < deadline:
            try:
                async with asyncio.timeout(deadline - loop.time()):
                    await self._changed.wait()
            except TimeoutError:
                break
        return self.updates[:limit]

    async def _setWebhook(self, call: Call) -> Any:
        self.webhook = {
            "url": call.params["url"],
            "secret_token": call.params.get("secret_token"),
            "allowed_updates": call.params.get("allowed_updates"),
        }
        return True

    async def _deleteWebhook(self, call: Call) -> Any:
        self.webhook = None
        if call.params.get("drop_pending_updates") in (True, "true", "True"):
            self.updates.clear()
        return True

    async def _setMyCommands(self, call: Call) -> Any:
        self.commands[call.params.get("language_code")] = list(call.params["commands"])
        return True

    async def _answerCallbackQuery(self, call: Call) -> Any:
        query_id = str(call.params["callback_query_id"])
        if query_id not in self._open_queries:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_queries.discard(query_id)
        return True

    async def _sendMessage(self, call: Call) -> Any:
        text = str(call.params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._sent(call, Sent(int(call.params["chat_id"]), 0, "text", text=text))

    async def _sendPhoto(self, call: Call) -> Any:
        return self._sent(
            call,
            Sent(
                int(call.params["chat_id"]),
                0,
                "photo",
                caption=call.params.get("caption"),
                file=_file(call, "photo"),
            ),
        )

    async def _sendDocument(self, call: Call) -> Any:
        return self._sent(
            call,
            Sent(
                int(call.params["chat_id"]),
                0,
                "document",
                caption=call.params.get("caption"),
                file=_file(call, "document"),
            ),
        )

    def _sent(self, call: Call, sent: Sent) -> Any:
        if call.params.get("caption") is not None and utf16_len(str(call.params["caption"])) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        sent.reply_markup = _markup(call)
        sent.message_id = self.new_message_id(sent.chat_id)
        self.messages[sent.chat_id].append(sent)
        for listener in self.on_send:
            listener(sent)
        return sent.to_json()

    def _message(self, call: Call) -> Sent:
        chat, message_id = int(call.params["chat_id"]), int(call.params["message_id"])
        for sent in self.messages.get(chat, []):
            if sent.message_id == message_id:
                return sent
        raise ApiError(400, "Bad Request: message to edit not found")

    async def _editMessageText(self, call: Call) -> Any:
        sent = self._message(call)
        text, markup = str(call.params.get("text", "")), _markup(call)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if text == sent.text and markup == sent.reply_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        sent.text, sent.reply_markup = text, markup  # no reply_markup: the keyboard goes
        sent.edits += 1
        return sent.to_json()

    async def _editMessageReplyMarkup(self, call: Call) -> Any:
        sent = self._message(call)
        markup = _markup(call)
        if markup == sent.reply_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        sent.reply_markup = markup
        sent.edits += 1
        return sent.to_json()


async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        params.update(await request.json())
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = (
                    json.loads(value) if key in JSON_PARAMS and isinstance(value, str) else value
                )
    return params, files


def _file(call: Call, field_name: str) -> Upload:
    reference = str(call.params.get(field_name, ""))
    upload = call.files.get(reference.removeprefix("attach://")) or call.files.get(field_name)
    if upload is None:
        raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
    return upload


def _markup(call: Call) -> dict[str, Any] | None:
    markup = call.params.get("reply_markup")
    if not markup:
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise ApiError(
                    400, "Bad Request: text buttons are unallowed in the inline keyboard"
                )
    return dict(markup)
