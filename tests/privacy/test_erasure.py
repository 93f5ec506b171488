"""The registry of what belongs to a user, and its holdings, on real storage and real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvisa.bot.erasure import Erasure, Holding, OwnedValues
from kvisa.bot.holdings import ConsoleAttachments, attachments_dir
from kvisa.errors import ErasureIncomplete, StorageError
from kvisa.identity import UserKey
from tests.privacy.conftest import Backend
from tests.support import Chat, engine_on

ALICE = UserKey("wechat", "oAlice")


async def test_every_holding_is_tried_and_the_failed_ones_named() -> None:
    erased: list[str] = []

    async def works(user: UserKey) -> None:
        erased.append(str(user))

    async def fails(user: UserKey) -> None:
        raise StorageError("down")

    erasure = Erasure([Holding("a", works), Holding("b", fails), Holding("c", works)])

    with pytest.raises(ErasureIncomplete) as failed:
        await erasure.erase(ALICE)

    assert failed.value.names == ["b"]
    assert erased == [str(ALICE)] * 2


def test_a_holding_name_is_registered_once() -> None:
    async def nothing(user: UserKey) -> None:
        return None

    erasure = Erasure([Holding("files", nothing)])
    with pytest.raises(ValueError):
        erasure.register(Holding("files", nothing))


async def test_owned_values_are_listed_expire_with_the_last_and_are_erased(
    backend: Backend,
) -> None:
    owned = OwnedValues(backend.storage)
    await owned.set(ALICE, "wechat:file:a", b"1", ttl=60)
    await owned.set(ALICE, "wechat:file:b", b"2", ttl=600)

    assert await owned.names(ALICE) == ["wechat:file:a", "wechat:file:b"]
    index = {v.name: v async for v in backend.storage.values()}[OwnedValues.index(ALICE)]
    assert index.ttl is not None and 590 < index.ttl <= 600

    await owned.erase(ALICE)
    await owned.erase(ALICE)  # nothing left: nothing happens

    assert [v.name async for v in backend.storage.values()] == []


@pytest.mark.parametrize("garbage", [b"{not json", b"[1, 2]", json.dumps({"x": "soon"}).encode()])
async def test_an_unreadable_list_of_owned_values_is_no_error(
    backend: Backend, garbage: bytes
) -> None:
    await backend.storage.set_value(OwnedValues.index(ALICE), garbage)
    owned = OwnedValues(backend.storage)

    await owned.set(ALICE, "wechat:file:a", b"1", ttl=60)
    await owned.erase(ALICE)

    assert await backend.storage.get_value("wechat:file:a") is None


async def test_console_attachments_are_removed_and_nothing_outside_them(tmp_path: Path) -> None:
    alice = UserKey("console", "alice")
    folder = attachments_dir(tmp_path, alice)
    folder.mkdir(parents=True)
    (folder / "timeline.png").write_bytes(b"png")
    (tmp_path / "kvisa.db").write_bytes(b"db")
    holding = ConsoleAttachments(tmp_path)

    await holding.erase(alice)
    for odd in ("..", ".", "../..", "a/../.."):
        await holding.erase(UserKey("console", odd))

    assert not folder.exists()
    assert (tmp_path / "kvisa.db").read_bytes() == b"db"


async def test_a_failed_holding_makes_delete_apologise_and_delete_again_retries(
    backend: Backend,
) -> None:
    engine = engine_on(backend.storage)
    attempts: list[UserKey] = []

    async def flaky(user: UserKey) -> None:
        attempts.append(user)
        if len(attempts) == 1:
            raise StorageError("down")

    engine.erasure.register(Holding("flaky", flaky))
    chat = Chat(engine, user=ALICE)
    await chat.send("/start")
    await chat.choose("agree")
    await chat.send("/delete")

    await chat.choose("yes")
    assert "Sorry, something went wrong" in chat.text
    assert await chat.state() is None

    await chat.send("/delete")
    assert chat.text == "We store nothing about you."
    assert attempts == [ALICE, ALICE]
