"""Export and import on both backends: round trips, merge, and every kind of bad file."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from kvisa.bot.content.versions import ContentSource, Packed
from kvisa.bot.data.format import SCHEMA, ContentEntry, encode_entry
from kvisa.bot.data.transfer import (
    DERIVED,
    MAX_PROBLEMS,
    Imported,
    TransferError,
    export_store,
    import_file,
    migrate,
)
from kvisa.bot.reminders.service import RULES_KEY
from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage import Storage
from kvisa.storage.base import JSON, ContentVersion
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.data.conftest import ALICE, BOB, CAROL, StoreFactory, fill, shipped, snapshot
from tests.support import content as shipped_flows


async def export(storage: Storage, path: Path) -> dict[str, int]:
    return await export_store(storage, path, source="test", version="test")


async def load(storage: Storage, path: Path, merge: bool = False) -> Imported:
    return await import_file(storage, path, merge=merge, where="the store")


def lines(path: Path) -> list[JSON]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_lines(path: Path, rows: list[JSON]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


async def assert_empty(storage: Storage) -> None:
    after = await snapshot(storage)
    assert (after.records, after.values, after.claims) == ({}, {}, {})
    assert (after.content, after.current) == ([], None)


def problems(exc: pytest.ExceptionInfo[TransferError]) -> list[tuple[int | None, str]]:
    return [(p.line, p.message) for p in exc.value.problems]


# --- round trips ------------------------------------------------------------------------------


async def test_import_into_an_empty_store_round_trips_exactly(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"

    counts = await export(source, path)
    await load(target, path)

    assert counts == {"record": 3, "value": 6, "claim": 2, "content": 3}
    (await snapshot(source)).assert_same_as(await snapshot(target))
    # And the target exports the same lines (but for the header's time and the expiries,
    # which snapshot() compared), in an order of its own.
    again = tmp_path / "again.jsonl"
    await export(target, again)
    assert sorted(map(without_expiry, lines(path)[1:])) == sorted(
        map(without_expiry, lines(again)[1:])
    )


def without_expiry(row: JSON) -> bytes:
    return orjson.dumps(
        {k: v for k, v in row.items() if k != "expires_at"}, option=orjson.OPT_SORT_KEYS
    )


async def test_export_writes_a_header_then_one_line_an_entry(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source = stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"

    await export(source, path)

    rows = lines(path)
    assert rows[0]["kind"] == "header" and rows[0]["schema"] == SCHEMA
    assert rows[0]["counts"] == {"record": 3, "value": 6, "claim": 2, "content": 3}
    assert [row["kind"] for row in rows[1:]] == (
        ["record"] * 3 + ["value"] * 6 + ["claim"] * 2 + ["content"] * 3
    )
    assert [row["id"] for row in rows[-3:]] == [1, 2, 3]  # oldest first
    assert rows[-1]["rollback_of"] == 1 and rows[-1]["author"] == "staff:li"
    assert rows[-1]["published_at"].endswith("+00:00")  # like the other times in the file
    file_link = next(row for row in rows if row.get("name") == "wechat:file:AbC")
    assert "base64" in file_link and "expires_at" in file_link  # bytes that are not text
    index = next(row for row in rows if row.get("name") == "bc:index")
    assert "text" in index and "expires_at" not in index
    assert path.stat().st_mode & 0o077 == 0  # personal data: readable by its owner only


async def test_export_leaves_out_records_that_expire(stores: StoreFactory, tmp_path: Path) -> None:
    source = stores()
    await fill(source)
    waiting = UserKey("wechat", "oNeverConsented")
    await source.put(waiting, {"awaiting": {"kind": "consent"}}, expected_version=0, ttl=3600)
    path = tmp_path / "kvisa.jsonl"

    counts = await export(source, path)

    assert counts["record"] == 3
    assert str(waiting) not in path.read_text()


async def test_an_empty_store_exports_just_a_header_and_imports_as_empty(
    stores: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "empty.jsonl"

    assert await export(stores(), path) == {"record": 0, "value": 0, "claim": 0, "content": 0}
    await load(target := stores(), path)

    assert len(lines(path)) == 1
    await assert_empty(target)


async def test_export_refuses_to_replace_a_file_unless_asked(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source = stores()
    await fill(source)
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "kvisa.jsonl"
    path.write_text("an earlier export")

    with pytest.raises(TransferError):
        await export(source, path)
    assert path.read_text() == "an earlier export"

    await export_store(source, path, source="test", version="test", replace=True)
    assert lines(path)[0]["counts"]["record"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["kvisa.jsonl"]  # no temporary file left


async def test_the_reminder_rules_mark_is_not_exported_and_an_import_removes_it(
    stores: StoreFactory, tmp_path: Path
) -> None:
    # The job store is derived from the records; without the mark the next leader plans
    # every user's reminders again (ReminderService._after_rules_changed).
    source, target = stores(), stores()
    await fill(source)
    await source.set_value(RULES_KEY, b"rules-of-the-source")
    await target.set_value(RULES_KEY, b"rules-of-the-target")
    path = tmp_path / "kvisa.jsonl"

    await export(source, path)
    await load(target, path, merge=True)

    assert RULES_KEY in DERIVED
    assert all(row.get("name") != RULES_KEY for row in lines(path))
    assert await target.get_value(RULES_KEY) is None


async def test_values_and_claims_that_expired_since_the_export_are_left_out(
    stores: StoreFactory, tmp_path: Path
) -> None:
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    path = write_lines(
        tmp_path / "kvisa.jsonl",
        [
            header(value=2, claim=2),
            {"kind": "value", "name": "old", "text": "x", "expires_at": past},
            {"kind": "value", "name": "live", "text": "y", "expires_at": future},
            {"kind": "claim", "name": "old", "expires_at": past},
            {"kind": "claim", "name": "live", "expires_at": future},
        ],
    )
    target = stores()

    done = await load(target, path)

    after = await snapshot(target)
    assert list(after.values) == ["live"] and list(after.claims) == ["live"]
    assert done.expired == 2


# --- migrate ----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_migrate_moves_sqlite_to_a_redis_prefix_and_verifies_the_counts(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with (
        SqliteStorage(tmp_path / "var" / "kvisa.db") as source,
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as target,
    ):
        await fill(source)
        for n in range(1200):  # more than a page and a batch
            await source.put(UserKey("telegram", str(10_000 + n)), {"n": n}, expected_version=0)

        moved = await migrate(
            source, target, workdir=tmp_path / "var", where="redis", version="test"
        )

        assert moved.exported == {"record": 1203, "value": 6, "claim": 2, "content": 3}
        assert moved.found == {
            "record": 1203,
            "lasting value": 3,
            "expiring value": 3,
            "claim": 2,
            "content version": 3,
        }
        (await snapshot(source)).assert_same_as(await snapshot(target))  # content included
        assert await target.current_content_id() == 3
        assert not [p for p in (tmp_path / "var").iterdir() if p.name.startswith(".")]


@pytest.mark.redis
async def test_migrate_refuses_a_target_that_holds_data(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with (
        SqliteStorage(tmp_path / "kvisa.db") as source,
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as target,
    ):
        await fill(source)
        await target.put(BOB, {"theirs": True}, expected_version=0)

        with pytest.raises(TransferError) as refused:
            await migrate(source, target, workdir=tmp_path, where="redis", version="test")

        assert [r.data async for _, r in target.records()] == [{"theirs": True}]
        assert "not empty" in refused.value.problems[0].message


# --- merge ------------------------------------------------------------------------------------


async def test_import_refuses_a_store_that_holds_data_without_merge(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    await target.put(BOB, {"theirs": True}, expected_version=0)
    before = await snapshot(target)

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    assert refused.value.problems[0].params["example"] == str(BOB)
    (await snapshot(target)).assert_same_as(before)


async def test_merge_adds_what_is_missing_and_skips_what_is_there_already(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    alice = await source.get(ALICE)
    assert alice is not None
    await target.put(ALICE, alice.data, expected_version=0)  # the same
    await target.put(UserKey("telegram", "9"), {"only": "here"}, expected_version=0)
    await target.set_value("wechat:token:wx1", b"a newer token", ttl=60)  # expiring: kept

    done = await load(target, path, merge=True)

    after = await snapshot(target)
    assert set(after.records) == {str(k) for k in (ALICE, BOB, CAROL, UserKey("telegram", "9"))}
    assert after.values["wechat:token:wx1"][0] == b"a newer token"
    assert done.identical == 1 and done.kept == 1


async def test_merge_twice_changes_nothing_the_second_time(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    await load(target, path)
    before = await snapshot(target)

    done = await load(target, path, merge=True)

    assert done.written == {"record": 0, "value": 0, "claim": 0, "content": 0}
    (await snapshot(target)).assert_same_as(before)


async def test_merge_refuses_conflicting_entries_names_each_and_writes_nothing(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    await target.put(ALICE, {"edited": "elsewhere"}, expected_version=0)
    await target.set_value("bc:index", b'["ffffff"]')  # a lasting value
    await target.publish_content(b"ours", author="a", note="", sha256="1", published_at=1.0)
    before = await snapshot(target)

    with pytest.raises(TransferError) as refused:
        await load(target, path, merge=True)

    rows = lines(path)
    alice_line = next(i for i, r in enumerate(rows, 1) if r.get("key") == str(ALICE))
    index_line = next(i for i, r in enumerate(rows, 1) if r.get("name") == "bc:index")
    first_version = next(i for i, r in enumerate(rows, 1) if r.get("id") == 1)
    assert sorted(p.line or 0 for p in refused.value.problems) == sorted(
        [alice_line, index_line, first_version]
    )
    (await snapshot(target)).assert_same_as(before)


# --- bad files --------------------------------------------------------------------------------


def header(
    record: int = 0, value: int = 0, claim: int = 0, content: int = 0, schema: int = SCHEMA
) -> JSON:
    counts = {"record": record, "value": value, "claim": claim}
    return {
        "kind": "header",
        "format": "kvisa-export",
        "schema": schema,
        "kvisa": "0.1.0",
        "exported_at": "2026-12-01T09:00:00+00:00",
        "source": "sqlite",
        "counts": counts if schema == 1 else {**counts, "content": content},
    }


async def exported(stores: StoreFactory, tmp_path: Path) -> Path:
    source = stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    return path


@pytest.mark.parametrize("cut", ["mid-line", "at-a-line-end"])
async def test_a_truncated_file_is_refused_and_nothing_is_written(
    stores: StoreFactory, tmp_path: Path, cut: str
) -> None:
    path = await exported(stores, tmp_path)
    data = path.read_bytes()
    if cut == "mid-line":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"".join(data.splitlines(keepends=True)[:-3]))
    target = stores()

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    assert any("truncated" in p.message for p in refused.value.problems)
    await assert_empty(target)


async def test_a_file_of_a_newer_schema_is_refused(stores: StoreFactory, tmp_path: Path) -> None:
    newer = {**header(record=1, schema=SCHEMA + 1), "a_field_of_tomorrow": True}
    path = write_lines(tmp_path / "kvisa.jsonl", [newer, {"kind": "person", "of": "tomorrow"}])
    target = stores()

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    assert problems(refused)[0][0] == 1
    assert "upgrade kvisa" in refused.value.problems[0].message
    await assert_empty(target)


async def test_malformed_lines_are_named_by_number_and_nothing_is_written(
    stores: StoreFactory, tmp_path: Path
) -> None:
    path = await exported(stores, tmp_path)
    rows = path.read_bytes().splitlines(keepends=True)
    rows[2] = b'{"kind": "record", "key": "nobody", "data": {}}\n'  # no channel
    rows[4] = b"{not json\n"
    rows[5] = b'{"kind": "value", "name": "x", "text": "a", "base64": "YQ=="}\n'
    path.write_bytes(b"".join(rows))
    target = stores()

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    assert [line for line, _ in problems(refused)] == [3, 5, 6]
    await assert_empty(target)


async def test_an_entry_given_twice_is_refused_naming_both_lines(
    stores: StoreFactory, tmp_path: Path
) -> None:
    record = {"kind": "record", "key": "telegram:1", "data": {}}
    path = write_lines(tmp_path / "kvisa.jsonl", [header(record=2), record, record])

    with pytest.raises(TransferError) as refused:
        await load(stores(), path)

    assert refused.value.problems[0].line == 3
    assert refused.value.problems[0].params["first"] == 2


async def test_a_file_that_is_no_export_is_refused_at_its_first_line(
    stores: StoreFactory, tmp_path: Path
) -> None:
    for content in (b"", b"hello\n", b'{"kind": "record", "key": "telegram:1", "data": {}}\n'):
        path = tmp_path / "other.txt"
        path.write_bytes(content)

        with pytest.raises(TransferError) as refused:
            await load(stores(), path)

        assert refused.value.problems[0].line in (None, 1)


async def test_many_problems_are_named_up_to_a_limit_and_counted_beyond(
    stores: StoreFactory, tmp_path: Path
) -> None:
    bad = [{"kind": "record", "key": n, "data": {}} for n in range(MAX_PROBLEMS + 7)]
    path = write_lines(tmp_path / "kvisa.jsonl", [header(record=len(bad)), *bad])

    with pytest.raises(TransferError) as refused:
        await load(stores(), path)

    assert len(refused.value.problems) == MAX_PROBLEMS
    assert refused.value.more == 7


# --- a store that fails on the way ------------------------------------------------------------


class FailingAfter(SqliteStorage):
    """A SQLite store whose writes fail after the first `writes` (the disk filled up)."""

    def __init__(self, path: Path, writes: int) -> None:
        super().__init__(path)
        self.writes_left = writes

    async def put(self, key: UserKey, data: JSON | None, *, expected_version: int) -> bool:
        if data is not None:
            self.writes_left -= 1
            if self.writes_left < 0:
                raise StorageError("sqlite: database or disk is full")
        return await super().put(key, data, expected_version=expected_version)


async def test_a_store_failing_mid_import_is_left_as_it_was(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "source.db") as source:
        for n in range(1500):
            await source.put(UserKey("telegram", str(n)), {"n": n}, expected_version=0)
        path = tmp_path / "kvisa.jsonl"
        await export(source, path)

    async with FailingAfter(tmp_path / "target.db", writes=1100) as target:
        with pytest.raises(TransferError) as failed:
            await load(target, path)

        assert "disk is full" in str(failed.value.problems[0].params["error"])
        await assert_empty(target)


async def test_a_linked_applicant_moves_with_both_identities(
    stores: StoreFactory, tmp_path: Path
) -> None:
    """Export and import carry the applicant and the forward of its other identity: after the
    move, both channels still reach the one profile, and /unlink still works."""
    from kvisa.bot.applicants import identities
    from tests.support import ACADEMIC, Chat, engine_on

    source, target = stores(), stores()
    tg, wx = UserKey("telegram", "1001"), UserKey("wechat", "oAlice")
    chat = Chat(engine_on(source), user=tg)
    await chat.interview(**ACADEMIC)
    code = next(
        w.rstrip(".") for w in (await chat.send("/link"))[0].text.split() if w.rstrip(".").isdigit()
    )
    await Chat(engine_on(source), user=wx).send(f"/link {code}")
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    await load(target, path)

    moved = engine_on(target)
    on_wechat = Chat(moved, user=wx)
    await on_wechat.send("/mydata")
    assert "Linked channels: Telegram, WeChat." in on_wechat.text
    applicant = await target.get(tg)
    assert applicant is not None and identities(tg, applicant.data) == [tg, wx]
    await on_wechat.send("/unlink")
    await on_wechat.choose("yes")
    own = await target.get(wx)
    assert own is not None and own.data["answers"] == applicant.data["answers"]


# --- content versions -------------------------------------------------------------------------


def content_line(version: ContentVersion, packed: Packed) -> JSON:
    return orjson.loads(encode_entry(ContentEntry(version, packed.to_bytes())))


async def test_a_replica_of_the_imported_store_serves_the_exported_version(
    stores: StoreFactory, tmp_path: Path
) -> None:
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)

    done = await load(target, path)

    assert done.written["content"] == 3
    assert await target.current_content_id() == await source.current_content_id() == 3
    shown = [(v.id, v.author, v.note, v.rollback_of) for v in await target.content_versions()]
    assert shown == [
        (v.id, v.author, v.note, v.rollback_of) for v in await source.content_versions()
    ]
    fallback, _ = shipped_flows()  # the flows directory, which version 3 rolled back to
    served = await ContentSource(target, fallback).current()
    assert fallback.version is None and served.version == 3
    assert served.questions == fallback.questions
    later = await target.publish_content(b"x", author="a", note="", sha256="1", published_at=1.0)
    assert later.id == 4  # ids go on from the restored ones


async def test_a_store_holding_only_content_versions_is_not_empty(
    stores: StoreFactory, tmp_path: Path
) -> None:
    path = await exported(stores, tmp_path)
    target = stores()
    await target.publish_content(b"ours", author="a", note="", sha256="1", published_at=1.0)

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    assert refused.value.problems[0].params["kind"] == "content"
    assert [v.author for v in await target.content_versions()] == ["a"]


async def test_merge_finds_the_versions_of_the_store_the_file_came_from_identical(
    stores: StoreFactory, tmp_path: Path
) -> None:
    # The store has each version's time to the microsecond and more, the file to the
    # millisecond: the same version all the same.
    source, target = stores(), stores()
    await fill(source)
    path = tmp_path / "kvisa.jsonl"
    await export(source, path)
    await load(target, path)
    newer = await target.publish_content(b"n", author="a", note="", sha256="1", published_at=1.0)

    into_source = await load(source, path, merge=True)
    into_target = await load(target, path, merge=True)

    assert into_source.written["content"] == into_target.written["content"] == 0
    assert await target.current_content_id() == newer.id  # the store's newer version stays


async def test_tampered_content_lines_are_named_by_line_and_field_and_nothing_is_written(
    stores: StoreFactory, tmp_path: Path
) -> None:
    packed = shipped()
    good = content_line(ContentVersion(1, 1_790_000_000.25, "mei", "", packed.sha256), packed)
    tampered = [
        {**good, "id": 2, "sha256": "0" * 64},
        {**good, "id": 3, "base64": good["base64"][:-5] + "!!!!="},
        {k: v for k, v in {**good, "id": 4}.items() if k != "note"},
        {**good, "id": "5"},
        {**good, "id": 6, "rollback_of": 6},
        {**good, "id": 7, "base64": base64.b64encode(b"not packed").decode()},
        {**good, "id": 8, "published_at": 1_790_000_000},
    ]
    record = {"kind": "record", "key": "telegram:1", "data": {}}
    rows = [header(record=1, content=8), record, good, *tampered]
    path = write_lines(tmp_path / "kvisa.jsonl", rows)
    target = stores()

    with pytest.raises(TransferError) as refused:
        await load(target, path)

    named = [(p.line, p.params.get("field"), p.english()) for p in refused.value.problems]
    assert [(line, field) for line, field, _ in named] == [
        (4, None),
        (5, "base64"),
        (6, "note"),
        (7, "id"),
        (8, "rollback_of"),
        (9, "base64"),
        (10, "published_at"),
    ]
    assert "content: sha256: the content hashes to " + packed.sha256 in named[0][2]
    assert named[2][2] == "line 6: content: the field note is missing"
    await assert_empty(target)


async def test_a_schema_1_file_imports_without_content(
    stores: StoreFactory, tmp_path: Path
) -> None:
    rows = [
        header(record=1, value=1, schema=1),
        {"kind": "record", "key": "telegram:1", "data": {"lang": "zh"}},
        {"kind": "value", "name": "bc:index", "text": "[]"},
    ]
    path = write_lines(tmp_path / "kvisa.jsonl", rows)
    target = stores()

    done = await load(target, path)

    assert done.written == {"record": 1, "value": 1, "claim": 0, "content": 0}
    assert await target.current_content_id() is None


async def test_a_schema_1_file_holds_no_content_lines(stores: StoreFactory, tmp_path: Path) -> None:
    packed = shipped()
    line = content_line(ContentVersion(1, 1.0, "mei", "", packed.sha256), packed)
    path = write_lines(tmp_path / "kvisa.jsonl", [header(schema=1), line])

    with pytest.raises(TransferError) as refused:
        await load(target := stores(), path)

    assert "content=1" in refused.value.problems[0].english()
    await assert_empty(target)


class FailingRestore(SqliteStorage):
    """A SQLite store that fails to restore content versions (the disk filled up)."""

    async def _insert_content(self, versions: list[tuple[ContentVersion, bytes]]) -> list[int]:
        raise StorageError("sqlite: database or disk is full")


class PublishedMeanwhile(SqliteStorage):
    """A SQLite store on which someone publishes while the import writes (a kvisa serve)."""

    async def restore_content(self, versions: Sequence[tuple[ContentVersion, bytes]]) -> int:
        await self.publish_content(b"new", author="x", note="", sha256="1", published_at=1.0)
        return await super().restore_content(versions)


@pytest.mark.parametrize("store", [FailingRestore, PublishedMeanwhile])
async def test_a_failed_content_restore_leaves_the_store_as_it_was(
    tmp_path: Path, store: type[SqliteStorage]
) -> None:
    async with SqliteStorage(tmp_path / "source.db") as source:
        await fill(source)
        path = tmp_path / "kvisa.jsonl"
        await export(source, path)

    async with store(tmp_path / "target.db") as target:
        with pytest.raises(TransferError) as failed:
            await load(target, path)

        after = await snapshot(target)
        assert (after.records, after.values, after.claims) == ({}, {}, {})
        if store is FailingRestore:
            assert after.content == [] and "disk is full" in failed.value.problems[0].english()
        else:  # the version published meanwhile is the store's; the file's line 1 is named
            assert [v.author for v in await target.content_versions()] == ["x"]
            assert failed.value.problems[0].line == len(lines(path)) - 2
