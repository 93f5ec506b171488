"""A published content version that moves a deadline moves its reminders: the leader plans
them again, and no reminder for the old date goes out after the change."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kvisa.bot.content.versions import ContentSource
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.publishing.conftest import edit, flows_copy, publish
from tests.reminders.conftest import Recorder, ServiceFactory, session
from tests.reminders.test_service import job_args, ledger, until

ALICE = UserKey("telegram", "1001")
__all__ = ["flows_copy"]


async def test_a_shorter_deadline_in_a_new_version_moves_the_reminders_to_its_date(
    sqlite_storage: SqliteStorage, services: ServiceFactory, recorder: Recorder, flows_copy: Path
) -> None:
    await publish(sqlite_storage, flows_copy)  # the baseline: the shipped rules
    await sqlite_storage.put(ALICE, session(), expected_version=0)
    service = await services(sqlite_storage)
    service.deliverer.content = ContentSource(sqlite_storage, service.deliverer.flows, interval=0)
    await service.coordinator.request(ALICE)
    await until(lambda: (job_args(service) or ("",) * 5)[4] == "2026-12-04")
    await until(lambda: len(recorder.to(ALICE)) == 1)  # the 7-day reminder of 4 December
    before = len(recorder.to(ALICE))

    edit(flows_copy / "timeline.yaml", r"calendar_days: 15$", "calendar_days: 10")
    await publish(sqlite_storage, flows_copy)

    await until(lambda: (job_args(service) or ("",) * 5)[4] == "2026-11-30", timeout=60)
    await service.fired(ALICE)  # the old job's time: only what the new date makes due goes out
    await asyncio.sleep(0.05)
    sent = await ledger(sqlite_storage)
    after = [key for key in sent if "2026-12-04" not in key]
    assert after and all("|2026-11-30|" in key for key in after)
    later = recorder.to(ALICE)[before:]
    assert later and all("November 30, 2026" in m.text for m in later)
    assert not any("December 4" in m.text for m in later)
