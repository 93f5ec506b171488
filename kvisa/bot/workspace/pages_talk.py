"""Conversations handed to a person (/human): the queue, claiming one, replying on the
applicant's channel (WeChat only within its 48-hour window), handing it back to the bot; and
the watch that tells the chat admins about one left unclaimed too long."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from functools import partial
from typing import Any

from aiohttp import web

from kvisa.bot.cases.applicants import Applicants
from kvisa.bot.i18n import Catalogs, Text, bilingual
from kvisa.bot.loops import pause, raise_if_cancelled
from kvisa.bot.messages import Outbound
from kvisa.bot.policy.office import OfficeHours
from kvisa.bot.session import Handover, Session, within_reply_window
from kvisa.bot.workspace.app import Route, Workspace, actor
from kvisa.errors import BotError
from kvisa.identity import UserKey

log = logging.getLogger(__name__)
MAX_REPLY = 2000  # characters: one message on either platform
WATCH_EVERY = 60.0  # seconds between looks for conversations waiting too long


def routes(ws: Workspace) -> list[Route]:
    pages = TalkPages(ws)
    return [
        Route("GET", "conversations", pages.queue, "viewer"),
        Route("POST", r"conversations/{ref:[0-9a-f]{20}}/claim", pages.claim, "agent"),
        Route("POST", r"conversations/{ref:[0-9a-f]{20}}/reply", pages.reply, "agent"),
        Route("POST", r"conversations/{ref:[0-9a-f]{20}}/release", pages.release, "agent"),
    ]


def reachable(user: UserKey, data: dict[str, Any] | None, now: dt.datetime) -> bool:
    """Whether a message can be sent now: WeChat only within 48 h of the applicant's last."""
    if user.channel != "wechat":
        return True
    return within_reply_window((data or {}).get("last_seen"), now)


class TalkPages:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    async def queue(self, request: web.Request) -> web.StreamResponse:
        found = await self.ws.applicants.handed_over()
        now = self.ws.now()
        conversations = []
        for ref, doc in sorted(found.docs, key=lambda item: item[1]["handover"]["since"] or ""):
            user = UserKey.parse(doc["key"])
            data = await self.ws.applicants.record(user)
            session = Session.from_json(data) if data else None
            if session is None or session.handover is None:
                continue
            conversations.append(
                (ref, doc, session.handover, reachable(user, data, now), session.lang)
            )
        await self.ws.audit.record(
            actor(request).name, "list-conversations", detail=f"{len(conversations)} open"
        )
        return self.ws.render(request, "conversations.html", conversations=conversations)

    async def _user(self, request: web.Request) -> UserKey:
        user = await self.ws.applicants.find(request.match_info["ref"])
        if user is None:
            raise web.HTTPNotFound()
        return user

    async def claim(self, request: web.Request) -> web.StreamResponse:
        user, staff = await self._user(request), actor(request)

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            handover = Handover.from_json((data or {}).get("handover"))
            if data is None or handover is None:
                return data, False
            handover.status, handover.held_by = "held", staff.name
            return {**data, "handover": handover.to_json()}, True

        if await self.ws.engine.apply(user, change):
            await self.ws.audit.record(staff.name, "claim", request.match_info["ref"])
        raise web.HTTPSeeOther("/agency/conversations")

    async def reply(self, request: web.Request) -> web.StreamResponse:
        user, staff = await self._user(request), actor(request)
        t = self.ws.text(request)
        form = await request.post()
        text = str(form.get("text", "")).strip()[:MAX_REPLY]
        if not text:
            raise web.HTTPSeeOther("/agency/conversations")
        data = await self.ws.applicants.record(user)
        session = Session.from_json(data) if data else None
        if session is None or session.handover is None:
            return self.ws.refuse(request, 409, t("This conversation is back with the bot."))
        if not reachable(user, data, self.ws.now()):
            return self.ws.refuse(
                request,
                409,
                t(
                    "WeChat lets us write to this applicant only within 48 hours of their last "
                    "message. They must write first."
                ),
            )
        agency = self.ws.agency.get(session.lang, "")
        message = Outbound(said_by(t_in(self.ws.catalogs, session.lang), agency) + "\n" + text)
        sender = self.ws.senders.get(user.channel)
        if sender is None:
            return self.ws.refuse(request, 409, t("This applicant's channel is not running."))
        try:
            await sender(user, [message])
        except BotError:
            log.warning("workspace: a reply to a %s applicant was not delivered", user.channel)
            return self.ws.refuse(request, 502, t("The message could not be delivered. Try again."))
        at = self.ws.now().isoformat()

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
            handover = Handover.from_json((data or {}).get("handover"))
            if data is None or handover is None:
                return data, None
            if handover.status == "queued":  # replying claims it
                handover.status, handover.held_by = "held", staff.name
            handover.add("staff", at, text, by=staff.name)
            return {**data, "handover": handover.to_json()}, None

        await self.ws.engine.apply(user, change)
        await self.ws.audit.record(
            staff.name, "reply", request.match_info["ref"], detail=f"{len(text)} characters"
        )
        raise web.HTTPSeeOther("/agency/conversations")

    async def release(self, request: web.Request) -> web.StreamResponse:
        """Hand the conversation back to the bot, and tell the applicant."""
        user, staff = await self._user(request), actor(request)

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
            if data is None or not data.get("handover"):
                return data, None
            return {**data, "handover": None}, str(data.get("lang", "en"))

        lang = await self.ws.engine.apply(user, change)
        if lang is not None:
            await self.ws.audit.record(staff.name, "hand-back", request.match_info["ref"])
            data = await self.ws.applicants.record(user)
            sender = self.ws.senders.get(user.channel)
            if sender is not None and reachable(user, data, self.ws.now()):
                t = t_in(self.ws.catalogs, lang)
                with contextlib.suppress(BotError):
                    await sender(
                        user,
                        [
                            Outbound(
                                t("You are back with the bot. Send /help to see what I can do.")
                            )
                        ],
                    )
        raise web.HTTPSeeOther("/agency/conversations")


def t_in(catalogs: Catalogs, lang: str) -> Text:
    return catalogs["zh" if lang == "zh" else "en"]


def alert_text(minutes: int, where: str, t: Text) -> str:
    return t(
        "A conversation handed to a person has waited {minutes} minutes (office hours) "
        "without anyone claiming it: {where}",
        minutes=minutes,
        where=where,
    )


def said_by(t: Text, agency: str) -> str:
    """The first line of a staff member's message: who writes (the agency, not a name)."""
    return t("{agency}:", agency=agency)


class UnclaimedWatch:
    """Every minute: a conversation queued longer than the alert time (counted in office
    hours) is reported once to the chat admins (KVISA_ADMINS), on their channels."""

    def __init__(self, ws: Workspace, hours: OfficeHours, applicants: Applicants) -> None:
        self.ws, self.hours, self.applicants = ws, hours, applicants
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="workspace-unclaimed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            raise_if_cancelled()
            try:
                await self.look()
            except Exception:  # tried again in a minute
                raise_if_cancelled()
                log.exception("workspace: could not look for unclaimed conversations")
            await pause(WATCH_EVERY)

    async def look(self) -> int:
        """Tell the admins about each conversation waiting too long; how many were told."""
        now, told = self.ws.now(), 0
        calendar = self.ws.flows.calendar
        found = await self.applicants.handed_over()
        for ref, doc in found.docs:
            handover = doc.get("handover") or {}
            if handover.get("status") != "queued" or not handover.get("since"):
                continue
            since = dt.datetime.fromisoformat(handover["since"])
            waited = self.hours.working_minutes_between(calendar, since, now)
            if waited < self.ws.alert_minutes:
                continue
            if not await self.ws.storage.claim(f"ws:alerted:{ref}:{handover['since']}", 7 * 86400):
                continue
            where = (
                f"{self.ws.public_url}/agency/conversations" if self.ws.public_url else "/agency/"
            )
            for admin in sorted(self.ws.admins):
                user = UserKey.parse(admin)
                sender = self.ws.senders.get(user.channel)
                if sender is None:
                    continue
                text = bilingual(self.ws.catalogs, "en", partial(alert_text, int(waited), where))
                with contextlib.suppress(BotError):
                    await sender(user, [Outbound(text)])
            await self.ws.audit.record("bot", "unclaimed-alert", ref, detail=f"{int(waited)} min")
            told += 1
        return told
