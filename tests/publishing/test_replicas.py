"""Replicas switch to a newly published version between turns, without a restart: every turn
is evaluated against one version and records it; /mydata shows it; a rollback restores the
verdicts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kvisa.bot.content.versions import ContentSource
from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.publishing.conftest import CATALOGS, edit, publish
from tests.support import ACADEMIC, Chat, content

PROOF = "Proof of research achievements or industry influence"
AGED_33 = {**ACADEMIC, "birth_date": "1993-04-27"}


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def engine_with_versions(storage: Storage, ticks: Ticks) -> Engine:
    flows, catalogs = content()
    engine = Engine(flows, catalogs, storage)
    engine.content = ContentSource(storage, flows, interval=1.0, monotonic=ticks)
    return engine


async def version_of(chat: Chat) -> int | None:
    state = await chat.state()
    assert state is not None
    return state.get("content_version")


async def test_a_new_version_is_used_from_the_next_look_and_recorded_with_the_verdict(
    storage: Storage, flows_copy: Path
) -> None:
    await publish(storage, flows_copy)
    ticks = Ticks()
    chat = Chat(engine_with_versions(storage, ticks))
    await chat.interview(**AGED_33)
    await chat.send("/checklist")
    assert PROOF not in chat.text and await version_of(chat) == 1

    edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")
    await publish(storage, flows_copy)
    await chat.send("/checklist")  # within the second: the replica has not looked yet
    assert PROOF not in chat.text and await version_of(chat) == 1
    ticks.now += 1.0
    await chat.send("/checklist")
    assert PROOF in chat.text and await version_of(chat) == 2

    await chat.send("/mydata")
    assert (
        CATALOGS["en"]("Your verdict and dates follow version {version} of our content.", version=2)
        in chat.text
    )


async def test_a_rollback_restores_the_verdicts_of_the_version_it_restores(
    storage: Storage, flows_copy: Path
) -> None:
    await publish(storage, flows_copy)
    edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")
    second = await publish(storage, flows_copy)
    ticks = Ticks()
    chat = Chat(engine_with_versions(storage, ticks))
    await chat.interview(**AGED_33)
    await chat.send("/checklist")
    assert PROOF in chat.text and await version_of(chat) == second.id

    found = await storage.content_version(1)
    assert found is not None
    restored = await storage.publish_content(
        found[1], author="t", note="", sha256=found[0].sha256, published_at=2.0, rollback_of=1
    )
    ticks.now += 1.0
    await chat.send("/checklist")

    assert PROOF not in chat.text and await version_of(chat) == restored.id


async def test_turns_while_a_version_is_published_each_see_one_version(
    storage: Storage, flows_copy: Path
) -> None:
    await publish(storage, flows_copy)
    ticks = Ticks()
    engine = engine_with_versions(storage, ticks)
    chats = [Chat(engine, UserKey("console", f"u{n}")) for n in range(12)]
    for chat in chats:
        await chat.interview(**AGED_33)
    edit(flows_copy / "policy.yaml", r"^  proof_above: 35$", "  proof_above: 30")

    async def publish_meanwhile() -> None:
        await asyncio.sleep(0)
        await publish(storage, flows_copy)
        ticks.now += 1.0

    async def look(chat: Chat) -> tuple[bool, int | None]:
        await asyncio.sleep(0)
        await chat.send("/checklist")
        return PROOF in chat.text, await version_of(chat)

    publisher = asyncio.create_task(publish_meanwhile())
    seen = await asyncio.gather(*(look(chat) for chat in chats))
    await publisher

    assert all(has_proof == (version == 2) for has_proof, version in seen)
    assert {version for _, version in seen} <= {1, 2}


async def test_a_replica_looks_for_a_new_version_at_most_once_an_interval(
    storage: Storage, flows_copy: Path
) -> None:
    flows, _ = content()
    ticks = Ticks()
    source = ContentSource(storage, flows, interval=1.0, monotonic=ticks)
    assert (await source.current()).version is None  # nothing published: the flows dir
    await publish(storage, flows_copy)

    ticks.now += 0.5
    assert (await source.current()).version is None
    ticks.now += 0.5
    assert (await source.current()).version == 1
