"""The WeChat Official Account channel: /wechat callbacks, replies, and pushes.

A reply to a user's message goes back in the HTTP answer itself (the passive reply) when the
engine answers within REPLY_DEADLINE, well inside WeChat's 5 seconds; a passive reply holds
one message, so the turn's texts are joined into as few messages as fit and whatever is left
(a second text, a picture) follows as customer-service messages. A slow turn is answered
`success` and delivered entirely by customer-service messages when it is done.

Pushes (`send`) use customer-service messages within 48 hours of the user's last message and
the reminder template after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.messages import BaseMessage  # type: ignore[import-untyped]

from kvisa import metrics
from kvisa.bot import applicants
from kvisa.bot.channels.base import STOP_GRACE, Channel, Services
from kvisa.bot.channels.wechat import convert, wire
from kvisa.bot.channels.wechat.api import OutsideWindow, WeChatApi
from kvisa.bot.channels.wechat.convert import Part, Picture, Unreadable, Unsubscribed
from kvisa.bot.channels.wechat.files import FileLinks
from kvisa.bot.engine.engine import apology
from kvisa.bot.i18n import N_, Text
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.session import Session, within_reply_window
from kvisa.errors import Blocked, BotError, ChannelError, Undeliverable
from kvisa.identity import UserKey
from kvisa.storage.base import AlreadyClaimed, Once

log = logging.getLogger(__name__)

REPLY_DEADLINE = 4.0  # seconds from the request's arrival; WeChat gives up (and retries) at 5
MAX_BODY = 64 * 1024
RETRY_MEMORY = 3600.0  # how long a MsgId is remembered; WeChat retries within about 15 seconds
REPLY_MEMORY = 60.0  # how long a passive reply is kept to answer a retry of its message
# A signed timestamp and nonce pass check_fresh for at most 2 x REPLAY_WINDOW from their first
# use, so they are remembered that long: a copy of the request is a replay until then.
NONCE_MEMORY = 2.0 * wire.REPLAY_WINDOW
# A passive reply ready this long after its request may reach WeChat after its 5 seconds, so
# it is kept for the retry; a quicker one (nearly all) is not, which saves a storage write.
REMEMBER_AFTER = 1.0
UPDATES, DUPLICATES = metrics.updates.labels("wechat"), metrics.duplicate_updates.labels("wechat")
REPLIES = metrics.replies_sent.labels("wechat")
PLEASE_TYPE = N_(
    "I can only read typed text. Please type your answer, or send the number of an option."
)


class BodyTooLarge(Exception):
    pass


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


async def done_by(task: asyncio.Future[Any], deadline: float) -> bool:
    """Whether `task` is done by `deadline` (the loop's time); it goes on either way. What
    asyncio.wait(timeout=...) answers, without its sets, copies and callbacks to undo: every
    message waits like this, and asyncio.wait cost about a tenth of a message's CPU time."""
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_at(deadline, wake)
    task.add_done_callback(wake)
    try:
        await woken
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


class WeChatChannel(Channel):
    name = "wechat"

    def __init__(
        self,
        services: Services,
        api: WeChatApi,
        *,
        reply_deadline: float = REPLY_DEADLINE,
        remember_after: float = REMEMBER_AFTER,
    ) -> None:
        settings = services.settings
        assert settings.wechat_token and settings.wechat_app_id and settings.wechat_app_secret
        assert settings.public_base_url
        self.services = services
        self.engine = services.engine
        self.storage = services.engine.storage
        self.clock = services.clock
        self.api = api
        self.token = settings.wechat_token.get_secret_value()
        self.app_id = settings.wechat_app_id
        self.template_id = settings.wechat_template_reminder
        self.crypto = (
            WeChatCrypto(
                self.token, settings.wechat_encoding_aes_key.get_secret_value(), self.app_id
            )
            if settings.wechat_encoding_aes_key
            else None
        )
        self.files = FileLinks(
            self.storage,
            settings.wechat_app_secret.get_secret_value(),
            settings.public_base_url,
            self.clock,
        )
        # /link on Telegram shows the account's QR code carrying the code (engine/links.py).
        self.engine.links.qr = api.link_qr
        self.reply_deadline = reply_deadline
        self.remember_after = remember_after
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_delivery: dict[str, asyncio.Task[None]] = {}  # per user, to keep their order

    # --- lifecycle ---------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/wechat", self.verify)
        app.router.add_post("/wechat", self.receive)
        app.router.add_get("/wechat/files/{file_id}", self.files.serve)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(self.api.close)

    def in_flight(self) -> int:
        return len(self._tasks)

    def _spawn(self, openid: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run a delivery in the background, after the user's earlier deliveries."""
        earlier = self._last_delivery.get(openid)
        task = asyncio.create_task(self._after(earlier, work))
        self._tasks.add(task)
        self._last_delivery[openid] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._last_delivery.get(openid) is finished:
                del self._last_delivery[openid]

        task.add_done_callback(done)

    @staticmethod
    async def _after(
        earlier: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]
    ) -> None:
        if earlier is not None:
            await asyncio.wait({earlier})  # its outcome is its own business
        await work()

    # --- callbacks ---------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """GET /wechat: WeChat checks the URL by asking us to echo `echostr`."""
        try:
            wire.check_signature(self.token, request.query)
        except wire.Forged:
            return web.Response(status=403)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.StreamResponse:
        """POST /wechat: one message or event from a user."""
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        try:
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise BodyTooLarge
            wire.check_signature(self.token, request.query)
            wire.check_fresh(request.query, self.clock.now().timestamp())
            body = await read_body(request, MAX_BODY)
            message = wire.parse(wire.open_body(body, request.query, self.token, self.crypto))
        except BodyTooLarge:
            return web.Response(status=413)
        except wire.Rejected as exc:
            # Why, in our own words: never the body, which may hold what a user wrote.
            log.warning("refused a WeChat callback (%d): %s", exc.status, exc)
            return web.Response(status=exc.status)
        refused = await self._refuse_replay(request)
        if refused is not None:
            return refused

        UPDATES.inc()
        retry = f"wechat:{self.app_id}:{convert.retry_key(message)}"
        event = convert.event_of(message, self.clock.now())
        if isinstance(event, Inbound):
            return await self._converse(request, message, retry, arrived, event)
        if not await self.storage.claim(f"{retry}:seen", ttl=RETRY_MEMORY):
            return await self._answer_retry(request, retry)
        if isinstance(event, Unsubscribed):
            await self.engine.mark_inactive(event.user)
            return self._answer(request, wire.SUCCESS)
        if isinstance(event, Unreadable):
            t = await self._text_for(event.user)
            return await self._reply(request, message, retry, arrived, [t(PLEASE_TYPE)])
        return self._answer(request, wire.SUCCESS)  # nothing to do (e.g. a VIEW event)

    async def _refuse_replay(self, request: web.Request) -> web.Response | None:
        """The answer to a copy of a request received before; None for a new one.

        Plain mode only: there the body is signed by nothing, so a copied query string could
        carry any message, and each signed timestamp and nonce is claimed in the storage (the
        first caller wins, across processes) for as long as check_fresh could pass it. In safe
        mode msg_signature covers the body, so a copy within the window is the very message
        again, which the claims by MsgId (or sender, time and event), kept an hour, already
        refuse; a claim of the nonce would cost every message one more storage round trip."""
        if self.crypto is not None:
            return None
        key = f"wechat:{self.app_id}:nonce:{wire.replay_key(request.query)}"
        try:
            first_use = await self.storage.claim(key, ttl=NONCE_MEMORY)
        except BotError as exc:  # the storage did not answer: WeChat tries again
            log.warning("could not check a WeChat callback for a replay: %s", type(exc).__name__)
            return web.Response(status=503)
        if first_use:
            return None
        # Nothing is done. "success", not 403: WeChat's own retries come with a new nonce, and
        # this copy asks for nothing to be retried or shown to anyone.
        log.warning("refused a WeChat callback: its timestamp and nonce were used before")
        return self._answer(request, wire.SUCCESS)

    async def _converse(
        self,
        request: web.Request,
        message: BaseMessage,
        retry: str,
        arrived: float,
        inbound: Inbound,
    ) -> web.StreamResponse:
        """A turn of the conversation, answered passively if it is done in time. The message
        is marked as seen in the same storage step that commits the turn (one round trip
        fewer than a claim of its own); a retry is recognised there, across processes too."""
        turn = asyncio.create_task(self._turn(inbound, Once(f"{retry}:seen", RETRY_MEMORY)))
        if not await done_by(turn, arrived + self.reply_deadline):
            self._spawn(inbound.user.id, lambda: self._deliver_when_done(inbound.user, turn))
            return self._answer(request, wire.SUCCESS)
        outbounds = turn.result()
        if outbounds is None:
            return await self._answer_retry(request, retry)
        parts = await self._parts(inbound.user, outbounds)
        return await self._reply(request, message, retry, arrived, parts)

    async def _answer_retry(self, request: web.Request, retry: str) -> web.Response:
        """WeChat asks again because our answer did not reach it in time. A reply that was
        slow to come was remembered: give it again. Otherwise "success": a quick reply did
        reach WeChat, and a slow turn still under way delivers on its own."""
        DUPLICATES.inc()
        earlier = await self.storage.get_value(f"{retry}:reply")
        return self._answer(request, earlier.decode() if earlier else wire.SUCCESS)

    async def _reply(
        self,
        request: web.Request,
        message: BaseMessage,
        retry: str,
        arrived: float,
        parts: Sequence[Part],
    ) -> web.StreamResponse:
        """The first text as the passive reply; the rest by customer-service messages."""
        first, rest = (parts[0], list(parts[1:])) if parts else (None, [])
        reply = wire.SUCCESS
        if isinstance(first, str):
            reply = wire.text_reply(message, first, self._timestamp())
            if asyncio.get_running_loop().time() - arrived >= self.remember_after:
                await self.storage.set_value(f"{retry}:reply", reply.encode(), ttl=REPLY_MEMORY)
        elif first is not None:
            rest.insert(0, first)
        response = self._answer(request, reply)
        if reply != wire.SUCCESS:
            REPLIES.inc()
        if rest:
            # Hand WeChat the passive reply before the follow-ups start, so they come after it.
            await response.prepare(request)
            await response.write_eof()
            self._spawn(message.source, lambda: self._deliver(message.source, rest))
        return response

    def _answer(self, request: web.Request, reply: str) -> web.Response:
        sealed = wire.seal(reply, request.query, self.crypto, self._timestamp())
        return web.Response(
            text=sealed, content_type="application/xml" if sealed != wire.SUCCESS else "text/plain"
        )

    def _timestamp(self) -> int:
        return int(self.clock.now().timestamp())

    # --- turns and delivery ------------------------------------------------------------------

    async def _turn(self, inbound: Inbound, once: Once) -> list[Outbound] | None:
        """The turn's replies; None when the message had been handled already (a retry)."""
        try:
            return await self.engine.handle(inbound, once=once)
        except AlreadyClaimed:
            return None
        except (
            Exception
        ):  # the engine answers its own errors; anything else is a bug, still answered
            log.exception("a WeChat turn failed")
            t = await self._text_for(inbound.user)
            return [Outbound(apology(t))]

    async def _text_for(self, user: UserKey) -> Text:
        """The catalog of the user's language, as stored by the engine."""
        session = await self._session(user)
        return self.services.catalogs[session.lang if session else "en"]

    async def _session(self, user: UserKey) -> Session | None:
        _, data = await self.engine.links.locate(user)
        return Session.from_json(data) if data else None

    async def _parts(self, user: UserKey, outbounds: Sequence[Outbound]) -> list[Part]:
        """The WeChat messages for `outbounds`, with files published behind links (listed as
        the user's, so that erasing them removes the files)."""
        links: dict[int, str] = {}
        for outbound in outbounds:
            for attachment in outbound.attachments:
                if not attachment.content_type.startswith("image/"):
                    link = await self.files.publish(user, attachment)
                    links[id(attachment)] = f"{attachment.caption or attachment.filename}\n{link}"
        return convert.parts_of(outbounds, lambda attachment: links[id(attachment)])

    async def _deliver_when_done(
        self, user: UserKey, turn: asyncio.Task[list[Outbound] | None]
    ) -> None:
        outbounds = await turn
        if outbounds is None:  # a retry of a message handled elsewhere: that one answers
            return
        try:
            parts = await self._parts(user, outbounds)
        except BotError:
            log.exception("could not prepare a late WeChat reply")
            return
        await self._deliver(user.id, parts)

    async def _deliver(self, openid: str, parts: Sequence[Part]) -> None:
        """Follow-ups of a reply: the user just wrote, so customer-service messages may go."""
        try:
            await self._send_parts(openid, parts)
            REPLIES.inc(len(parts))
        except BotError as exc:  # nobody to tell but the log
            log.warning("a WeChat follow-up message was not delivered: %s", exc)

    async def _send_parts(self, openid: str, parts: Sequence[Part]) -> None:
        for part in parts:
            if isinstance(part, Picture):
                await self.api.send_image(openid, await self.api.upload_image(part.attachment))
            else:
                await self.api.send_text(openid, part)

    # --- pushes ------------------------------------------------------------------------------

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        """Customer-service messages inside the 48-hour window, the reminder template outside.
        A broadcast (`news`) never goes as a template: WeChat reserves templates for service
        notices, so outside the window it is Undeliverable."""
        key, data = await self.engine.links.locate(user)  # the applicant, maybe linked
        if data is None:  # never agreed to anything, or erased: nothing may be pushed
            raise ChannelError(f"{user} has no conversation with the bot")
        if str(user) in applicants.blocked(key, data):
            raise Blocked(f"{user} unfollowed the account")
        # The window is this account's: a message on the applicant's Telegram opens nothing.
        if within_reply_window(applicants.seen(data, user), self.clock.now()):
            parts = await self._parts(user, messages)
            try:
                await self._send_parts(user.id, parts[:1])
            except OutsideWindow:
                pass  # WeChat counts differently (its clock, or the quota): try the template
            else:
                await self._send_parts(user.id, parts[1:])
                return
        if news:
            raise Undeliverable(f"{user} is outside WeChat's customer-service window")
        if not self.template_id:  # Undeliverable: a linked applicant's other channel may take it
            raise Undeliverable(
                f"{user} is outside WeChat's customer-service window and "
                "WECHAT_TEMPLATE_REMINDER is not set"
            )
        await self.api.send_template(user.id, self.template_id, convert.template_data(messages))
