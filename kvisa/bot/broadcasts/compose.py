"""Composing a broadcast, the same way from the chat, the CLI and the HTTP API: check both
texts, find the audience, queue it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kvisa.bot.applicants import first_channel, reachable_by_message
from kvisa.bot.broadcasts import texts
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.clock import Clock
from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Catalogs
from kvisa.errors import InputError
from kvisa.identity import UserKey


@dataclass(frozen=True)
class Audience:
    recipients: tuple[UserKey, ...]
    per_channel: dict[str, int]
    # Applicants reachable on no channel by message now (WeChat only, outside its window).
    outside_window: int

    def to_json(self) -> dict[str, object]:
        return {
            "recipients": len(self.recipients),
            "per_channel": self.per_channel,
            "wechat_outside_window": self.outside_window,
        }


class Composer:
    def __init__(
        self,
        flows: Flows,
        catalogs: Catalogs,
        store: BroadcastStore,
        clock: Clock,
        on_created: Callable[[Broadcast], None] | None = None,
    ) -> None:
        self.flows, self.catalogs, self.store, self.clock = flows, catalogs, store, clock
        self.on_created = on_created

    def check_texts(self, en: str | None, zh: str | None) -> tuple[str, str]:
        """Both languages, each within the limit; InputError names the one at fault."""
        t = self.catalogs["en"]
        for lang, text in (("en", en), ("zh", zh)):
            if not isinstance(text, str) or not text.strip():
                raise InputError(lang, "the text in both English and Chinese", text)
            problem = texts.text_problem(t, lang, text)  # type: ignore[arg-type]
            if problem:
                raise InputError(lang, problem, text[:40])
        return en.strip(), zh.strip()  # type: ignore[union-attr]

    async def audience(self, segment: Segment) -> Audience:
        """Everyone the segment selects now (one pass over the stored users)."""
        now = self.clock.now()
        today = now.date()
        recipients: list[UserKey] = []
        channels: Counter[str] = Counter()
        outside = 0
        storage = self.store.storage
        async for user in storage.users():
            record = await storage.get(user)
            data = record.data if record else None
            if not segment.matches(self.flows, user, data, today):
                continue
            assert data is not None
            recipients.append(user)
            # Counted once per applicant, under the channel the update goes out on first.
            channels[first_channel(user, data, now)] += 1
            if not reachable_by_message(user, data, now):
                outside += 1
        recipients.sort(key=str)
        return Audience(tuple(recipients), dict(channels), outside)

    async def create(
        self, en: str | None, zh: str | None, segment: Segment, author: str
    ) -> Broadcast:
        en_text, zh_text = self.check_texts(en, zh)
        audience = await self.audience(segment)
        broadcast = await self.store.create(
            en=en_text,
            zh=zh_text,
            segment=str(segment),
            author=author,
            created_at=self.clock.now().isoformat(),
            recipients=audience.recipients,
        )
        if self.on_created is not None:
            self.on_created(broadcast)
        return broadcast
