"""A content change per kind: exactly the applicants it concerns are told, once, in their
language first, with their old and new values and the source; the others hear nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.applicants import forward
from kvisa.bot.broadcasts.runner import BroadcastRunner
from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.clock import FixedClock
from kvisa.bot.i18n import SEPARATOR
from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer
from kvisa.bot.publishing.job import run_pending
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.publishing.conftest import CATALOGS, applicant, edit, publish, store

NOW = dt.datetime(2026, 12, 2, 4, 0, tzinfo=dt.UTC)  # noon in Shanghai
EN, ZH = CATALOGS["en"], CATALOGS["zh"]
Edit = Callable[[Path], None]


async def change(
    storage: Storage, flows: Path, people: dict[str, dict[str, Any]], edit_flows: Edit
) -> tuple[Broadcast, dict[str, str]]:
    """Store `people`, publish the flows as they are (the baseline), edit and publish again,
    run the change job: the notices queued, by applicant."""
    await store(storage, people)
    await publish(storage, flows)
    assert await run_pending(storage, CATALOGS, NOW) is None  # the first version tells nobody
    edit_flows(flows)
    await publish(storage, flows)
    broadcast = await run_pending(storage, CATALOGS, NOW)
    assert broadcast is not None and broadcast.kind == "notice"
    messages: dict[str, str] = {}
    for n in range(broadcast.chunks):
        messages.update(await BroadcastStore(storage).messages(broadcast.id, n))
    return broadcast, messages


def halves(message: str) -> tuple[str, str]:
    first, second = message.split(SEPARATOR)
    return first, second


async def test_age_practice_tells_only_those_now_needing_proof(
    storage: Storage, flows_copy: Path
) -> None:
    people = {
        "32en": applicant("en", birth_date="1994-06-01"),
        "32zh": applicant("zh", birth_date="1994-06-01"),
        "28": applicant("en", birth_date="1998-06-01"),
    }

    def younger_proof(flows: Path) -> None:
        edit(flows / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")

    broadcast, messages = await change(storage, flows_copy, people, younger_proof)

    assert set(messages) == {"telegram:32en", "telegram:32zh"}
    assert broadcast.total == 2
    item = "Proof of research achievements or industry influence"
    english, chinese = halves(messages["telegram:32en"])
    assert EN("New on your checklist: {items}", items=item) in english
    assert ZH("New on your checklist: {items}", items=ZH(item)) in chinese
    first, second = halves(messages["telegram:32zh"])  # Chinese first
    assert ZH(item) in first and item in second
    source = EN(
        "Source: {title} (checked {date}).",
        title="Agency guide: K-type visa and the Shanghai one-stop work permit process (2026)",
        date=EN.date(dt.date(2026, 11, 25)),
    )
    assert source in english


async def test_a_processing_time_moves_the_dates_of_those_waiting_for_it(
    storage: Storage, flows_copy: Path
) -> None:
    waiting = {"entered": "2026-11-10", "work_permit_submitted": "2026-11-16"}
    people = {
        "other": applicant("en", events=waiting, park="other"),
        "zhangjiang": applicant("en", events=waiting, park="zhangjiang"),  # its own 3-5 days
        "not_yet": applicant("zh", events={"entered": "2026-11-20"}),
    }

    def slower(flows: Path) -> None:
        edit(flows / "timeline.yaml", r"working_days: \[7, 10\]", "working_days: [7, 12]")

    _, messages = await change(storage, flows_copy, people, slower)

    assert set(messages) == {"telegram:other"}
    english, _ = halves(messages["telegram:other"])
    old = f"{EN.date(dt.date(2026, 11, 25))} – {EN.date(dt.date(2026, 11, 30))}"
    new = f"{EN.date(dt.date(2026, 11, 25))} – {EN.date(dt.date(2026, 12, 2))}"
    assert f"Work permit decision expected: {old} → {new}" in english
    record = await storage.get(UserKey("telegram", "other"))
    assert record is not None and record.data["content_version"] == 2
    untouched = await storage.get(UserKey("telegram", "zhangjiang"))
    assert untouched is not None and untouched.data.get("content_version") is None


async def test_a_park_perk_for_everyone_tells_those_who_did_not_have_it(
    storage: Storage, flows_copy: Path
) -> None:
    people = {
        "employed": applicant("zh", park="lingang", plan="employed"),
        "founder": applicant("en", park="lingang", plan="startup"),  # had it already
        "zhangjiang": applicant("en", park="zhangjiang", plan="research"),
    }

    def subsidy_for_all(flows: Path) -> None:
        edit(flows / "parks.yaml", r"^        when: \{plan: \[startup\]\}\n", "")

    _, messages = await change(storage, flows_copy, people, subsidy_for_all)

    assert set(messages) == {"telegram:employed"}
    chinese, english = halves(messages["telegram:employed"])
    detail = (
        "K visa holders who start a business in the park can apply for a one-time subsidy of "
        "50,000 to 100,000 yuan."
    )
    assert f"Park perk “Start-up subsidy”: {detail}" in english
    assert ZH(detail) in chinese


async def test_a_checklist_item_for_more_plans_tells_exactly_those_plans(
    storage: Storage, flows_copy: Path
) -> None:
    people = {
        "research": applicant("en", plan="research"),
        "startup": applicant("en", plan="startup"),
        "employed": applicant("zh", plan="employed"),
    }

    def plan_for_researchers(flows: Path) -> None:
        path = flows / "checklist.yaml"
        edit(
            path,
            r"(id: business_plan\n    step: work_permit\n    when: \{plan: \[startup)\]\}",
            r"\1, research]}",
        )

    _, messages = await change(storage, flows_copy, people, plan_for_researchers)

    assert set(messages) == {"telegram:research"}
    english, _ = halves(messages["telegram:research"])
    assert "New on your checklist: Business plan" in english


async def test_a_holiday_schedule_with_a_make_up_day_makes_dates_firm_and_tells_their_owners(
    storage: Storage, flows_copy: Path
) -> None:
    people = {
        "december": applicant(
            "en", events={"entered": "2026-12-20", "work_permit_submitted": "2026-12-28"}
        ),
        "planning": applicant("en"),
        "entered": applicant("zh", events={"entered": "2026-11-20"}),
    }

    def schedule_2027(flows: Path) -> None:
        (flows / "calendar.yaml").write_text(
            "years:\n"
            "  - year: 2027\n"
            "    official: true\n"
            '    notice: "Holiday notice for 2027 (a test fixture)"\n'
            "    holidays:\n"
            "      - en: New Year's Day\n"
            "        zh: 元旦\n"
            "        from: 2027-01-01\n"
            "        to: 2027-01-03\n"
            "        workdays: [2027-01-09]\n",
            encoding="utf-8",
        )

    _, messages = await change(storage, flows_copy, people, schedule_2027)

    assert set(messages) == {"telegram:december"}
    english, _ = halves(messages["telegram:december"])
    old = EN(
        "{dates} (estimate)",
        dates=f"{EN.date(dt.date(2027, 1, 7))} – {EN.date(dt.date(2027, 1, 12))}",
    )
    new = f"{EN.date(dt.date(2027, 1, 7))} – {EN.date(dt.date(2027, 1, 11))}"
    assert f"Work permit decision expected: {old} → {new}" in english
    assert "Source: Holiday notice for 2027 (a test fixture)." in english


async def test_a_linked_applicant_is_one_applicant_and_gets_one_notice(
    storage: Storage, flows_copy: Path
) -> None:
    founder = UserKey("telegram", "linked")
    people = {"linked": applicant("en", birth_date="1994-06-01")}
    people["linked"]["identities"] = ["telegram:linked", "wechat:olinked"]
    await storage.put(
        UserKey("wechat", "olinked"),
        forward(founder, "theirs", "l1", applicant("zh", birth_date="1994-06-01"), NOW),
        expected_version=0,
    )

    def younger_proof(flows: Path) -> None:
        edit(flows / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")

    broadcast, messages = await change(storage, flows_copy, people, younger_proof)

    assert list(messages) == ["telegram:linked"] and broadcast.total == 1


@dataclass
class Platform:
    """Records each message sent, by identity; a `gate` holds sends until opened."""

    sent: list[tuple[UserKey, str]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        await self.gate.wait()
        self.sent += [(user, m.text) for m in messages]


def runner(storage: Storage, platform: Platform) -> BroadcastRunner:
    return BroadcastRunner(
        BroadcastStore(storage),
        CATALOGS,
        FixedClock(NOW),
        {"telegram": platform.send, "wechat": platform.send},
        {"telegram": Pacer(1000.0), "wechat": Pacer(1000.0)},
        BroadcastSettings(poll_interval=0.05, progress_interval=0.05),
    )


async def finished(storage: Storage, broadcast_id: str) -> Broadcast:
    async with asyncio.timeout(20):
        while (b := await BroadcastStore(storage).get(broadcast_id)) is None or b.status != "done":
            await asyncio.sleep(0.02)
    return b


@pytest.mark.parametrize("crash_after", [0, 3])
async def test_notices_go_once_even_to_those_who_opted_out_and_resume_after_a_crash(
    storage: Storage, flows_copy: Path, crash_after: int
) -> None:
    people = {f"p{n}": applicant("en", birth_date="1994-06-01") for n in range(8)}
    people["p0"]["news_off"] = True  # a change to one's own case is service, not news
    people["young"] = applicant("en", birth_date="1998-06-01")

    def younger_proof(flows: Path) -> None:
        edit(flows / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")

    broadcast, messages = await change(storage, flows_copy, people, younger_proof)
    bstore = BroadcastStore(storage)
    if crash_after:  # as a process killed mid-send left it: some sent, one on the wire
        states = await bstore.chunk(broadcast.id, 0)
        names = sorted(states)
        for name in names[:crash_after]:
            states[name] = "sent"
        states[names[crash_after]] = "sending"
        await bstore.save_chunk(broadcast.id, 0, states)
    # The job running again (kvisa serve after a crash of the command) queues nothing new.
    assert await run_pending(storage, CATALOGS, NOW) is None
    platform = Platform()
    platform.gate.set()
    service = runner(storage, platform)
    await service.start()
    try:
        done = await finished(storage, broadcast.id)
    finally:
        await service.stop()

    receivers = [str(user) for user, _ in platform.sent]
    assert len(receivers) == len(set(receivers)) == 8 - (crash_after + 1 if crash_after else 0)
    assert "telegram:young" not in receivers
    assert all(text == messages[str(user)] for user, text in platform.sent)
    assert done.counts.get("uncertain", 0) == (1 if crash_after else 0)
    assert done.counts.get("sent", 0) == 8 - (1 if crash_after else 0)
