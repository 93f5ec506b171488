"""APScheduler 3 parts, through its public extension points only: the job (a module-level
callable with plain arguments), its trigger, a scheduler that coalesces wake-ups, and job
stores of our own (Redis, or a SQLite file).

One job per user, named after the user, set for their next reminder. Its arguments say which
reminder that is (user key, kind, target, offset, day); the delivery itself re-reads the
user's state, so a job that went stale (the user moved a date meanwhile) cannot send a wrong
message.

APScheduler removes a plain date job from its store *before* the job runs, so a process
killed mid-delivery would lose it. ReminderTrigger keeps the job: after firing, its next
time is `retry` seconds later, until the delivery replaces the job with the next reminder
(or removes it). A crash therefore delays a reminder by at most `retry`, never loses it.

Both job stores are synchronous (redis-py's blocking client, sqlite3). The scheduler calls
them on the event loop when it looks for due jobs; to keep each such call short, a store
hands out at most BATCH due jobs at a time (the scheduler sees more are due and comes back at
once for the rest, letting other tasks run in between). Adding, replacing and removing jobs,
which follows every delivery and every change of a user's dates, runs in a worker thread.

The stores keep a job as the pickled `Job.__getstate__()`, under the keys and in the table
APScheduler's own RedisJobStore and SQLAlchemyJobStore used (which we used before), so jobs
stored by an older release carry over. A job read back is `Job(scheduler, id)` given that
state (`__setstate__`); APScheduler's own stores also set the job's store alias, which has no
public setter: ours stay None, which only events and `Job.pending` read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import pickle
import sqlite3
import threading
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# APScheduler 3 ships no type information.
from apscheduler.job import Job  # type: ignore[import-untyped]
from apscheduler.jobstores.base import (  # type: ignore[import-untyped]
    BaseJobStore,
    ConflictingIdError,
    JobLookupError,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import STATE_RUNNING  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from redis import Redis

from kvisa.identity import UserKey
from kvisa.storage.redis import connect_sync

if TYPE_CHECKING:
    from kvisa.bot.reminders.service import ReminderService

log = logging.getLogger(__name__)
BATCH = 25  # due jobs handled per pass of the scheduler (each pass holds the event loop)

_service: ReminderService | None = None  # the service whose scheduler runs in this process


class _StillRunning(logging.Filter):
    """A user's job comes due again (its retry time) while their delivery still waits its turn
    under the platform's rate limit: APScheduler skips it with a warning. That is expected when
    thousands fall due at once, so it is not worth a warning per user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


scheduler_log = logging.getLogger("kvisa.bot.reminders.scheduler")
scheduler_log.addFilter(_StillRunning())


def attach(service: ReminderService | None) -> None:
    """Make `service` the one jobs of this process report to (None: detach)."""
    global _service
    _service = service


async def fire(user: str, kind: str, target: str, offset: int, day: str) -> None:
    """The job: deliver what is due for `user` (the other arguments name the reminder the job
    was set for, for logs and for anyone reading the job store)."""
    service = _service
    if service is None:  # the scheduler is stopping; the job stays in the store and fires again
        log.warning(
            "reminder job for a %s user fired with no service attached", user.partition(":")[0]
        )
        return
    await service.fired(UserKey.parse(user))


def job_id(user: UserKey) -> str:
    return f"reminders:{user}"


class Scheduler(AsyncIOScheduler):  # type: ignore[misc]
    """AsyncIOScheduler that coalesces wake-ups: APScheduler wakes the scheduler once per job
    added, and a thousand jobs added at once would queue a thousand passes over the job store
    on the event loop, ahead of every user's turn. One pending wake-up serves them all.

    `wakeup()` is the method APScheduler asks a scheduler subclass to provide; this one
    defers to AsyncIOScheduler's own, with at most one wake-up waiting at a time. Our
    attributes have public names so they cannot collide with APScheduler's private ones."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        self.wakeup_loop = loop
        self.wakeup_pending = False
        super().__init__(event_loop=loop, **options)

    def wakeup(self) -> None:  # any thread
        if self.wakeup_pending:
            return
        self.wakeup_pending = True
        self.wakeup_loop.call_soon_threadsafe(self.wakeup_once)

    def wakeup_once(self) -> None:
        self.wakeup_pending = False
        if self.state == STATE_RUNNING:
            super().wakeup()  # a pass over the job store, in the loop's next turn

    async def close(self) -> None:
        """Shut down, with no pass over the job store after it closes. Pausing turns the
        passes already queued into no-ops (a paused scheduler skips its job stores), and the
        loop runs them before this coroutine resumes: nothing can start a pass after that."""
        if not self.running:
            return
        self.pause()
        await asyncio.sleep(0)
        self.shutdown(wait=False)
        while self.running:  # it shuts down in a callback of the loop
            await asyncio.sleep(0.001)


class ReminderTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at `at`, then every `retry` seconds until the job is replaced or removed."""

    __slots__ = ("at", "retry")

    def __init__(self, at: dt.datetime, retry: float) -> None:
        self.at = at
        self.retry = retry

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        if previous_fire_time is None:
            return self.at
        return previous_fire_time + dt.timedelta(seconds=self.retry)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "at": self.at, "retry": self.retry}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.at, self.retry = state["at"], state["retry"]

    def __str__(self) -> str:
        return f"reminder[{self.at.isoformat()}, retry {self.retry:g}s]"


def stamp(moment: dt.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def text(value: object) -> str:
    """A Redis answer (bytes: our clients do not decode) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


class JobStore(BaseJobStore):  # type: ignore[misc]
    """What our job stores share: pickling jobs, rebuilding them, dropping unreadable ones."""

    scheduler: Any = None

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.scheduler = scheduler

    @staticmethod
    def encode(job: Any) -> bytes:
        return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)

    def decode(self, rows: Iterable[tuple[str, object]]) -> list[Any]:
        """Jobs from (id, pickled state) rows, in order; unreadable ones are removed."""
        jobs, broken = [], []
        for job_id, blob in rows:
            try:
                if not isinstance(blob, bytes):
                    raise TypeError("no pickled state")
                state = pickle.loads(blob)
                job = Job(self.scheduler, id=state["id"])
                job.__setstate__(state)
            except Exception as exc:  # a job nothing can run would come due on every pass
                log.error("unreadable reminder job removed (%s)", type(exc).__name__)
                broken.append(job_id)
            else:
                jobs.append(job)
        if broken:
            self.remove_unreadable(broken)
        return jobs

    @abstractmethod
    def remove_unreadable(self, job_ids: list[str]) -> None:
        """Remove these jobs, found unreadable, without asking whether they exist."""

    @staticmethod
    def by_run_time(jobs: list[Any]) -> list[Any]:
        """Earliest first; paused jobs (no next run time) last, as get_all_jobs() promises."""
        return sorted(
            jobs, key=lambda job: (job.next_run_time is None, stamp(job.next_run_time) or 0)
        )


class RedisStore(JobStore):
    """Jobs in a Redis hash (id -> state) and a sorted set (id -> next run time)."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.jobs_key = f"{prefix}:reminders:jobs"
        self.run_times_key = f"{prefix}:reminders:run_times"
        # Bounded waits: a stuck call would hold the event loop (see the module docstring).
        self.redis: Redis = connect_sync(url, socket_timeout=10, socket_connect_timeout=5)

    def shutdown(self) -> None:
        self.redis.close()

    def lookup_job(self, job_id: str) -> Any:
        blob = self.redis.hget(self.jobs_key, job_id)
        jobs = self.decode([(job_id, blob)]) if blob is not None else []
        return jobs[0] if jobs else None

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        raw_ids = self.redis.zrangebyscore(
            self.run_times_key, 0, now.timestamp(), start=0, num=BATCH
        )
        if not raw_ids:
            return []
        ids = [text(raw) for raw in raw_ids]
        return self.decode(zip(ids, self.redis.hmget(self.jobs_key, ids), strict=True))

    def get_next_run_time(self) -> dt.datetime | None:
        first = self.redis.zrange(self.run_times_key, 0, 0, withscores=True)
        return moment(float(first[0][1])) if first else None

    def get_all_jobs(self) -> list[Any]:
        rows = self.redis.hgetall(self.jobs_key)
        return self.by_run_time(self.decode((text(key), blob) for key, blob in rows.items()))

    def add_job(self, job: Any) -> None:
        if self.redis.hexists(self.jobs_key, job.id):
            raise ConflictingIdError(job.id)
        self.write(job)

    def update_job(self, job: Any) -> None:
        if not self.redis.hexists(self.jobs_key, job.id):
            raise JobLookupError(job.id)
        self.write(job)

    def write(self, job: Any) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.jobs_key, job.id, self.encode(job))
            if job.next_run_time is None:
                pipe.zrem(self.run_times_key, job.id)
            else:
                pipe.zadd(self.run_times_key, {job.id: job.next_run_time.timestamp()})
            pipe.execute()

    def remove_job(self, job_id: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.jobs_key, job_id)
            pipe.zrem(self.run_times_key, job_id)
            removed, _ = pipe.execute()
        if not removed:
            raise JobLookupError(job_id)

    def remove_unreadable(self, job_ids: list[str]) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.jobs_key, *job_ids)
            pipe.zrem(self.run_times_key, *job_ids)
            pipe.execute()

    def remove_all_jobs(self) -> None:
        self.redis.delete(self.jobs_key, self.run_times_key)


# The table SQLAlchemyJobStore created (tablename="reminder_jobs"), so an existing file is kept.
SCHEMA = """
CREATE TABLE IF NOT EXISTS reminder_jobs (
    id VARCHAR(191) NOT NULL,
    next_run_time FLOAT,
    job_state BLOB NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_reminder_jobs_next_run_time ON reminder_jobs (next_run_time);
"""


class SqliteStore(JobStore):
    """Jobs in a table of a SQLite file (one process: see docs/decisions.md)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.db: sqlite3.Connection | None = None
        # The scheduler calls a store from the event loop and from the worker threads.
        self.lock = threading.Lock()

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every write is one statement.
        self.db = sqlite3.connect(
            self.path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self.db.executescript(SCHEMA)

    def shutdown(self) -> None:
        with self.lock:
            if self.db is not None:
                self.db.close()
                self.db = None

    def query(self, sql: str, *params: Any) -> list[Any]:
        with self.lock:
            if self.db is None:
                raise sqlite3.ProgrammingError("the reminder job store is not open")
            return self.db.execute(sql, params).fetchall()

    def change(self, sql: str, *params: Any) -> int:
        """Run a write; the number of rows it changed."""
        with self.lock:
            if self.db is None:
                raise sqlite3.ProgrammingError("the reminder job store is not open")
            return self.db.execute(sql, params).rowcount

    def lookup_job(self, job_id: str) -> Any:
        rows = self.query("SELECT id, job_state FROM reminder_jobs WHERE id = ?", job_id)
        jobs = self.decode(rows)
        return jobs[0] if jobs else None

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        rows = self.query(
            "SELECT id, job_state FROM reminder_jobs WHERE next_run_time <= ?"
            " ORDER BY next_run_time LIMIT ?",
            now.timestamp(),
            BATCH,
        )
        return self.decode(rows)

    def get_next_run_time(self) -> dt.datetime | None:
        rows = self.query(
            "SELECT next_run_time FROM reminder_jobs WHERE next_run_time IS NOT NULL"
            " ORDER BY next_run_time LIMIT 1"
        )
        return moment(rows[0][0]) if rows else None

    def get_all_jobs(self) -> list[Any]:
        return self.by_run_time(self.decode(self.query("SELECT id, job_state FROM reminder_jobs")))

    def add_job(self, job: Any) -> None:
        try:
            self.change(
                "INSERT INTO reminder_jobs (id, next_run_time, job_state) VALUES (?, ?, ?)",
                job.id,
                stamp(job.next_run_time),
                self.encode(job),
            )
        except sqlite3.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Any) -> None:
        changed = self.change(
            "UPDATE reminder_jobs SET next_run_time = ?, job_state = ? WHERE id = ?",
            stamp(job.next_run_time),
            self.encode(job),
            job.id,
        )
        if not changed:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        if not self.change("DELETE FROM reminder_jobs WHERE id = ?", job_id):
            raise JobLookupError(job_id)

    def remove_unreadable(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.change("DELETE FROM reminder_jobs WHERE id = ?", job_id)

    def remove_all_jobs(self) -> None:
        self.change("DELETE FROM reminder_jobs")
