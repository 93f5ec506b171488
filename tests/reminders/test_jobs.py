"""Our APScheduler job stores (one contract, run on SQLite and on a real Redis) and the
scheduler's coalesced wake-ups, batches and clean stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from apscheduler.jobstores.base import (  # type: ignore[import-untyped]
    ConflictingIdError,
    JobLookupError,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from kvisa.bot.reminders import jobs

NOW = dt.datetime.now(dt.UTC)  # the scheduler reads the wall clock
fired: list[str] = []


async def record(name: str) -> None:
    """A job function the stores can pickle by reference."""
    fired.append(name)


@dataclass
class Backend:
    """A job store to test, how to spoil one of its stored jobs, and APScheduler's own store
    on the same keys or table."""

    store: Callable[[], jobs.JobStore]
    spoil: Callable[[str], None]
    upstream: Callable[[], Any]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "reminders.db"

        def spoil_row(job_id: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute(
                    "INSERT INTO reminder_jobs VALUES (?, ?, ?)", (job_id, 0.0, b"not a pickle")
                )

        def sqlalchemy_store() -> Any:
            from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

            return SQLAlchemyJobStore(url=f"sqlite:///{path}", tablename="reminder_jobs")

        yield Backend(lambda: jobs.SqliteStore(path), spoil_row, sqlalchemy_store)
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    client = redis.Redis.from_url(url)
    keys = {
        "jobs_key": f"{prefix}:reminders:jobs",
        "run_times_key": f"{prefix}:reminders:run_times",
    }

    def spoil_entry(job_id: str) -> None:
        client.hset(keys["jobs_key"], job_id, b"not a pickle")
        client.zadd(keys["run_times_key"], {job_id: 0.0})

    def redis_store() -> Any:
        from apscheduler.jobstores.redis import RedisJobStore  # type: ignore[import-untyped]

        where = urlsplit(url)
        db = int(where.path.strip("/") or 0)
        return RedisJobStore(db=db, host=where.hostname, port=where.port or 6379, **keys)

    yield Backend(lambda: jobs.RedisStore(url, prefix), spoil_entry, redis_store)
    client.close()


@pytest.fixture
async def started(backend: Backend) -> AsyncIterator[tuple[jobs.Scheduler, jobs.JobStore]]:
    """A paused scheduler on the backend's store: jobs are stored, none runs."""
    store = backend.store()
    scheduler = jobs.Scheduler(
        asyncio.get_running_loop(), timezone=dt.UTC, jobstores={"default": store}
    )
    scheduler.start(paused=True)
    yield scheduler, store
    await scheduler.close()


def add(scheduler: Any, name: str, at: dt.datetime, **options: Any) -> Any:
    return scheduler.add_job(
        record,
        trigger=jobs.ReminderTrigger(at, 60.0),
        args=[name],
        id=name,
        name=name,
        **options,
    )


async def test_a_stored_job_reads_back_as_it_was_added(
    started: tuple[jobs.Scheduler, jobs.JobStore],
) -> None:
    scheduler, store = started
    add(scheduler, "ada", NOW + dt.timedelta(hours=1), coalesce=True, max_instances=1)
    job = store.lookup_job("ada")
    assert (job.func, tuple(job.args), job.coalesce, job.max_instances) == (
        record,
        ("ada",),
        True,
        1,
    )
    assert (job.trigger.at, job.trigger.retry) == (NOW + dt.timedelta(hours=1), 60.0)
    assert job.next_run_time == NOW + dt.timedelta(hours=1)
    assert tuple(scheduler.get_job("ada").args) == ("ada",)
    assert store.lookup_job("nobody") is None


async def test_due_jobs_come_earliest_first_and_at_most_a_batch_at_a_time(
    started: tuple[jobs.Scheduler, jobs.JobStore],
) -> None:
    scheduler, store = started
    for n in range(jobs.BATCH + 5):
        add(scheduler, f"due-{n:02}", NOW - dt.timedelta(minutes=n))
    add(scheduler, "later", NOW + dt.timedelta(hours=1))
    due = store.get_due_jobs(NOW)
    assert [job.id for job in due] == [f"due-{n:02}" for n in reversed(range(5, jobs.BATCH + 5))]
    assert store.get_next_run_time() == NOW - dt.timedelta(minutes=jobs.BATCH + 4)
    for job in due:
        store.remove_job(job.id)
    assert [job.id for job in store.get_due_jobs(NOW)] == [f"due-{n:02}" for n in (4, 3, 2, 1, 0)]


async def test_replacing_updates_and_a_paused_job_sorts_last_and_never_comes_due(
    started: tuple[jobs.Scheduler, jobs.JobStore],
) -> None:
    scheduler, store = started
    add(scheduler, "ada", NOW - dt.timedelta(minutes=1))
    add(scheduler, "bob", NOW + dt.timedelta(hours=1))
    add(scheduler, "cyd", NOW + dt.timedelta(hours=3))
    add(scheduler, "ada", NOW + dt.timedelta(hours=2), replace_existing=True)
    scheduler.pause_job("bob")
    scheduler.pause_job("cyd")
    first, *paused = [job.id for job in store.get_all_jobs()]
    assert first == "ada" and sorted(paused) == ["bob", "cyd"]
    assert store.get_due_jobs(NOW + dt.timedelta(days=1)) == [store.lookup_job("ada")]
    assert store.get_next_run_time() == NOW + dt.timedelta(hours=2)


async def test_conflicting_and_missing_ids_raise_what_apscheduler_expects(
    started: tuple[jobs.Scheduler, jobs.JobStore],
) -> None:
    scheduler, store = started
    job = add(scheduler, "ada", NOW)
    with pytest.raises(ConflictingIdError):
        store.add_job(job)
    store.remove_job("ada")
    with pytest.raises(JobLookupError):
        store.update_job(job)
    with pytest.raises(JobLookupError):
        store.remove_job("ada")
    with pytest.raises(JobLookupError):
        scheduler.remove_job("ada")  # what the service catches when a user has no job


async def test_an_unreadable_job_is_removed_instead_of_coming_due_forever(
    started: tuple[jobs.Scheduler, jobs.JobStore], backend: Backend
) -> None:
    scheduler, store = started
    add(scheduler, "ada", NOW - dt.timedelta(minutes=1))
    backend.spoil("spoilt")
    assert [job.id for job in store.get_due_jobs(NOW)] == ["ada"]
    assert store.lookup_job("spoilt") is None
    assert [job.id for job in store.get_all_jobs()] == ["ada"]
    store.remove_all_jobs()
    assert store.get_all_jobs() == [] and store.get_next_run_time() is None


async def test_jobs_stored_by_apschedulers_own_store_carry_over(backend: Backend) -> None:
    """The job stores we used before keep jobs in the same keys or table and format."""
    loop = asyncio.get_running_loop()
    before = AsyncIOScheduler(event_loop=loop, timezone=dt.UTC)
    before.add_jobstore(backend.upstream())
    before.start(paused=True)
    add(before, "ada", NOW - dt.timedelta(minutes=1))
    before.shutdown(wait=False)
    store = backend.store()
    scheduler = jobs.Scheduler(loop, timezone=dt.UTC, jobstores={"default": store})
    scheduler.start(paused=True)
    try:
        (job,) = store.get_due_jobs(NOW)
        assert (job.id, job.func, tuple(job.args), job.trigger.at) == (
            "ada",
            record,
            ("ada",),
            NOW - dt.timedelta(minutes=1),
        )
    finally:
        await scheduler.close()


class CountingStore(jobs.SqliteStore):
    """A SQLite job store that counts the scheduler's passes (each asks for due jobs once)."""

    passes = 0

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        self.passes += 1
        return super().get_due_jobs(now)


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[tuple[jobs.Scheduler, CountingStore]]:
    """A running scheduler on a counting store."""
    store = CountingStore(tmp_path / "reminders.db")
    scheduler = jobs.Scheduler(
        asyncio.get_running_loop(),
        timezone=dt.UTC,
        jobstores={"default": store},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
    )
    scheduler.start()
    await settle()
    yield scheduler, store
    await scheduler.close()


async def settle() -> None:
    """A few turns of the loop: enough for every wake-up already asked for to have run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_jobs_added_in_one_turn_of_the_loop_wake_the_scheduler_once(
    counted: tuple[jobs.Scheduler, CountingStore],
) -> None:
    scheduler, store = counted
    before = store.passes
    for n in range(200):
        add(scheduler, f"user-{n}", NOW + dt.timedelta(hours=1))
    await settle()
    assert store.passes == before + 1  # APScheduler alone would pass over the store 200 times


async def test_more_jobs_due_than_a_batch_all_fire_over_several_passes(
    counted: tuple[jobs.Scheduler, CountingStore],
) -> None:
    scheduler, store = counted
    fired.clear()
    names = [f"user-{n}" for n in range(3 * jobs.BATCH)]
    for name in names:
        add(scheduler, name, NOW - dt.timedelta(seconds=1))
    async with asyncio.timeout(30):
        while len(fired) < len(names):
            await asyncio.sleep(0.01)
    assert sorted(fired) == sorted(names)
    assert store.passes >= 3


async def test_no_pass_runs_after_close_even_with_wake_ups_queued(
    counted: tuple[jobs.Scheduler, CountingStore],
) -> None:
    scheduler, store = counted
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    scheduler.wakeup()
    await asyncio.sleep(0)  # its pass is queued now
    scheduler.wakeup()  # and another wake-up
    await scheduler.close()
    passes = store.passes
    await settle()
    scheduler.wakeup()  # a late one (a timer, a thread) finds the scheduler stopped
    await settle()
    assert store.passes == passes and not scheduler.running and errors == []
