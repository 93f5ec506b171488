"""The storage contract, run against every backend (see conftest.py for the parametrisation)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kvisa.errors import ContentConflict
from kvisa.identity import UserKey
from kvisa.storage import Storage
from kvisa.storage.base import FOREVER, JSON, AlreadyClaimed, ContentVersion, Once

StorageFactory = Callable[[], Storage]
Change = Callable[[JSON | None], tuple[JSON | None, int]]

ALICE = UserKey("telegram", "1001")
BOB = UserKey("wechat", "oAbC-xyz_123")

PROFILE: JSON = {
    "lang": "zh",
    "name": "张伟",
    "answers": {"学历": "硕士", "field": "STEM"},
    "steps": [1, 2, 3],
    "emoji": "🇨🇳",
}


def append(item: str) -> Change:
    """A change that appends `item` to the record's list and returns the new length."""

    def change(data: JSON | None) -> tuple[JSON | None, int]:
        items = [*(data or {}).get("items", []), item]
        return {"items": items}, len(items)

    return change


class TestStorageContract:
    async def test_unknown_user_has_no_record(self, storage: Storage) -> None:
        assert await storage.get(ALICE) is None

    async def test_put_then_get_roundtrips_unicode_data(self, storage: Storage) -> None:
        assert await storage.put(ALICE, PROFILE, expected_version=0)

        record = await storage.get(ALICE)

        assert record is not None
        assert record.data == PROFILE
        assert record.version >= 1

    async def test_every_write_bumps_the_version(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        first = await storage.get(ALICE)
        assert first is not None

        assert await storage.put(ALICE, {"n": 2}, expected_version=first.version)

        second = await storage.get(ALICE)
        assert second is not None
        assert second.version > first.version
        assert second.data == {"n": 2}

    async def test_write_with_stale_version_is_rejected(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        stale = await storage.get(ALICE)
        assert stale is not None
        await storage.put(ALICE, {"n": 2}, expected_version=stale.version)

        assert not await storage.put(ALICE, {"n": 3}, expected_version=stale.version)

        current = await storage.get(ALICE)
        assert current is not None
        assert current.data == {"n": 2}

    async def test_create_is_rejected_when_a_record_exists(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)

        assert not await storage.put(ALICE, {"n": 2}, expected_version=0)

        current = await storage.get(ALICE)
        assert current is not None
        assert current.data == {"n": 1}

    async def test_write_expecting_a_version_of_a_missing_record_is_rejected(
        self, storage: Storage
    ) -> None:
        assert not await storage.put(ALICE, {"n": 1}, expected_version=1)

        assert await storage.get(ALICE) is None

    async def test_delete_with_current_version_removes_the_record(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        record = await storage.get(ALICE)
        assert record is not None

        assert await storage.put(ALICE, None, expected_version=record.version)

        assert await storage.get(ALICE) is None

    async def test_delete_with_stale_version_keeps_the_record(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        stale = await storage.get(ALICE)
        assert stale is not None
        await storage.put(ALICE, {"n": 2}, expected_version=stale.version)

        assert not await storage.put(ALICE, None, expected_version=stale.version)

        current = await storage.get(ALICE)
        assert current is not None
        assert current.data == {"n": 2}

    async def test_delete_expecting_nothing_succeeds_only_when_nothing_is_stored(
        self, storage: Storage
    ) -> None:
        assert await storage.put(ALICE, None, expected_version=0)
        await storage.put(ALICE, {"n": 1}, expected_version=0)

        assert not await storage.put(ALICE, None, expected_version=0)

        assert await storage.get(ALICE) is not None

    async def test_a_write_expecting_a_version_from_before_a_delete_is_rejected(
        self, open_backend: StorageFactory
    ) -> None:
        # The ABA case: process A reads the record and computes a turn; meanwhile process B
        # erases the user (who asked for it) and the user starts over. A's write, built from
        # the erased data, must not land on the new record.
        a, b = open_backend(), open_backend()
        await b.put(ALICE, {"name": "erased"}, expected_version=0)
        stale = await a.get(ALICE)
        assert stale is not None
        assert await b.put(ALICE, None, expected_version=stale.version)
        assert await b.put(ALICE, {"name": "fresh"}, expected_version=0)

        assert not await a.put(ALICE, {"name": "erased", "turn": 2}, expected_version=stale.version)

        current = await b.get(ALICE)
        assert current is not None
        assert current.data == {"name": "fresh"}
        assert current.version > stale.version

    async def test_a_delete_expecting_a_version_from_before_a_delete_is_rejected(
        self, open_backend: StorageFactory
    ) -> None:
        a, b = open_backend(), open_backend()
        await b.put(ALICE, {"name": "erased"}, expected_version=0)
        stale = await a.get(ALICE)
        assert stale is not None
        assert await b.put(ALICE, None, expected_version=stale.version)
        assert await b.put(ALICE, {"name": "fresh"}, expected_version=0)

        assert not await a.put(ALICE, None, expected_version=stale.version)

        current = await b.get(ALICE)
        assert current is not None
        assert current.data == {"name": "fresh"}

    async def test_versions_of_a_key_keep_rising_across_deletes(self, storage: Storage) -> None:
        versions: list[int] = []
        for n in range(3):
            assert await storage.put(ALICE, {"n": n}, expected_version=0)
            created = await storage.get(ALICE)
            assert created is not None
            assert await storage.put(
                ALICE, {"n": n, "edited": True}, expected_version=created.version
            )
            edited = await storage.get(ALICE)
            assert edited is not None
            assert await storage.put(ALICE, None, expected_version=edited.version)
            versions += [created.version, edited.version]

        assert versions == sorted(set(versions))  # strictly increasing: none repeats

    async def test_users_lists_exactly_the_stored_users(self, storage: Storage) -> None:
        carol = UserKey("console", "carol:with:colons")
        gone = UserKey("telegram", "2002")
        for key in (ALICE, BOB, carol, gone):
            await storage.put(key, {"hi": "你好"}, expected_version=0)
        record = await storage.get(gone)
        assert record is not None
        await storage.put(gone, None, expected_version=record.version)
        await storage.claim("not-a-user", ttl=60)

        users = [key async for key in storage.users()]

        assert sorted(users) == sorted([ALICE, BOB, carol])

    async def test_users_of_an_empty_storage_is_empty(self, storage: Storage) -> None:
        assert [key async for key in storage.users()] == []

    async def test_records_lists_every_stored_record_with_its_version(
        self, storage: Storage
    ) -> None:
        gone = UserKey("telegram", "2002")
        for key in (ALICE, BOB, gone):
            await storage.put(key, {**PROFILE, "who": str(key)}, expected_version=0)
        record = await storage.get(gone)
        assert record is not None
        await storage.put(gone, None, expected_version=record.version)
        await storage.set_value("not-a-user", b"x")

        listed = {key: record async for key, record in storage.records()}

        assert sorted(listed) == sorted([ALICE, BOB])
        for key, record in listed.items():
            assert record == await storage.get(key)

    async def test_records_reads_past_one_page(self, storage: Storage) -> None:
        keys = [UserKey("telegram", str(n)) for n in range(1234)]
        await asyncio.gather(*(storage.put(key, {"n": key.id}, expected_version=0) for key in keys))

        listed = [(key, record.data) async for key, record in storage.records()]

        assert sorted(listed) == sorted((key, {"n": key.id}) for key in keys)

    async def test_values_lists_live_values_with_their_time_left(self, storage: Storage) -> None:
        picture = b"\x89PNG\r\n\x1a\n\x00\xff" + "日程".encode()
        await storage.set_value("bc:index", b'["a1b2c3"]')
        await storage.set_value("wechat:file:x", picture, ttl=600)
        await storage.set_value("short", b"gone soon", ttl=0.1)
        await storage.set_value("deleted", b"x")
        await storage.delete_value("deleted")
        await storage.claim("a-claim-is-no-value", ttl=60)
        await asyncio.sleep(0.2)

        values = {value.name: value async for value in storage.values()}

        assert sorted(values) == ["bc:index", "wechat:file:x"]
        assert values["bc:index"].value == b'["a1b2c3"]'
        assert values["bc:index"].ttl is None
        assert values["wechat:file:x"].value == picture
        assert values["wechat:file:x"].ttl is not None and 590 < values["wechat:file:x"].ttl <= 600

    async def test_values_reads_past_one_page(self, storage: Storage) -> None:
        names = [f"bc:a1b2c3:r:{n}" for n in range(1234)]
        await asyncio.gather(*(storage.set_value(name, name.encode()) for name in names))

        listed = sorted([(value.name, value.value) async for value in storage.values()])

        assert listed == sorted((name, name.encode()) for name in names)

    async def test_claims_lists_claims_still_taken_with_their_time_left(
        self, storage: Storage
    ) -> None:
        await storage.claim("reminder:telegram:1001:visa:7", ttl=300)
        await storage.claim("short", ttl=0.1)
        await storage.claim("released", ttl=60)
        await storage.release("released")
        await storage.set_value("a-value-is-no-claim", b"x")
        await asyncio.sleep(0.2)

        claims = [claim async for claim in storage.claims()]

        assert [claim.name for claim in claims] == ["reminder:telegram:1001:visa:7"]
        assert 290 < claims[0].ttl <= 300

    async def test_claims_reads_past_one_page(self, storage: Storage) -> None:
        names = {f"telegram:1:update:{n}" for n in range(1234)}
        await asyncio.gather(*(storage.claim(name, ttl=60) for name in names))

        assert {claim.name async for claim in storage.claims()} == names

    async def test_an_empty_storage_lists_no_records_values_or_claims(
        self, storage: Storage
    ) -> None:
        assert [r async for r in storage.records()] == []
        assert [v async for v in storage.values()] == []
        assert [c async for c in storage.claims()] == []

    async def test_claim_is_first_wins_across_instances(self, open_backend: StorageFactory) -> None:
        first, second = open_backend(), open_backend()

        results = await asyncio.gather(
            *(s.claim("reminder:1001:2025-10-01", ttl=60) for s in [first, second] * 5)
        )

        assert sorted(results) == [False] * 9 + [True]

    async def test_claim_can_be_taken_again_after_its_ttl(self, storage: Storage) -> None:
        assert await storage.claim("update:42", ttl=0.2)
        assert not await storage.claim("update:42", ttl=0.2)

        await asyncio.sleep(0.3)

        assert await storage.claim("update:42", ttl=0.2)

    async def test_claims_with_different_names_are_independent(self, storage: Storage) -> None:
        assert await storage.claim("a", ttl=60)
        assert await storage.claim("b", ttl=60)

    async def test_release_lets_a_claim_be_taken_again_at_once(
        self, open_backend: StorageFactory
    ) -> None:
        holder, other = open_backend(), open_backend()
        assert await holder.claim("lock:token", ttl=60)
        assert not await other.claim("lock:token", ttl=60)

        await holder.release("lock:token")

        assert await other.claim("lock:token", ttl=60)

    async def test_releasing_an_unclaimed_name_is_harmless(self, storage: Storage) -> None:
        await storage.release("never-claimed")

        assert await storage.claim("never-claimed", ttl=60)

    async def test_a_value_roundtrips_bytes_that_are_not_text(self, storage: Storage) -> None:
        picture = b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + "日程".encode()

        await storage.set_value("file:abc", picture, ttl=60)

        assert await storage.get_value("file:abc") == picture

    async def test_an_unknown_value_is_none(self, storage: Storage) -> None:
        assert await storage.get_value("nothing-here") is None

    async def test_setting_a_value_again_replaces_it(self, storage: Storage) -> None:
        await storage.set_value("token", b"old", ttl=60)

        await storage.set_value("token", b"new", ttl=60)

        assert await storage.get_value("token") == b"new"

    async def test_a_value_is_seen_by_every_instance(self, open_backend: StorageFactory) -> None:
        writer, reader = open_backend(), open_backend()

        await writer.set_value("token", b"shared", ttl=60)

        assert await reader.get_value("token") == b"shared"

    async def test_a_value_expires_after_its_ttl(self, storage: Storage) -> None:
        await storage.set_value("token", b"short-lived", ttl=0.2)
        assert await storage.get_value("token") == b"short-lived"

        await asyncio.sleep(0.3)

        assert await storage.get_value("token") is None

    async def test_a_counter_counts_across_storages_and_starts_again_once_expired(
        self, open_backend: StorageFactory
    ) -> None:
        one, two = open_backend(), open_backend()
        counts = await asyncio.gather(*(s.count("tries", 0.3) for s in [one, two] * 10))
        assert sorted(counts) == list(range(1, 21))  # atomic: each count once
        assert await one.get_value("tries") == b"20"

        await asyncio.sleep(0.4)  # its expiry ran from the first count

        assert await two.get_value("tries") is None
        assert await one.count("tries", 60) == 1

    async def test_a_value_without_ttl_does_not_expire(self, storage: Storage) -> None:
        await storage.set_value("setting", b"kept", ttl=None)
        await storage.set_value("other", b"short", ttl=0.1)

        await asyncio.sleep(0.2)

        assert await storage.get_value("setting") == b"kept"

    async def test_setting_a_value_without_ttl_removes_its_old_expiry(
        self, storage: Storage
    ) -> None:
        await storage.set_value("setting", b"first", ttl=0.1)
        await storage.set_value("setting", b"second")

        await asyncio.sleep(0.2)

        assert await storage.get_value("setting") == b"second"

    async def test_delete_value_forgets_it_and_deleting_nothing_is_harmless(
        self, storage: Storage
    ) -> None:
        await storage.set_value("file:abc", b"data", ttl=60)

        await storage.delete_value("file:abc")
        await storage.delete_value("file:abc")

        assert await storage.get_value("file:abc") is None

    async def test_values_and_claims_of_one_name_are_independent(self, storage: Storage) -> None:
        await storage.set_value("same", b"value", ttl=60)

        assert await storage.claim("same", ttl=60)
        await storage.release("same")
        assert await storage.get_value("same") == b"value"

    async def test_values_are_not_users(self, storage: Storage) -> None:
        await storage.set_value("token", b"x", ttl=60)

        assert [key async for key in storage.users()] == []

    @pytest.mark.parametrize("ttl", [0, -1])
    async def test_a_value_ttl_that_is_not_positive_is_refused(
        self, storage: Storage, ttl: float
    ) -> None:
        with pytest.raises(ValueError):
            await storage.set_value("token", b"x", ttl=ttl)

    async def test_update_applies_the_change_and_returns_its_result(self, storage: Storage) -> None:
        assert await storage.update(ALICE, append("签证")) == 1
        assert await storage.update(ALICE, append("permit")) == 2

        record = await storage.get(ALICE)
        assert record is not None
        assert record.data == {"items": ["签证", "permit"]}

    async def test_update_returning_none_deletes_the_record(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)

        result = await storage.update(ALICE, lambda data: (None, "forgotten"))

        assert result == "forgotten"
        assert await storage.get(ALICE) is None

    async def test_update_returning_the_same_data_writes_nothing(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        before = await storage.get(ALICE)

        result = await storage.update(ALICE, lambda data: (data, "unchanged"))

        assert result == "unchanged"
        assert await storage.get(ALICE) == before

    async def test_concurrent_updates_from_two_instances_lose_no_write(
        self, open_backend: StorageFactory
    ) -> None:
        # Two instances stand for two processes: only the backend's compare-and-set can
        # serialise them, not any lock inside one Python object.
        first, second = open_backend(), open_backend()
        items = [f"item-{n}" for n in range(100)]
        writers = [first, second] * 50

        # Each failed compare-and-set means another writer committed, so no writer can fail
        # more often than there are others: this many attempts always suffice, however slow
        # the machine (the default budget is for users, not for 100 writers on one key).
        await asyncio.gather(
            *(
                w.update(ALICE, append(item), attempts=len(items))
                for w, item in zip(writers, items, strict=True)
            )
        )

        record = await first.get(ALICE)
        assert record is not None
        assert sorted(record.data["items"]) == sorted(items)

    async def test_update_once_applies_the_change_and_takes_the_claim(
        self, storage: Storage
    ) -> None:
        assert await storage.update(ALICE, append("签证"), once=Once("msg:1", ttl=60)) == 1

        record = await storage.get(ALICE)
        assert record is not None and record.data == {"items": ["签证"]}
        assert not await storage.claim("msg:1", ttl=60)  # one namespace with claim()

    async def test_update_once_whose_claim_is_taken_changes_nothing(self, storage: Storage) -> None:
        await storage.update(ALICE, append("first"), once=Once("msg:1", ttl=60))

        with pytest.raises(AlreadyClaimed):
            await storage.update(ALICE, append("again"), once=Once("msg:1", ttl=60))

        record = await storage.get(ALICE)
        assert record is not None and record.data == {"items": ["first"]}

    async def test_update_once_honours_a_name_taken_by_claim(self, storage: Storage) -> None:
        assert await storage.claim("msg:1", ttl=60)

        with pytest.raises(AlreadyClaimed):
            await storage.update(ALICE, append("x"), once=Once("msg:1", ttl=60))

        assert await storage.get(ALICE) is None

    async def test_update_once_takes_the_claim_even_when_nothing_changes(
        self, storage: Storage
    ) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0)

        result = await storage.update(
            ALICE, lambda data: (data, "unchanged"), once=Once("msg:1", ttl=60)
        )

        assert result == "unchanged"
        with pytest.raises(AlreadyClaimed):
            await storage.update(
                ALICE, lambda data: (data, "unchanged"), once=Once("msg:1", ttl=60)
            )

    @pytest.mark.parametrize("ttl", [0, -1])
    async def test_update_once_refuses_a_ttl_that_is_not_positive(
        self, storage: Storage, ttl: float
    ) -> None:
        with pytest.raises(ValueError):
            await storage.update(ALICE, append("x"), once=Once("msg:1", ttl=ttl))

    async def test_an_update_once_that_fails_leaves_the_claim_free(self, storage: Storage) -> None:
        def broken(data: JSON | None) -> tuple[JSON | None, int]:
            raise RuntimeError("a bug in the change")

        with pytest.raises(RuntimeError):
            await storage.update(ALICE, broken, once=Once("msg:1", ttl=60))

        # Nothing was applied, so a second delivery of the message is handled normally.
        assert await storage.update(ALICE, append("retried"), once=Once("msg:1", ttl=60)) == 1

    async def test_the_same_update_once_from_two_instances_is_applied_once(
        self, open_backend: StorageFactory
    ) -> None:
        # Two processes handling the same message at the same time (WeChat retried it).
        first, second = open_backend(), open_backend()
        await first.update(ALICE, append("before"))
        await second.get(ALICE)

        outcomes = await asyncio.gather(
            *(
                s.update(ALICE, append("message"), once=Once("msg:7", ttl=60))
                for s in [first, second] * 5
            ),
            return_exceptions=True,
        )

        assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyClaimed"] * 9 + ["int"]
        record = await first.get(ALICE)
        assert record is not None and record.data == {"items": ["before", "message"]}

    async def test_updates_see_what_another_instance_wrote_in_between(
        self, open_backend: StorageFactory
    ) -> None:
        ours, theirs = open_backend(), open_backend()
        await ours.update(ALICE, append("ours"))
        await theirs.update(ALICE, append("theirs"))

        # What `ours` last saw is out of date: neither a change nor a mere read may miss "theirs".
        seen = await ours.update(ALICE, lambda data: (data, list((data or {})["items"])))
        assert seen == ["ours", "theirs"]
        assert await ours.update(ALICE, append("ours again")) == 3
        record = await theirs.get(ALICE)
        assert record is not None
        assert await theirs.put(ALICE, None, expected_version=record.version)  # erased there

        assert await ours.update(ALICE, lambda data: (data, data)) is None
        assert await ours.update(ALICE, append("anew")) == 1

    async def test_a_record_survives_closing_and_reopening(
        self, open_backend: StorageFactory
    ) -> None:
        before = open_backend()
        await before.put(ALICE, PROFILE, expected_version=0)
        await before.close()

        after = open_backend()

        record = await after.get(ALICE)
        assert record is not None
        assert record.data == PROFILE

    # --- records that expire (a user who has not consented) --------------------------------

    async def test_a_record_with_a_ttl_is_gone_after_it(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=0.2)
        await storage.put(BOB, {"n": 1}, expected_version=0)
        assert await storage.get(ALICE) is not None

        await asyncio.sleep(0.3)

        assert await storage.get(ALICE) is None
        assert [key async for key in storage.users()] == [BOB]
        assert [key async for key, _ in storage.records()] == [BOB]

    async def test_records_lists_each_records_time_left(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=600)
        await storage.put(BOB, {"n": 1}, expected_version=0)

        listed = {key: record.ttl async for key, record in storage.records()}

        assert listed[BOB] is None
        assert listed[ALICE] is not None and 590 < listed[ALICE] <= 600

    async def test_a_write_without_ttl_keeps_the_expiry(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=0.3)
        await storage.update(ALICE, lambda data: ({"n": 2}, None))

        await asyncio.sleep(0.4)

        assert await storage.get(ALICE) is None

    async def test_a_write_with_forever_removes_the_expiry(self, storage: Storage) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=0.2)
        record = await storage.get(ALICE)
        assert record is not None
        assert await storage.put(ALICE, {"n": 2}, expected_version=record.version, ttl=FOREVER)

        await asyncio.sleep(0.3)

        kept = await storage.get(ALICE)
        assert kept is not None and kept.data == {"n": 2}

    async def test_update_takes_the_ttl_from_the_data_it_writes(self, storage: Storage) -> None:
        def lifetime(data: JSON) -> float:
            return FOREVER if data.get("consented") else 0.2

        await storage.update(ALICE, lambda data: ({"asked": True}, None), ttl=lifetime)
        await storage.update(BOB, lambda data: ({"asked": True}, None), ttl=lifetime)
        await storage.update(BOB, lambda data: ({"consented": True}, None), ttl=lifetime)

        await asyncio.sleep(0.3)

        assert await storage.get(ALICE) is None
        assert await storage.get(BOB) is not None

    async def test_an_expired_record_is_created_anew_with_a_higher_version(
        self, storage: Storage
    ) -> None:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=0.2)
        old = await storage.get(ALICE)
        assert old is not None
        await asyncio.sleep(0.3)

        assert not await storage.put(ALICE, {"n": 2}, expected_version=old.version)
        assert await storage.put(ALICE, {"n": 3}, expected_version=0)

        new = await storage.get(ALICE)
        assert new is not None and new.data == {"n": 3} and new.version > old.version

    @pytest.mark.parametrize("ttl", [0, -1])
    async def test_a_record_ttl_that_is_not_positive_is_refused(
        self, storage: Storage, ttl: float
    ) -> None:
        with pytest.raises(ValueError):
            await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=ttl)
        with pytest.raises(ValueError):
            await storage.update(ALICE, lambda data: ({"n": 1}, None), ttl=lambda data: ttl)

        assert await storage.get(ALICE) is None

    async def test_ping_succeeds_on_a_working_backend(self, storage: Storage) -> None:
        await storage.ping()

    async def test_close_can_be_called_twice(self, storage: Storage) -> None:
        await storage.ping()

        await storage.close()
        await storage.close()


class TestContentVersionsContract:
    async def test_no_version_is_current_before_the_first_publish(self, storage: Storage) -> None:
        assert await storage.current_content_id() is None
        assert await storage.content_versions() == []
        assert await storage.content_version(1) is None

    async def test_publish_stores_content_and_metadata_and_makes_it_current(
        self, storage: Storage
    ) -> None:
        content = "policy: 年龄 18-35\n".encode() + bytes(range(256))

        version = await storage.publish_content(
            content, author="mei", note="first", sha256="ab" * 32, published_at=1_790_000_000.5
        )

        assert await storage.current_content_id() == version.id
        stored = await storage.content_version(version.id)
        assert stored == (version, content)
        assert version.author == "mei" and version.note == "first"
        assert version.published_at == 1_790_000_000.5 and version.rollback_of is None

    async def test_ids_grow_and_the_last_published_is_current(self, storage: Storage) -> None:
        first = await storage.publish_content(
            b"a", author="a", note="", sha256="1", published_at=1.0
        )
        second = await storage.publish_content(
            b"b", author="b", note="", sha256="2", published_at=2.0, rollback_of=first.id
        )

        assert second.id > first.id
        assert await storage.current_content_id() == second.id
        assert await storage.content_versions() == [first, second]
        assert second.rollback_of == first.id

    async def test_concurrent_publishes_from_two_processes_get_distinct_ids(
        self, open_backend: StorageFactory
    ) -> None:
        one, two = open_backend(), open_backend()

        versions = await asyncio.gather(
            *(
                s.publish_content(
                    f"{n}".encode(), author="x", note="", sha256=str(n), published_at=n
                )
                for n, s in enumerate([one, two] * 5)
            )
        )

        ids = sorted(v.id for v in versions)
        assert len(set(ids)) == 10
        assert await one.current_content_id() == ids[-1]
        assert [v.id for v in await two.content_versions()] == ids
        for version in versions:
            assert await two.content_version(version.id) == (version, version.sha256.encode())

    async def test_restore_puts_versions_back_under_their_own_ids(self, storage: Storage) -> None:
        first = ContentVersion(2, 1_790_000_000.123, "mei", "first", "ab" * 32)
        rollback = ContentVersion(5, 1_790_000_100.5, "staff:li", "back", "ab" * 32, 2)
        content = "policy: 年龄\n".encode() + bytes(range(256))

        assert await storage.restore_content([(first, content), (rollback, content)]) == 2

        assert await storage.content_versions() == [first, rollback]
        assert await storage.content_version(5) == (rollback, content)
        assert await storage.current_content_id() == 5
        later = await storage.publish_content(
            b"c", author="x", note="", sha256="3", published_at=1_790_000_200.0
        )
        assert later.id == 6 and await storage.current_content_id() == 6

    async def test_restoring_what_is_stored_already_changes_nothing(self, storage: Storage) -> None:
        one = await storage.publish_content(b"a", author="a", note="", sha256="1", published_at=1)
        two = ContentVersion(2, 2.0, "b", "", "2")

        assert await storage.restore_content([(one, b"a"), (two, b"b")]) == 1
        assert await storage.restore_content([(one, b"a"), (two, b"b")]) == 0

        assert await storage.content_versions() == [one, two]
        assert await storage.current_content_id() == 2

    async def test_restore_refuses_an_id_holding_another_version_and_writes_nothing(
        self, storage: Storage
    ) -> None:
        ours = await storage.publish_content(b"a", author="a", note="", sha256="1", published_at=1)
        theirs = ContentVersion(ours.id, 1.0, "someone else", "", "1")
        newer = ContentVersion(ours.id + 1, 2.0, "b", "", "2")

        with pytest.raises(ContentConflict) as refused:
            await storage.restore_content([(newer, b"b"), (theirs, b"a")])

        assert refused.value.version_id == ours.id
        assert await storage.content_versions() == [ours]
        assert await storage.current_content_id() == ours.id
