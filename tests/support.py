"""Test helpers shared across the suite: the real flows and catalogs, and a scripted chat."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kvisa.bot.content import load_content
from kvisa.bot.content.model import Flows
from kvisa.bot.engine.engine import Engine
from kvisa.bot.i18n import Catalogs
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

NOON_SHANGHAI = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)


def free_port() -> int:
    """A local TCP port that was free a moment ago (for a server under test or benchmark)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@cache
def content() -> tuple[Flows, Catalogs]:
    """The shipped flows and compiled catalogs, validated as the bot validates them."""
    return load_content(Settings.from_env({}))


@dataclass
class Chat:
    """A scripted conversation with one user, like a person typing on the console."""

    engine: Engine
    user: UserKey = UserKey("console", "alice")
    lang_hint: str | None = None
    at: dt.datetime = NOON_SHANGHAI
    replies: list[Outbound] = field(default_factory=list)

    async def send(self, text: str) -> list[Outbound]:
        self.replies = await self.engine.handle(
            Inbound.from_text(self.user, text, self.at, self.lang_hint)
        )
        assert self.replies, f"no reply to {text!r}"
        return self.replies

    async def choose(self, option_id: str) -> list[Outbound]:
        """Press a button of the last prompt."""
        prompt = self.last_prompt
        assert option_id in [o.id for o in prompt.options], (option_id, prompt.options)
        self.replies = await self.engine.handle(
            Inbound(
                self.user, self.at, option=option_id, prompt=prompt.prompt, lang_hint=self.lang_hint
            )
        )
        assert self.replies
        return self.replies

    @property
    def last_prompt(self) -> Outbound:
        return next(o for o in reversed(self.replies) if o.options)

    @property
    def option_ids(self) -> list[str]:
        return [o.id for o in self.last_prompt.options]

    @property
    def text(self) -> str:
        return "\n".join(o.text for o in self.replies)

    async def state(self) -> dict[str, Any] | None:
        record = await self.engine.storage.get(self.user)
        return record.data if record else None

    async def awaiting(self) -> dict[str, Any] | None:
        state = await self.state()
        return state["awaiting"] if state else None

    async def interview(self, **answers: str) -> None:
        """Consent, then answer each question as it comes (by option id or typed text)."""
        await self.send("/start")
        await self.choose("agree")
        while (awaiting := await self.awaiting()) and awaiting["kind"] == "question":
            qid = awaiting["id"]
            assert qid in answers, f"unexpected question {qid}; give an answer for it"
            value = answers[qid]
            if value in self.option_ids:
                await self.choose(value)
            else:
                await self.send(value)
            assert (await self.awaiting()) != awaiting or qid != (await self.awaiting() or {}).get(
                "id"
            ), f"{qid}={value!r} was refused: {self.text}"


ACADEMIC = dict(
    degree="master",
    degree_field_stem="yes",
    degree_from_recognized="yes",
    stem_work_at_recognized="no",
    birth_date="1998-04-27",
    residence_country="Germany",
    passport_expiry="2031-01-01",
    planned_application="_today",
    plan="research",
    park="lingang",
)


def engine_on(storage: Storage) -> Engine:
    flows, catalogs = content()
    return Engine(flows, catalogs, storage)
