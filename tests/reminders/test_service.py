"""The reminder service in-process: scheduling on the job store, delivery, rescheduling after
turns, /delete, blocked users and rate limits, on SQLite and on a real Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from kvisa.bot.clock import FixedClock
from kvisa.bot.messages import Inbound
from kvisa.bot.reminders import jobs
from kvisa.bot.reminders.service import ReminderService
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import ENTERED, MORNING, Recorder, ServiceFactory, session
from tests.support import Chat

ALICE = UserKey("telegram", "1001")


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait for something the service does in the background (bounded, polled)."""
    async with asyncio.timeout(timeout):
        while not (await condition() if asyncio.iscoroutinefunction(condition) else condition()):
            await asyncio.sleep(0.01)


def job_args(service: ReminderService, user: UserKey = ALICE) -> tuple[Any, ...] | None:
    assert service.scheduler is not None
    job = service.scheduler.get_job(jobs.job_id(user))
    return tuple(job.args) if job else None


async def ledger(storage: Storage, user: UserKey = ALICE) -> dict[str, str]:
    record = await storage.get(user)
    return record.data.get("reminders_sent", {}) if record else {}


async def test_a_due_reminder_is_sent_once_and_the_job_moves_on(
    sqlite_storage: SqliteStorage, services: ServiceFactory, recorder: Recorder
) -> None:
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    service = await services(sqlite_storage)
    await service.coordinator.request(ALICE)  # what a turn that reported the entry does
    await until(
        lambda: job_args(service) == (str(ALICE), "deadline", "work_permit_apply", 3, "2026-12-04")
    )
    assert len(recorder.to(ALICE)) == 1
    message = recorder.to(ALICE)[0]
    assert [o.id for o in message.options] == [
        "rem:done:work_permit_apply",
        "rem:later:work_permit_apply",
    ]
    assert message.prompt is None
    assert list(await ledger(sqlite_storage)) == [
        f"{ALICE}|deadline|work_permit_apply|2026-12-04|7"
    ]
    await service.fired(ALICE)  # the job firing again (a retry) sends nothing more
    assert len(recorder.to(ALICE)) == 1


async def test_rescheduling_follows_a_new_event_and_an_edited_date(
    sqlite_storage: SqliteStorage, services: ServiceFactory, clock: FixedClock
) -> None:
    service = await services(sqlite_storage)
    chat = Chat(service.engine, user=ALICE, at=clock.now())
    await chat.interview(
        degree="master",
        degree_field_stem="yes",
        degree_from_recognized="yes",
        stem_work_at_recognized="no",
        birth_date="1998-04-27",
        nationality="DE",
        residence_country="DE",
        passport_expiry="2031-01-01",
        planned_application="_today",
        plan="employed",
        park="other",
    )
    assert job_args(service) is None  # nothing to remind yet
    await chat.send("/timeline")
    await chat.choose("entered")
    await chat.send(dt.date(2026, 11, 25).isoformat())  # act by Thu 10 Dec
    await until(
        lambda: job_args(service) == (str(ALICE), "deadline", "work_permit_apply", 7, "2026-12-10")
    )
    await chat.send("/timeline")
    await chat.choose("entered")
    await chat.send(dt.date(2026, 11, 26).isoformat())
    await chat.choose("yes")  # replace the date: act by Fri 11 Dec
    await until(
        lambda: job_args(service) == (str(ALICE), "deadline", "work_permit_apply", 7, "2026-12-11")
    )
    await chat.send("/delete")
    await chat.choose("yes")
    await until(lambda: job_args(service) is None)


async def test_done_cancels_the_deadline_and_the_nudge_comes_next(
    sqlite_storage: SqliteStorage, services: ServiceFactory, clock: FixedClock
) -> None:
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    service = await services(sqlite_storage)
    await service.reschedule(ALICE)
    await service.engine.handle(Inbound(ALICE, clock.now(), option="rem:done:work_permit_apply"))
    await until(lambda: (job_args(service) or ("",) * 3)[2] == "work_permit_decision")
    record = await sqlite_storage.get(ALICE)
    assert record and record.data["events"]["work_permit_submitted"] == "2026-11-27"


async def test_pausing_removes_the_job_and_resuming_brings_it_back(
    sqlite_storage: SqliteStorage, services: ServiceFactory, clock: FixedClock
) -> None:
    clock.advance(-dt.timedelta(days=1))  # nothing due yet
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    service = await services(sqlite_storage)
    await service.reschedule(ALICE)
    assert job_args(service) is not None
    await service.engine.handle(Inbound(ALICE, clock.now(), command="reminders"))
    await service.engine.handle(Inbound(ALICE, clock.now(), option="rem:pause"))
    await until(lambda: job_args(service) is None)
    await service.engine.handle(Inbound(ALICE, clock.now(), option="rem:resume"))
    await until(lambda: job_args(service) is not None)


async def test_a_blocked_user_is_marked_inactive_and_not_retried(
    sqlite_storage: SqliteStorage, services: ServiceFactory, recorder: Recorder
) -> None:
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    recorder.blocked.add(ALICE)
    service = await services(sqlite_storage)
    await service.fired(ALICE)
    record = await sqlite_storage.get(ALICE)
    assert record and record.data["inactive"] is True
    assert next(iter(record.data["reminders_sent"].values())).startswith("dropped")
    assert job_args(service) is None and recorder.sent == []


async def test_rate_limited_sends_wait_and_go_through(
    sqlite_storage: SqliteStorage, services: ServiceFactory, recorder: Recorder
) -> None:
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    recorder.slow_down = [0.05, 0.05]
    service = await services(sqlite_storage)
    await service.fired(ALICE)
    assert len(recorder.to(ALICE)) == 1 and recorder.slow_down == []


async def test_a_user_whose_channel_is_not_running_here_waits(
    sqlite_storage: SqliteStorage, services: ServiceFactory, recorder: Recorder
) -> None:
    wechat = UserKey("wechat", "oAbC")
    await sqlite_storage.put(wechat, session(), expected_version=0)
    service = await services(sqlite_storage)
    await service.fired(wechat)
    assert recorder.sent == [] and job_args(service, wechat) is not None  # tried again later


@pytest.mark.redis
async def test_a_new_service_picks_up_the_jobs_left_in_redis(
    redis_storage: RedisStorage,
    redis_url: str,
    services: ServiceFactory,
    recorder: Recorder,
    clock: FixedClock,
) -> None:
    clock.advance(-dt.timedelta(seconds=1))  # the 7-day reminder is one second away
    await redis_storage.put(ALICE, session(), expected_version=0)
    first = await services(redis_storage, redis_url)
    await first.reschedule(ALICE)
    assert job_args(first) == (str(ALICE), "deadline", "work_permit_apply", 7, "2026-12-04")
    await first.stop()  # the job stays in Redis
    clock.advance(dt.timedelta(seconds=1))
    second = await services(redis_storage, redis_url)
    assert job_args(second) is not None
    await until(lambda: len(recorder.to(ALICE)) == 1)
    await until(
        lambda: job_args(second) == (str(ALICE), "deadline", "work_permit_apply", 3, "2026-12-04")
    )


@pytest.mark.redis
async def test_a_follower_schedules_through_the_leader(
    redis_storage: RedisStorage,
    redis_url: str,
    services: ServiceFactory,
    recorder: Recorder,
    clock: FixedClock,
) -> None:
    leader = await services(redis_storage, redis_url)
    follower = await services(redis_storage, redis_url)
    assert leader.leader and not follower.leader and follower.scheduler is None
    chat = Chat(follower.engine, user=ALICE, at=clock.now())  # the user talks to the follower
    await redis_storage.put(ALICE, session(events={}), expected_version=0)
    await chat.send("/timeline")
    await chat.choose("entered")
    await chat.send(ENTERED.isoformat())
    await until(lambda: len(recorder.to(ALICE)) == 1)  # the 7-day reminder, due now
    await until(lambda: job_args(leader) is not None)
    await leader.stop()  # a clean stop hands the scheduler over at once
    await until(lambda: follower.leader)
    assert job_args(follower) == (str(ALICE), "deadline", "work_permit_apply", 3, "2026-12-04")
    assert MORNING[3] > clock.now()


def test_only_a_change_of_the_plan_asks_for_a_reschedule() -> None:
    """The fingerprint a turn is compared by: answers that move no reminder leave it as it was."""
    from kvisa.bot.reminders.service import fingerprint
    from tests.support import content

    flows, _ = content()
    today = dt.date(2026, 11, 25)
    before_entry = session(events={})
    assert fingerprint(flows, ALICE, before_entry, today) == "none"
    assert (
        fingerprint(flows, ALICE, before_entry | {"lang": "zh", "ticked": ["passport"]}, today)
        == "none"
    )
    entered = session()
    mark = fingerprint(flows, ALICE, entered, today)
    assert mark not in ("none", "inactive", "erased")
    assert (
        fingerprint(
            flows,
            ALICE,
            entered | {"ticked": ["passport"], "last_seen": "2026-11-25T01:00:00+00:00"},
            today,
        )
        == mark
    )
    later = session(events={"entered": dt.date(2026, 11, 21)})
    assert fingerprint(flows, ALICE, later, today) != mark  # the deadline moved
    assert fingerprint(flows, ALICE, entered | {"reminders_paused": True}, today) == "inactive"
    assert fingerprint(flows, ALICE, None, today) == "erased"
