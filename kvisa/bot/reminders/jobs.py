"""APScheduler 3 parts: the job (a module-level callable with plain arguments), its trigger,
and the persistent job stores (Redis, or SQLite through SQLAlchemy).

One job per user, named after the user, set for their next reminder. Its arguments say which
reminder that is (user key, kind, target, offset, day); the delivery itself re-reads the
user's state, so a job that went stale (the user moved a date meanwhile) cannot send a wrong
message.

APScheduler removes a plain date job from its store *before* the job runs, so a process
killed mid-delivery would lose it. ReminderTrigger keeps the job: after firing, its next
time is `retry` seconds later, until the delivery replaces the job with the next reminder
(or removes it). A crash therefore delays a reminder by at most `retry`, never loses it.

Both job stores are synchronous (redis-py's blocking client, SQLAlchemy over sqlite3). The
scheduler calls them on the event loop when it looks for due jobs; to keep each such call
short, due jobs are fetched in batches of BATCH (the scheduler comes back at once for the
rest, letting other tasks run in between). Adding, replacing and removing jobs, which
follows every delivery and every change of a user's dates, runs in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

# APScheduler 3 ships no type information.
from apscheduler.jobstores.redis import RedisJobStore  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import STATE_RUNNING  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.util import datetime_to_utc_timestamp  # type: ignore[import-untyped]
from redis import Redis
from sqlalchemy import select

from kvisa.identity import UserKey

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
    on the event loop, ahead of every user's turn. One pending pass serves them all."""

    _wakeup_pending = False

    def wakeup(self) -> None:  # any thread
        if self._wakeup_pending or self._eventloop is None:
            return
        self._wakeup_pending = True
        self._eventloop.call_soon_threadsafe(self._pass)

    def _pass(self) -> None:
        self._wakeup_pending = False
        if self.state != STATE_RUNNING:
            return
        self._stop_timer()
        self._start_timer(self._process_jobs())


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


class RedisStore(RedisJobStore):  # type: ignore[misc]
    """APScheduler's Redis job store on a URL, under our key prefix, due jobs in batches."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(
            jobs_key=f"{prefix}:reminders:jobs", run_times_key=f"{prefix}:reminders:run_times"
        )
        self.redis.close()
        # Bounded waits: a stuck call would hold the event loop (see the module docstring).
        self.redis: Redis = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        ids = self.redis.zrangebyscore(
            self.run_times_key, 0, datetime_to_utc_timestamp(now), start=0, num=BATCH
        )
        if not ids:
            return []
        return self._reconstitute_jobs(zip(ids, self.redis.hmget(self.jobs_key, *ids), strict=True))  # type: ignore[no-any-return]


class SqliteStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy job store on a SQLite file, due jobs in batches."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(url=f"sqlite:///{path}", tablename="reminder_jobs")

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        table = self.jobs_t
        query = (
            select(table.c.id, table.c.job_state)
            .where(table.c.next_run_time <= datetime_to_utc_timestamp(now))
            .order_by(table.c.next_run_time)
            .limit(BATCH)
        )
        with self.engine.begin() as connection:
            rows = list(connection.execute(query))
        jobs = []
        for row in rows:
            try:
                jobs.append(self._reconstitute_job(row.job_state))
            except Exception:
                log.exception("unreadable reminder job %s: removed", row.id)
                self.remove_job(row.id)
        return jobs
