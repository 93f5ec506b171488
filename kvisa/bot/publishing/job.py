"""The change job of a publish: re-check every applicant against the new version and queue
one personal notice for each one affected, delivered by the broadcast runner.

Durable in two halves. The job is what differs between the current version and the last one
whose notices were queued (`cv:rechecked`): whoever takes the claim `cv:job-lock` runs it (the
publishing command at once, else `kvisa serve`, which looks every few seconds), and
`cv:rechecked` moves on only once its notices are queued. Until then nothing is sent, so a job
cut short is simply run again from the start; two publishes before a run make one job, from
the version applicants last heard about to the current one. The notices are then a broadcast
of kind notice with the id `cv<version>`, created once (a second run finds it): the broadcast
runner delivers each at most once, resumes after a restart, paces them with the replies, and
keeps WeChat's 48-hour window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import Packed, unpack
from kvisa.bot.i18n import Catalogs, Lang
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.publishing.notices import cited_sources, notice
from kvisa.bot.publishing.recheck import Scope, applicant_records, compare
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage import Storage

log = logging.getLogger(__name__)

# The last version whose applicants were re-checked and their notices queued.
RECHECKED = "cv:rechecked"
LOCK = "cv:job-lock"
LOCK_TTL = 300.0  # seconds: far longer than re-checking 100,000 applicants takes
POLL = 5.0  # seconds between kvisa serve's looks for a job left undone


def broadcast_id(version: int) -> str:
    return f"cv{version}"


def stamp(version: int) -> Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, None]]:
    def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
        if data is None or not data.get("finished"):
            return data, None
        return {**data, "content_version": version}, None

    return change


async def queue_notices(
    storage: Storage,
    catalogs: Catalogs,
    versions: tuple[tuple[Packed, Flows], tuple[Packed, Flows]],
    to: int,
    today: dt.date,
    created_at: str,
) -> Broadcast:
    """Re-check every applicant; queue the notices of those affected (once per version)."""
    store = BroadcastStore(storage)
    existing = await store.get(broadcast_id(to))
    if existing is not None:  # queued by an earlier run that stopped before forgetting the job
        await store.add_to_index(existing.id)
        return existing
    (old_packed, old), (new_packed, new) = versions
    cited = cited_sources(old_packed, new_packed)
    scope = Scope.of(old, new)
    recipients: list[UserKey] = []
    messages: dict[str, str] = {}
    async for key, data in applicant_records(storage):
        delta = compare(key, data, old, new, today, scope)
        if delta is None:
            continue
        lang: Lang = "zh" if data.get("lang") == "zh" else "en"
        messages[str(key)] = notice(catalogs, lang, delta, old, new, cited, to)
        recipients.append(key)
        await storage.update(key, stamp(to))
    return await store.create(
        en=f"Content version {to}: personal notices of what changed",
        zh=f"内容版本 {to}:变更个人通知",
        segment=f"content version {to}",
        author="content",
        created_at=created_at,
        recipients=recipients,
        broadcast_id=broadcast_id(to),
        messages=messages,
    )


async def run_pending(
    storage: Storage,
    catalogs: Catalogs,
    now: dt.datetime,
) -> Broadcast | None:
    """Re-check from the last version whose notices are queued to the current one, if they
    differ and no one else is doing it. The first version ever published is the baseline:
    there is nothing before it to compare with, so nobody is told about it."""
    current = await storage.current_content_id()
    raw = await storage.get_value(RECHECKED)
    done = int(raw) if raw is not None else None
    if current is None or current == done or not await storage.claim(LOCK, LOCK_TTL):
        return None
    try:
        if done is None:  # never run: from the first version, the baseline
            versions = await storage.content_versions()
            done = versions[0].id if versions else current
        if done == current:
            await storage.set_value(RECHECKED, str(current).encode())
            return None
        old = await stored(storage, done)
        new = await stored(storage, current)
        today = now.astimezone(SHANGHAI).date()
        broadcast = await queue_notices(
            storage, catalogs, (old, new), current, today, now.isoformat()
        )
        await storage.set_value(RECHECKED, str(current).encode())
        return broadcast
    finally:
        await storage.release(LOCK)


async def stored(storage: Storage, version: int) -> tuple[Packed, Flows]:
    found = await storage.content_version(version)
    if found is None:
        raise BotError(f"content version {version} is missing")
    packed = Packed.from_bytes(found[1])
    return packed, unpack(packed, version)


class ChangeJobs:
    """kvisa serve's side: runs a change job the publishing command left undone."""

    def __init__(
        self,
        storage: Storage,
        catalogs: Catalogs,
        now: Callable[[], dt.datetime],
        on_queued: Callable[[Broadcast], None] | None = None,
    ) -> None:
        self.storage, self.catalogs, self.now = storage, catalogs, now
        self.on_queued = on_queued
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="content-change-jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def once(self) -> Broadcast | None:
        broadcast = await run_pending(self.storage, self.catalogs, self.now())
        if broadcast is not None and self.on_queued is not None:
            self.on_queued(broadcast)
        return broadcast

    async def _loop(self) -> None:
        while True:
            try:
                await self.once()
            except Exception:  # the job stays stored: tried again at the next look
                log.exception("the content change job failed; it is tried again")
            await asyncio.sleep(POLL)
