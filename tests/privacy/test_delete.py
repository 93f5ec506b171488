"""/delete erases everything kept about the person, on both backends: the storage keys and the
files are listed before and after."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

from kvisa.bot.broadcasts.admin import draft_name
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.channels.console import ConsoleChannel
from kvisa.bot.channels.wechat.files import FileLinks
from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.holdings import attachments_dir, holdings
from kvisa.bot.messages import Attachment
from kvisa.bot.reminders import jobs
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.identity import UserKey
from tests.privacy.conftest import Backend
from tests.support import ACADEMIC, NOON_SHANGHAI, Chat, engine_on

ALICE, BOB = UserKey("console", "alice"), UserKey("console", "bob")
FAST = ReminderSettings(lease=2.0, retry=1.0, leader_ttl=1.0, drain_interval=0.05)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def applicant(engine: Engine, user: UserKey, data_dir: Path) -> None:
    """Finished interview, the entry reported (so reminders are planned), the timeline
    picture and the calendar file saved by the console."""
    chat = Chat(engine, user=user)
    await chat.interview(**ACADEMIC)
    await chat.send("/timeline")
    await chat.choose("entered")
    await chat.send("2026-11-20")
    console = ConsoleChannel(
        engine,
        FixedClock(NOON_SHANGHAI),
        user.id,
        None,
        attachments_dir(data_dir, user),
        out=io.StringIO(),
        reminders=False,
    )
    await console.handle_line("/calendar")
    await console.handle_line("/timeline")


async def test_delete_erases_every_key_and_file_of_the_user_and_only_theirs(
    backend: Backend, tmp_path: Path
) -> None:
    storage, data_dir = backend.storage, tmp_path / "var"
    engine = engine_on(storage)
    for holding in holdings(storage, data_dir):
        engine.erasure.register(holding)
    service = ReminderService(
        engine,
        FixedClock(NOON_SHANGHAI),
        {},
        FAST,
        redis_url=backend.redis_url,
        data_dir=data_dir,
    )
    await service.start()
    try:
        for user in (ALICE, BOB):
            await applicant(engine, user, data_dir)
        links = FileLinks(storage, "app-secret", "https://bot.example", FixedClock(NOON_SHANGHAI))
        await links.publish(ALICE, Attachment("timeline.ics", "text/calendar", b"BEGIN:VCALENDAR"))
        await links.publish(BOB, Attachment("timeline.ics", "text/calendar", b"BEGIN:VCALENDAR"))
        alice_file = (await links.owned.names(ALICE))[0]
        await storage.set_value(draft_name(ALICE), b'{"step": "en"}', ttl=600)  # were she admin
        store = BroadcastStore(storage)
        broadcast = await store.create(
            en="News",
            zh="新闻",
            segment="",
            author="cli",
            created_at=NOON_SHANGHAI.isoformat(),
            recipients=[ALICE, BOB],
        )
        scheduler = service.scheduler
        assert scheduler is not None
        await until(lambda: all(scheduler.get_job(jobs.job_id(u)) for u in (ALICE, BOB)))

        keys_before, files_before = backend.listing(), files(data_dir)
        print("keys before:", *keys_before, "files before:", *files_before, sep="\n  ")
        hers = {f"user:{ALICE}", f"value:{draft_name(ALICE)}", f"value:owned:{ALICE}"}
        if backend.name == "redis":  # the job store's own keys (SQLite: reminders.db)
            hers |= {f"reminders:jobs#{jobs.job_id(ALICE)}"}
            hers |= {f"reminders:run_times#{jobs.job_id(ALICE)}"}
        assert {k for k in keys_before if "alice" in k} == hers
        assert f"value:{alice_file}" in keys_before
        assert [f for f in files_before if "alice" in f] == [
            "attachments/alice/kvisa-deadlines.ics",
            "attachments/alice/timeline.png",
        ]

        chat = Chat(engine, user=ALICE)
        await chat.send("/delete")
        await chat.choose("yes")
        await until(lambda: scheduler.get_job(jobs.job_id(ALICE)) is None)
        await until(lambda: not [k for k in backend.listing() if "alice" in k])  # the queue drained

        keys_after, files_after = backend.listing(), files(data_dir)
        print("keys after:", *keys_after, "files after:", *files_after, sep="\n  ")
        # Nothing of hers, under any name; everything of Bob's as it was.
        assert [k for k in keys_after if "alice" in k] == []
        assert f"value:{alice_file}" not in keys_after
        assert set(keys_before) - set(keys_after) == hers | {f"value:{alice_file}"}
        assert [k for k in keys_before if "bob" in k] == [k for k in keys_after if "bob" in k]
        assert [v.name async for v in storage.values() if b"alice" in v.value] == []
        assert [f for f in files_after if "alice" in f] == []
        assert [f for f in files_before if "bob" in f] == [f for f in files_after if "bob" in f]
        assert scheduler.get_job(jobs.job_id(BOB)) is not None
        rows = {
            user: state
            for n in range(broadcast.chunks)
            for user, state in (await store.chunk(broadcast.id, n)).items()
        }
        assert rows[str(BOB)] == "pending"
        assert sorted(rows.values()) == ["pending", "skipped"]  # hers, anonymous, still counted
        assert await storage.get(ALICE) is None
    finally:
        await service.stop()


async def test_a_job_left_by_an_erasure_elsewhere_is_removed_when_it_fires_sending_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    """`kvisa purge` erases without a scheduler: the user's job stays until it fires."""
    storage, data_dir = backend.storage, tmp_path / "var"
    engine = engine_on(storage)
    sent: list[UserKey] = []

    async def send(user: UserKey, messages: object, *, news: bool = False) -> None:
        sent.append(user)

    service = ReminderService(
        engine,
        FixedClock(NOON_SHANGHAI),
        {"console": send},
        FAST,
        redis_url=backend.redis_url,
        data_dir=data_dir,
    )
    await service.start()
    try:
        await applicant(engine, ALICE, data_dir)
        scheduler = service.scheduler
        assert scheduler is not None
        await until(lambda: scheduler.get_job(jobs.job_id(ALICE)) is not None)
        record = await storage.get(ALICE)
        assert record is not None
        assert await storage.put(ALICE, None, expected_version=record.version)  # behind its back

        await service.fired(ALICE)

        assert scheduler.get_job(jobs.job_id(ALICE)) is None
        assert sent == []
    finally:
        await service.stop()


async def test_delete_on_one_channel_erases_every_linked_identity(
    backend: Backend, tmp_path: Path
) -> None:
    """Linked on Telegram and WeChat: /delete on WeChat leaves no key of either identity
    (the forward, the applicant, the code issued, the file links), and Bob's keys as they were."""
    storage = backend.storage
    engine = engine_on(storage)
    for holding in holdings(storage, tmp_path / "var"):
        engine.erasure.register(holding)
    tg, wx = UserKey("telegram", "alice-tg"), UserKey("wechat", "alice-wx")
    bob = Chat(engine, user=UserKey("telegram", "bob"))
    await bob.interview(**ACADEMIC)
    alice = Chat(engine, user=tg)
    await alice.interview(**ACADEMIC)
    code = next(
        w.rstrip(".")
        for w in (await alice.send("/link"))[0].text.split()
        if w.isdigit() or w.rstrip(".").isdigit()
    )
    await Chat(engine, user=wx).send(f"/link {code}")
    await alice.send("/link")  # a live code of hers, stored (hashed) until it expires
    links = FileLinks(storage, "app-secret", "https://bot.example", FixedClock(NOON_SHANGHAI))
    await links.publish(wx, Attachment("timeline.ics", "text/calendar", b"BEGIN:VCALENDAR"))
    keys_before = backend.listing()
    assert {f"user:{tg}", f"user:{wx}", f"value:link:issued:{tg}"} <= set(keys_before)

    chat = Chat(engine, user=wx)
    await chat.send("/delete")
    await chat.choose("yes")

    keys_after = backend.listing()
    print("keys after:", *keys_after, sep="\n  ")
    assert [k for k in keys_after if "alice" in k] == []
    assert [k for k in keys_after if k.startswith("value:link:code:")] == []
    assert [k for k in keys_before if "bob" in k] == [k for k in keys_after if "bob" in k]
    assert await storage.get(tg) is None and await storage.get(wx) is None
