"""The retention pass on both backends: who is told, who is erased (with what they hold),
who is kept; a dry run changes nothing; the daily pass runs once, on the leader."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.erasure import OwnedValues
from kvisa.bot.holdings import holdings
from kvisa.bot.messages import Outbound
from kvisa.bot.retention.purge import Purge
from kvisa.bot.retention.rules import Due, Rules
from kvisa.bot.retention.service import RetentionService
from kvisa.errors import Blocked
from kvisa.identity import UserKey
from tests.privacy.conftest import Backend
from tests.support import Chat, engine_on

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
RULES = Rules(months=18, notice=dt.timedelta(days=30))


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).isoformat()


CONSENT = "2024-01-01T00:00:00+00:00"
ACTIVE = UserKey("telegram", "1")
SILENT = UserKey("telegram", "2")
SILENT_ZH = UserKey("wechat", "oSilent")
BLOCKED = UserKey("telegram", "3")
TOLD_LONG_AGO = UserKey("telegram", "4")
TOLD_RECENTLY = UserKey("telegram", "5")
NEVER_CONSENTED = UserKey("wechat", "oLegacy")
JUST_ASKED = UserKey("wechat", "oToday")

STORED: dict[UserKey, dict[str, Any]] = {
    ACTIVE: {"consent_at": CONSENT, "last_seen": ago(days=30), "lang": "en"},
    SILENT: {"consent_at": CONSENT, "last_seen": ago(days=600), "lang": "en"},
    SILENT_ZH: {"consent_at": CONSENT, "last_seen": ago(days=600), "lang": "zh"},
    BLOCKED: {"consent_at": CONSENT, "last_seen": ago(days=600), "lang": "en"},
    TOLD_LONG_AGO: {
        "consent_at": CONSENT,
        "last_seen": ago(days=640),
        "retention_notice_at": ago(days=31),
    },
    TOLD_RECENTLY: {
        "consent_at": CONSENT,
        "last_seen": ago(days=600),
        "retention_notice_at": ago(days=3),
    },
    # From before records of people who had not consented expired on their own.
    NEVER_CONSENTED: {"awaiting": {"kind": "consent"}, "last_seen": ago(days=200)},
    JUST_ASKED: {"awaiting": {"kind": "consent"}, "last_seen": ago(hours=2)},
}


@dataclass
class Recorder:
    sent: list[tuple[UserKey, str]] = field(default_factory=list)
    blocked: set[UserKey] = field(default_factory=set)

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        assert not news  # a notice about the user's own data is a service message
        if user in self.blocked:
            raise Blocked(f"{user} blocked the bot")
        self.sent += [(user, message.text) for message in messages]


async def stored_engine(backend: Backend, data_dir: Path) -> Engine:
    engine = engine_on(backend.storage)
    for holding in holdings(backend.storage, data_dir):
        engine.erasure.register(holding)
    for user, data in STORED.items():
        await backend.storage.put(user, data, expected_version=0)
    owned = OwnedValues(backend.storage)
    await owned.set(TOLD_LONG_AGO, "wechat:file:told", b"ics", ttl=600)
    return engine


async def test_a_dry_run_counts_and_changes_nothing(backend: Backend, tmp_path: Path) -> None:
    engine = await stored_engine(backend, tmp_path)
    before = backend.listing()

    tally = await Purge(engine, RULES, FixedClock(NOW), {"telegram": Recorder().send}).run(
        dry_run=True
    )

    assert tally.counts == {
        Due.KEEP: 2,
        Due.TELL: 3,
        Due.WAIT: 1,
        Due.ERASE: 1,
        Due.UNCONSENTED: 1,
    }
    assert (tally.told, tally.erased) == (0, 0)
    assert backend.listing() == before


async def test_the_silent_are_told_once_and_the_told_erased_with_what_they_hold(
    backend: Backend, tmp_path: Path
) -> None:
    engine = await stored_engine(backend, tmp_path)
    recorder = Recorder(blocked={BLOCKED})
    senders = {"telegram": recorder.send, "wechat": recorder.send}
    purge = Purge(engine, RULES, FixedClock(NOW), senders)

    tally = await purge.run()

    assert sorted(user for user, _ in recorder.sent) == sorted([SILENT, SILENT_ZH])
    texts = dict(recorder.sent)
    assert "18 months" in texts[SILENT] and "December 25, 2026" in texts[SILENT]
    assert "18 个月" in texts[SILENT_ZH] and "2026年12月25日" in texts[SILENT_ZH]
    assert (tally.told, tally.unreachable, tally.erased, tally.failed) == (2, 1, 2, 0)
    remaining = {key async for key in backend.storage.users()}
    assert remaining == set(STORED) - {TOLD_LONG_AGO, NEVER_CONSENTED}
    assert [k for k in backend.listing() if "telegram:4" in k or "file:told" in k] == []
    for user in (SILENT, SILENT_ZH, BLOCKED):  # told, or not reachable: the days run all the same
        record = await backend.storage.get(user)
        assert record is not None and record.data["retention_notice_at"] == NOW.isoformat()

    again = await purge.run()  # the same day: nobody is told twice

    assert len(recorder.sent) == 2 and again.told == 0 and again.erased == 0


async def test_writing_after_the_notice_keeps_the_applicant(
    backend: Backend, tmp_path: Path
) -> None:
    engine = await stored_engine(backend, tmp_path)
    await Purge(engine, RULES, FixedClock(NOW), {"telegram": Recorder().send}).run()
    chat = Chat(engine, user=SILENT, at=NOW + dt.timedelta(days=2))
    await chat.send("/help")

    later = FixedClock(NOW + dt.timedelta(days=40))
    tally = await Purge(engine, RULES, later, {"telegram": Recorder().send}).run(dry_run=True)

    state = await chat.state()
    assert state is not None and state["retention_notice_at"] is None
    assert tally.counts[Due.ERASE] == 3  # SILENT_ZH, BLOCKED and TOLD_RECENTLY: still silent
    assert tally.counts[Due.KEEP] == 2  # the active one, and SILENT who wrote


async def test_erasing_skips_a_user_who_wrote_since_the_pass_read_them(
    backend: Backend, tmp_path: Path
) -> None:
    engine = await stored_engine(backend, tmp_path)
    record = await backend.storage.get(TOLD_LONG_AGO)
    assert record is not None
    wrote = {**record.data, "last_seen": NOW.isoformat(), "retention_notice_at": None}
    await backend.storage.put(TOLD_LONG_AGO, wrote, expected_version=record.version)

    erased = await engine.erase(TOLD_LONG_AGO, when=lambda data: data["last_seen"] < ago(days=1))

    assert not erased
    assert await backend.storage.get(TOLD_LONG_AGO) is not None
    assert await OwnedValues(backend.storage).names(TOLD_LONG_AGO) == ["wechat:file:told"]


async def test_serve_runs_the_pass_once_a_day_on_the_leader(
    backend: Backend, tmp_path: Path
) -> None:
    engine = await stored_engine(backend, tmp_path)
    recorder = Recorder()
    services = [
        RetentionService(
            engine,
            RULES,
            FixedClock(NOW),
            {"telegram": recorder.send, "wechat": recorder.send},
            redis_url=backend.redis_url,
            prefix=backend.storage.namespace,
        )
        for _ in range(2)
    ]
    try:
        for service in services:
            await service.start()
        async with asyncio.timeout(15):
            while not any(s.passes for s in services):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # time for a second pass, were one to start
    finally:
        for service in services:
            await service.stop()

    # Two processes: one is not the leader (Redis), or finds the day's pass claimed (SQLite).
    assert sum(len(s.passes) for s in services) == 1
    assert sorted(user for user, _ in recorder.sent) == sorted([SILENT, SILENT_ZH, BLOCKED])
