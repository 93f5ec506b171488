"""The Telegram channel: updates in by long polling or webhook, replies out through the Bot API.

Each update is handled in its own task, so one slow or failing update never holds up the
others; the tasks of one user are chained in the order the updates arrived, so that user's
turns and replies keep their order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiogram import Bot
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Update
from aiogram.utils.token import extract_bot_id
from aiohttp import web
from pydantic import ValidationError

from kvisa import metrics
from kvisa.bot.channels.base import STOP_GRACE, Channel, Services
from kvisa.bot.channels.telegram import convert
from kvisa.bot.channels.telegram.api import GetRawUpdates, Retry, call
from kvisa.bot.engine.engine import commands
from kvisa.bot.logs import request_id
from kvisa.bot.loops import pause, raise_if_cancelled
from kvisa.bot.messages import Inbound, Outbound
from kvisa.errors import Blocked, ChannelError, RateLimited, StorageError
from kvisa.identity import UserKey

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
SEEN_TTL = (
    26 * 3600.0
)  # Telegram keeps an update for 24 hours; remember it was handled a bit longer
MAX_IN_FLIGHT = 1000  # updates received and not yet handled before polling waits
MAX_TURNS = 64  # turns running against the storage at once (a Redis pool has 100 connections)
DEFAULT_RETRY = Retry()
UPDATES, DUPLICATES = (
    metrics.updates.labels("telegram"),
    metrics.duplicate_updates.labels("telegram"),
)
REPLIES = metrics.replies_sent.labels("telegram")
ONE_ATTEMPT = Retry(attempts=1)


class TelegramChannel(Channel):
    """Telegram through aiogram's Bot (HTTP client, methods and types); the update loop and
    the webhook handler are our own (docs/decisions.md says why)."""

    name = "telegram"

    def __init__(
        self,
        services: Services,
        bot: Bot,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout: int = 30,
        retry: Retry = DEFAULT_RETRY,
    ) -> None:
        if webhook_url and not webhook_secret:
            raise ValueError("a webhook needs a secret")
        self.services = services
        self.engine = services.engine
        self.bot = bot
        self.bot_id = extract_bot_id(bot.token)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret or ""
        self.poll_timeout = poll_timeout
        self.retry = retry
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[UserKey, asyncio.Task[None]] = {}  # each user's latest update task
        self._blocked: set[UserKey] = set()  # 403 seen in this process; cleared when they write
        self._turns = asyncio.Semaphore(MAX_TURNS)
        self._stopping = False

    # --- lifecycle ----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        if self.webhook_url:
            app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self) -> None:
        catalogs = self.services.catalogs
        me = await self.call(GetMe())  # the username, for the WeChat side's link to the bot
        username = me.get("username") if isinstance(me, dict) else getattr(me, "username", None)
        self.engine.links.telegram_bot = str(username or "")
        await self.call(SetMyCommands(commands=convert.bot_commands(catalogs["en"], commands())))
        await self.call(
            SetMyCommands(
                commands=convert.bot_commands(catalogs["zh"], commands()), language_code="zh"
            )
        )
        if self.webhook_url:
            await self.call(
                SetWebhook(
                    url=self.webhook_url,
                    secret_token=self.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
            )
        else:
            await self.call(DeleteWebhook())  # getUpdates is refused while a webhook is set
            self._poller = asyncio.create_task(self.poll(), name="telegram polling")

    async def drain(self) -> None:
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    async def stop(self, grace: float = STOP_GRACE) -> None:
        await self.drain()
        try:
            await asyncio.wait_for(self.idle(), grace)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bot.session.close()

    def in_flight(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until every update received so far has been handled."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # --- receiving ----------------------------------------------------------------------------

    async def poll(self) -> None:
        """Long polling until cancelled; a fault waits and tries again, it never ends the loop."""
        offset: int | None = None
        failures = 0
        while True:
            raise_if_cancelled()  # a cancel that the HTTP client turned into an error
            try:
                if len(self._tasks) >= MAX_IN_FLIGHT:
                    await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                batch = await call(
                    self.bot,
                    GetRawUpdates(
                        offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                    ),
                    ONE_ATTEMPT,  # this loop is the retry
                    request_timeout=self.poll_timeout + 10,
                    wait_on_flood=False,
                )
                failures = 0
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except ChannelError as exc:  # network, 5xx, 409 conflict, 401
                failures += 1
                log.warning("getUpdates failed (%s); retrying", exc)
                await pause(self.retry.backoff(failures))
                continue
            except Exception:  # a bug of ours must not end polling either
                failures += 1
                log.exception("getUpdates failed; retrying")
                await pause(self.retry.backoff(failures))
                continue
            for raw in batch:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if isinstance(update_id, int):
                    offset = max(offset or 0, update_id + 1)
                self.accept(raw)

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /telegram: only Telegram knows the secret; an update is queued and answered 200
        at once (a slow answer would make Telegram send it again)."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.webhook_secret.encode()):
            return web.Response(status=401)
        if self._stopping:
            return web.Response(status=503)  # Telegram keeps it and sends it again later
        try:
            raw = await request.json()
        except ValueError:
            return web.Response(status=400)
        self.accept(raw)
        return web.Response()

    def accept(self, raw: Any) -> None:
        """Queue one raw update behind the same user's earlier ones. Synchronous on purpose:
        nothing may run between receiving updates and queueing them, or their order is lost."""
        try:
            update = Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError:
            log.warning("skipped an update that is not a valid Update")
            return
        user = convert.update_user(update)
        if user is None:
            return
        task = asyncio.create_task(self._after(self._tails.get(user), update))
        self._tails[user] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(user, done))

    def _forget(self, user: UserKey, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(user) is task:
            del self._tails[user]

    async def _after(self, previous: asyncio.Task[None] | None, update: Update) -> None:
        if request_id.get() is None:  # polling; a webhook update keeps its request's id
            request_id.set(f"telegram-{update.update_id}")
        if previous is not None:
            await asyncio.wait([previous])  # its failure is its own; only its end matters here
        try:
            await self.handle(update)
        except Exception:
            log.exception("update %s failed", update.update_id)

    # --- handling -----------------------------------------------------------------------------

    async def handle(self, update: Update) -> None:
        if self.webhook_url and not await self.first_delivery(update):
            log.info("update %s was handled already", update.update_id)
            DUPLICATES.inc()
            return
        UPDATES.inc()
        at = self.services.clock.now()
        if update.callback_query is not None:
            await self.press(update.callback_query, at)
        elif update.message is not None:
            inbound = convert.inbound_from_message(update.message, at)
            self._blocked.discard(inbound.user)
            await self.reply(inbound.user, [], await self.turn(inbound))

    async def first_delivery(self, update: Update) -> bool:
        """False for an update handled before: Telegram sends a webhook update again when it
        did not see our 200 in time, to whichever process answers. (Polling needs no such
        check: asking for the next offset confirms a batch the moment it is queued.)"""
        try:
            return await self.engine.storage.claim(
                f"telegram:{self.bot_id}:update:{update.update_id}", SEEN_TTL
            )
        except StorageError:
            return True  # better a rare duplicate than no answer; the turn itself will say sorry

    async def turn(self, inbound: Inbound) -> list[Outbound]:
        async with self._turns:
            return await self.engine.handle(inbound)

    async def press(self, query: CallbackQuery, at: dt.datetime) -> None:
        """Answer the query at once (the client shows a spinner until then), run the turn, mark
        the question answered, then send the replies."""
        answering = asyncio.create_task(self.answer(query))
        try:
            inbound = convert.inbound_from_callback(query, at)
            if inbound is None:
                return
            self._blocked.discard(inbound.user)
            replies = await self.turn(inbound)
            edit = convert.press_edit(query, convert.judge_press(inbound.prompt, replies))
            await self.reply(inbound.user, [edit] if edit else [], replies)
        finally:
            await answering

    async def answer(self, query: CallbackQuery) -> None:
        try:
            await self.call(AnswerCallbackQuery(callback_query_id=query.id))
        except ChannelError as exc:  # too old to answer: nothing to do about it
            log.info("answerCallbackQuery failed: %s", exc)

    async def reply(
        self, user: UserKey, edits: Iterable[TelegramMethod[Any]], replies: Sequence[Outbound]
    ) -> None:
        """Send a turn's edits and replies in order; stop at the first sign the user blocked us."""
        chat = convert.chat_id(user)
        methods = [
            *edits,
            *(m for outbound in replies for m in convert.send_methods(chat, outbound)),
        ]
        pacer = self.services.pacers.get(self.name)
        for method in methods:
            if pacer is not None:
                pacer.spend()  # counts against the bot's rate: bulk senders make room
            try:
                await self.call(method)
                REPLIES.inc()
            except Blocked:
                await self.blocked(user)
                return
            except ChannelError as exc:
                if isinstance(method, EditMessageText | EditMessageReplyMarkup):
                    # "message is not modified" (a second press) or too old to edit: harmless.
                    log.debug("edit refused: %s", exc)
                else:
                    log.warning("%s to a telegram user failed: %s", method.__api_method__, exc)

    async def blocked(self, user: UserKey) -> None:
        self._blocked.add(user)
        await self.engine.mark_inactive(user)

    # --- speaking first -----------------------------------------------------------------------

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        if user in self._blocked:
            raise Blocked(f"{user} blocked the bot")
        try:
            chat = convert.chat_id(user)
        except ValueError as exc:
            raise ChannelError(str(exc)) from exc
        for outbound in messages:
            for method in convert.send_methods(chat, outbound):
                try:
                    await self.call(method, wait_on_flood=not news)
                except Blocked:
                    await self.blocked(user)
                    raise

    async def post(self, user: UserKey, message: Outbound) -> str | None:
        methods = convert.send_methods(convert.chat_id(user), message)
        result = None
        for method in methods:
            result = await self.call(method)
        if result is None or len(methods) != 1:
            return None
        # LeanSession hands back the raw result (a dict) rather than a pydantic Message.
        message_id = (
            result.get("message_id")
            if isinstance(result, dict)
            else getattr(result, "message_id", None)
        )
        return str(message_id) if message_id is not None else None

    async def edit(self, user: UserKey, reference: str, message: Outbound) -> None:
        edit = EditMessageText(
            chat_id=convert.chat_id(user),
            message_id=int(reference),
            text=message.text,
            reply_markup=convert.keyboard(message) if message.options else None,
        )
        try:
            await self.call(edit)
        except ChannelError as exc:  # "message is not modified": the figures did not move
            log.debug("progress edit refused: %s", exc)

    async def call(self, method: TelegramMethod[Any], *, wait_on_flood: bool = True) -> Any:
        return await call(self.bot, method, self.retry, wait_on_flood=wait_on_flood)
