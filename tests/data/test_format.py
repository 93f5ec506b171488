"""The export file's lines: what is written reads back the same, and no input of any kind gets
more than a LineError out of the reader."""

from __future__ import annotations

import contextlib
import datetime as dt

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.data.format import (
    SCHEMA,
    ClaimEntry,
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
entries = st.one_of(
    st.builds(RecordEntry, user_keys, json_objects),
    st.builds(ValueEntry, names, st.binary() | st.text().map(str.encode), st.none() | instants),
    st.builds(ClaimEntry, names, instants),
)


@given(entries)
def test_every_entry_reads_back_as_written(entry: Entry) -> None:
    line = encode_entry(entry)

    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    assert parse_line(line[:-1]) == entry


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), instants)
def test_a_header_reads_back_as_written(
    records: int, values: int, claims: int, at: dt.datetime
) -> None:
    header = Header(
        SCHEMA, "0.1.0", at, "redis", {"record": records, "value": values, "claim": claims}
    )

    assert parse_line(encode_header(header)[:-1]) == header


@given(st.binary())
def test_any_bytes_give_an_entry_or_a_line_error(raw: bytes) -> None:
    with contextlib.suppress(LineError):
        parse_line(raw)


@given(
    st.dictionaries(
        st.sampled_from(["kind", "key", "data", "name", "text", "base64", "expires_at", "schema"])
        | st.text(max_size=3),
        st.sampled_from(["header", "record", "value", "claim"]) | json_values,
    )
)
def test_any_json_object_gives_an_entry_or_a_line_error(line: dict[str, object]) -> None:
    try:
        parse_line(orjson.dumps(line))
    except LineError as exc:
        assert exc.message  # something to tell the operator


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
