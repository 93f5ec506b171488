"""The reminder service of `kvisa serve`: keeps one APScheduler job per user with reminders,
set for their next one, and delivers through the user's channel when it fires.

- A committed turn that changed what reminders depend on (answers, events, snoozes, pause,
  blocked) asks for the user to be rescheduled; /delete removes their job. The request goes
  through the coordinator, so any process can ask and only the leader touches the job store.
- The leader's scheduler fires a user's job; the job delivers what is due (see delivery.py)
  and sets the job for the next reminder, or removes it.
- APScheduler's timer reads the wall clock; our times come from the injected Clock. A job for
  a reminder at `at` is set `at - clock.now()` from the scheduler's now, so a fixed clock (the
  tests, the console) behaves like the system one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from redis.asyncio import Redis

from kvisa.bot.clock import Clock
from kvisa.bot.content.model import Flows
from kvisa.bot.coordinator import Coordinator, LocalCoordinator, RedisCoordinator
from kvisa.bot.i18n import Catalogs
from kvisa.bot.loops import raise_if_cancelled
from kvisa.bot.ordering import KeyedLocks
from kvisa.bot.pacing import Pacer
from kvisa.bot.policy.reminders import active, plan_answers, plan_inputs, planned
from kvisa.bot.policy.zones import shanghai_today
from kvisa.bot.reminders import jobs
from kvisa.bot.reminders.delivery import Deliverer, Next, Sender
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import connect

log = logging.getLogger(__name__)

REMEMBERED = 20_000  # fingerprints kept
NO_JOB = frozenset(
    {"erased", "none", "inactive"}
)  # fingerprints of users with no job (or one to remove)
STOP_GRACE = 10.0  # seconds stop() lets deliveries in progress finish
RULES_KEY = "reminders:rules"  # storage value: the mark of the rules reminders were planned from


def fingerprint(
    flows: Flows, user: UserKey, state: Mapping[str, Any] | None, today: dt.date
) -> str:
    """What the user's job depends on: the reminders planned for them (or that they get none).
    A turn that leaves it as it was (most turns: an interview answer before any step is
    reported plans nothing) needs no rescheduling."""
    if state is None:
        return "erased"
    if not active(state):
        return "inactive"
    try:
        _, _, reminders = planned(flows, state, today)
    except Exception:  # an answer the plan cannot read yet: let the leader look
        log.debug("reminder plan failed in a fingerprint", exc_info=True)
        return "unknown"
    if not reminders:
        return "none"
    marks = sorted(f"{r.key(str(user))}@{r.at.isoformat()}" for r in reminders)
    return hashlib.blake2b("\n".join(marks).encode(), digest_size=12).hexdigest()


# Told after a turn changed a user's stored state (the state before and after; None: erased).
TurnListener = Callable[[UserKey, dict[str, Any] | None, dict[str, Any] | None], Awaitable[None]]


class Conversations(Protocol):
    """What the service needs of the engine, which it sits beside and does not import: the
    content, the storage, a listener slot for committed turns, and marking a user unreachable."""

    flows: Flows
    catalogs: Catalogs
    storage: Storage
    listener: TurnListener | None

    async def mark_inactive(self, user: UserKey) -> None: ...


class ReminderService:
    """Scheduling and delivery of reminders for every user of a deployment."""

    def __init__(
        self,
        engine: Conversations,
        clock: Clock,
        senders: Mapping[str, Sender],
        settings: ReminderSettings,
        *,
        redis_url: str | None,
        data_dir: Path,
        pacers: Mapping[str, Pacer] | None = None,
    ) -> None:
        self.engine, self.clock, self.settings = engine, clock, settings
        self.storage = engine.storage
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.deliverer = Deliverer(
            engine.flows,
            engine.catalogs,
            engine.storage,
            clock,
            senders,
            settings,
            on_blocked=engine.mark_inactive,
            shared_pacers=pacers,
        )
        self.prefix = self.storage.namespace
        self._client: Redis | None = None
        self.coordinator: Coordinator
        if redis_url:
            self._client = connect(redis_url)
            self.coordinator = RedisCoordinator(self._client, self.prefix, settings.leader_ttl)
        else:
            self.coordinator = LocalCoordinator()
        self.scheduler: jobs.Scheduler | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._catch_up: asyncio.Task[bool] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reminder-jobs")
        self._pool_calls: set[asyncio.Future[Any]] = set()
        self._stopped = False
        self._marks: dict[str, str] = {}
        self._plan_answers = plan_answers(engine.flows)
        self._locks: KeyedLocks[UserKey] = KeyedLocks()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.engine.listener = self.on_turn
        await self.coordinator.start(self._elected, self._deposed)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.engine.listener == self.on_turn:
            self.engine.listener = None
        await self.coordinator.stop()
        self._pool.shutdown(wait=False)  # idle by now: _deposed waited for its calls
        if self._client is not None:
            await self._client.aclose()

    @property
    def leader(self) -> bool:
        return self.coordinator.leader

    def in_flight(self) -> int:
        """Deliveries under way in this process (a gauge of /metrics)."""
        return len(self._inflight)

    def job_store(self) -> jobs.JobStore:
        if self.redis_url:
            return jobs.RedisStore(self.redis_url, self.prefix)
        return jobs.SqliteStore(self.data_dir / "reminders.db")

    async def _elected(self) -> None:
        scheduler = jobs.Scheduler(
            asyncio.get_running_loop(),
            timezone=dt.UTC,
            logger=jobs.scheduler_log,
            jobstores={"default": self.job_store()},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        jobs.attach(self)
        await self._in_pool(scheduler.start)  # opens the job store (SQLite creates its table)
        self.scheduler = scheduler
        self._drainer = asyncio.create_task(self._drain(), name="reminders-drain")
        self._catch_up = asyncio.create_task(self._after_rules_changed(), name="reminders-rules")

    @staticmethod
    def rules_mark(flows: Flows) -> str:
        """What every user's reminders were last planned from: the timeline rules."""
        # The calendar too: a content version may add a holiday schedule. (A version that
        # leaves both alone moves no date, so nobody's reminders are planned again for it.)
        rules = (repr(flows.timeline) + flows.calendar.schedule_key()).encode()
        return hashlib.blake2b(rules, digest_size=12).hexdigest()

    async def _after_rules_changed(self) -> bool:
        """On the first start, or after the timeline rules changed (offsets, deadlines, the
        calendar, a content version), plan everyone's reminders again; a restart with the same
        rules does nothing. False when that could not be done (tried again later)."""
        try:
            # The rules of the version served now, read here: the deliverer may not have
            # looked since a new version was published.
            mark = self.rules_mark(await self.deliverer.current_flows())
            stored = await self.storage.get_value(RULES_KEY)
            if stored is not None and stored.decode() == mark:
                return True
            count = await self.reschedule_all()
            await self.storage.set_value(RULES_KEY, mark.encode())
            log.info("timeline rules changed: reminders of %d users are being planned again", count)
        except Exception:  # tried again on the drainer's next pass or at the next election
            raise_if_cancelled()
            log.exception("could not plan reminders again after the rules changed")
            return False
        return True

    async def _deposed(self) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
            await asyncio.gather(self._catch_up, return_exceptions=True)
            self._catch_up = None
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=STOP_GRACE)
        scheduler, self.scheduler = self.scheduler, None
        jobs.attach(None)
        if self._pool_calls:  # no job store call may be under way while the store closes
            await asyncio.wait(set(self._pool_calls), timeout=STOP_GRACE)
        if scheduler is not None:
            async with asyncio.timeout(STOP_GRACE):
                await scheduler.close()

    async def _in_pool(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: call(*args, **kwargs)
        )
        self._pool_calls.add(future)
        future.add_done_callback(self._pool_calls.discard)
        return await future

    # --- asking for rescheduling (any process) ------------------------------------------------

    async def on_turn(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """The engine's listener: ask for a reschedule when the turn changed the user's plan.
        Comparing the state before and after the turn (rather than what this process saw
        last) holds across processes and restarts; a user who had no reminders and still has
        none cannot have a job, so needs nothing. A turn that changed nothing the plan reads
        (most interview answers) is let go without planning at all."""
        old_inputs, new_inputs = (
            plan_inputs(before, self._plan_answers),
            plan_inputs(after, self._plan_answers),
        )
        if old_inputs == new_inputs:
            return
        today = shanghai_today(self.clock.now())
        old, new = (
            self._fingerprint(user, before, old_inputs, today),
            self._fingerprint(user, after, new_inputs, today),
        )
        if old == new or (old in NO_JOB and new in NO_JOB):
            return
        await self.coordinator.request(user)

    def _fingerprint(
        self,
        user: UserKey,
        state: dict[str, Any] | None,
        inputs: tuple[Any, ...] | None,
        today: dt.date,
    ) -> str:
        """fingerprint(), remembered by what planning reads (`inputs`, from plan_inputs()): a
        turn's "before" is usually the previous turn's "after", so each turn plans once."""
        if state is None or inputs is None or not inputs[0]:
            return fingerprint(self.engine.flows, user, state, today)
        key = json.dumps([str(user), today.isoformat(), *inputs[1:]], sort_keys=True, default=str)
        mark = self._marks.pop(key, None) or fingerprint(self.engine.flows, user, state, today)
        self._marks[key] = mark  # most recently used last
        if len(self._marks) > REMEMBERED:
            del self._marks[next(iter(self._marks))]
        return mark

    async def reschedule_all(self) -> int:
        """Ask for every stored user to be rescheduled (after a first deployment, or a change
        of flows/timeline.yaml that moves dates)."""
        count = 0
        async for user in self.storage.users():
            await self.coordinator.request(user)
            count += 1
        return count

    # --- the leader ---------------------------------------------------------------------------

    async def _drain(self) -> None:
        version = self.deliverer.flows.version
        while True:
            raise_if_cancelled()
            if self.deliverer.content is not None:
                try:
                    flows = await self.deliverer.current_flows()
                except StorageError:
                    log.exception("reading the current content version failed")
                    flows = self.deliverer.flows
                # A new content version: plan everyone again (until that has been done).
                if flows.version != version and await self._after_rules_changed():
                    version = flows.version
            try:
                batch = await self.coordinator.pending(25)  # well within a Redis pool of 100
            except Exception:
                raise_if_cancelled()
                log.exception("reading reminder requests failed")
                batch = []
            if not batch:
                await self.coordinator.wait(self.settings.drain_interval)
                continue
            await asyncio.gather(*(self._handle_request(user, token) for user, token in batch))

    async def _handle_request(self, user: UserKey, token: str) -> None:
        try:
            await self.reschedule(user)
            await self.coordinator.done(user, token)
        except Exception:  # left in the queue: tried again on the next pass
            raise_if_cancelled()
            log.exception("rescheduling reminders failed for a %s user", user.channel)

    async def reschedule(self, user: UserKey) -> None:
        """Set the user's job for what is due now or next, or remove it (leader only)."""
        async with self._locks(user):
            now = self.clock.now()
            look = await self.deliverer.outlook(user, now)
            upcoming: Next
            if look.deliveries:
                upcoming = now, look.deliveries[0].reminder
            else:
                upcoming = (look.next_at, look.next_reminder) if look.next_at else None
            await self._set_job(user, upcoming)

    async def fired(self, user: UserKey) -> None:
        """A user's job fired: deliver, then set the job for what comes next."""
        task = asyncio.create_task(self._deliver(user))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        # Shielded: shutting the scheduler down cancels its jobs, never a send half done.
        await asyncio.shield(task)

    async def _deliver(self, user: UserKey) -> None:
        async with self._locks(user):
            upcoming = await self.deliverer.deliver(user)
            await self._set_job(user, upcoming)

    async def _set_job(self, user: UserKey, upcoming: Next) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return
        if upcoming is None:
            with contextlib.suppress(JobLookupError):  # the user had no job
                await self._in_pool(scheduler.remove_job, jobs.job_id(user))
            return
        at, reminder = upcoming
        wall = dt.datetime.now(dt.UTC) + (at - self.clock.now())  # see the module docstring
        args = (
            [str(user), reminder.kind, reminder.target, reminder.offset, reminder.day.isoformat()]
            if reminder
            else [str(user), "", "", 0, ""]
        )
        await self._in_pool(
            scheduler.add_job,
            jobs.fire,
            trigger=jobs.ReminderTrigger(wall, self.settings.retry),
            args=args,
            id=jobs.job_id(user),
            name=f"reminders {user.channel}",
            replace_existing=True,
        )
