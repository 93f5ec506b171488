"""The export file's lines: what is written reads back the same, and no input of any kind gets
more than a LineError out of the reader."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.content.versions import Packed
from kvisa.bot.data.format import (
    KINDS,
    SCHEMA,
    ClaimEntry,
    ContentEntry,
    Entry,
    Header,
    LineError,
    NewerSchema,
    RecordEntry,
    ValueEntry,
    encode_entry,
    encode_header,
    parse_line,
)
from kvisa.identity import UserKey
from kvisa.storage.base import ContentVersion

# What orjson (the stores' own encoder) can hold: 64-bit integers, finite floats.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
user_keys = st.builds(
    UserKey, st.text(min_size=1).filter(lambda c: ":" not in c), st.text(min_size=1)
)
names = st.text(min_size=1)
# Written to the millisecond, in UTC.
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))
# Packed content as publishing makes it: YAML texts by name, and the Chinese of their texts.
packs = st.builds(
    Packed,
    st.dictionaries(st.sampled_from(["policy", "faq", "calendar"]), st.text(), max_size=3),
    st.dictionaries(st.text(), st.text(), max_size=3),
)


@st.composite
def content_entries(draw: st.DrawFn) -> ContentEntry:
    packed = draw(packs)
    version_id = draw(st.integers(1, 2**40))
    version = ContentVersion(
        version_id,
        draw(instants).timestamp(),
        draw(st.text()),
        draw(st.text()),
        packed.sha256,
        draw(st.none() | st.integers(1, version_id - 1)) if version_id > 1 else None,
    )
    return ContentEntry(version, packed.to_bytes())


entries = st.one_of(
    st.builds(RecordEntry, user_keys, json_objects),
    st.builds(ValueEntry, names, st.binary() | st.text().map(str.encode), st.none() | instants),
    st.builds(ClaimEntry, names, instants),
    content_entries(),
)


@given(entries)
def test_every_entry_reads_back_as_written(entry: Entry) -> None:
    line = encode_entry(entry)

    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    assert parse_line(line[:-1]) == entry


@given(st.lists(st.integers(0, 10**6), min_size=4, max_size=4), instants)
def test_a_header_reads_back_as_written(counts: list[int], at: dt.datetime) -> None:
    header = Header(SCHEMA, "0.1.0", at, "redis", dict(zip(KINDS, counts, strict=True)))

    assert parse_line(encode_header(header)[:-1]) == header


def test_a_schema_1_header_counts_no_content() -> None:
    line = {
        "kind": "header",
        "format": "kvisa-export",
        "schema": 1,
        "kvisa": "0.1.0",
        "exported_at": "2026-12-01T09:00:00+00:00",
        "source": "sqlite",
        "counts": {"record": 1, "value": 2, "claim": 3},
    }

    header = parse_line(orjson.dumps(line))

    assert isinstance(header, Header) and header.schema == 1
    assert header.counts == {"record": 1, "value": 2, "claim": 3, "content": 0}
    with pytest.raises(LineError):  # a schema 2 header must count content
        parse_line(orjson.dumps({**line, "schema": 2}))
    with pytest.raises(LineError):  # and a schema 1 header cannot
        parse_line(orjson.dumps({**line, "counts": {**line["counts"], "content": 0}}))


@given(st.binary())
def test_any_bytes_give_an_entry_or_a_line_error(raw: bytes) -> None:
    with contextlib.suppress(LineError):
        parse_line(raw)


@given(
    st.dictionaries(
        st.sampled_from(
            ["kind", "key", "data", "name", "text", "base64", "expires_at", "schema"]
            + ["id", "author", "note", "sha256", "published_at", "rollback_of"]
        )
        | st.text(max_size=3),
        st.sampled_from(["header", "record", "value", "claim", "content"]) | json_values,
    )
)
def test_any_json_object_gives_an_entry_or_a_line_error(line: dict[str, object]) -> None:
    try:
        parse_line(orjson.dumps(line))
    except LineError as exc:
        assert exc.message  # something to tell the operator


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def content(**fields: object) -> bytes:
    """A content line of version 1 (empty flows), with `fields` changed."""
    packed = Packed({}, {})
    good = ContentEntry(ContentVersion(1, 0.0, "mei", "", packed.sha256), packed.to_bytes())
    return orjson.dumps({**orjson.loads(encode_entry(good)), **fields})


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"", "empty"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"kind": "person"}', "kind"),
        (b'{"kind": "record", "key": "telegram:1"}', "missing"),
        (b'{"kind": "record", "key": "telegram:1", "data": {}, "extra": 1}', "unknown field"),
        (b'{"kind": "record", "key": "telegram", "data": {}}', "user key"),
        (b'{"kind": "record", "key": "telegram:1", "data": []}', "JSON object"),
        (b'{"kind": "value", "name": "", "text": "x"}', "non-empty"),
        (b'{"kind": "value", "name": "x"}', "exactly one"),
        (b'{"kind": "value", "name": "x", "base64": "not base64!"}', "base64"),
        (b'{"kind": "value", "name": "x", "text": "a", "expires_at": "tomorrow"}', "offset"),
        (b'{"kind": "claim", "name": "x", "expires_at": "2026-12-01T09:00:00"}', "offset"),
        (content(id=0), "id: expected a whole number from 1"),
        (content(id=True), "id: expected a whole number from 1"),
        (content(author=None), "author: expected a string"),
        (content(rollback_of=1), "rollback_of: expected null or the id of an earlier version"),
        (content(published_at="2026-12-01"), "published_at: expected a time with its offset"),
        (content(base64="e30="), "base64: expected base64 of a packed flows directory"),
        (content(base64=b64(b'{"format": 1, "files": {}, "zh": []}')), "packed flows directory"),
        (content(sha256="ab"), "sha256: the content hashes to"),
        (content(extra=1), "content: unknown field"),
    ],
)
def test_a_bad_line_says_what_is_wrong(line: bytes, says: str) -> None:
    with pytest.raises(LineError) as bad:
        parse_line(line)

    assert says in bad.value.message.format(**bad.value.params)


def test_a_newer_schema_is_refused_before_its_other_fields_are_judged() -> None:
    line = {"kind": "header", "schema": SCHEMA + 1, "kvisa": "9.0", "whatever": "is new"}

    with pytest.raises(NewerSchema) as newer:
        parse_line(orjson.dumps(line))

    assert newer.value.params["schema"] == SCHEMA + 1
