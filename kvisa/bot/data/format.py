"""The export file: JSON Lines, UTF-8, one entry a line, a header first.

    {"kind": "header", "format": "kvisa-export", "schema": 2, "kvisa": "0.1.0",
     "exported_at": "2026-12-01T09:00:00.000+00:00", "source": "sqlite",
     "counts": {"record": 2, "value": 2, "claim": 1, "content": 1}}
    {"kind": "record", "key": "telegram:1001", "data": {"lang": "zh", ...}}
    {"kind": "value", "name": "bc:index", "text": "[\"a1b2c3\"]"}
    {"kind": "value", "name": "wechat:file:Xy", "base64": "iVBORw0K...",
     "expires_at": "2026-12-02T09:00:00.000+00:00"}
    {"kind": "claim", "name": "reminder:telegram:1001:visa:7",
     "expires_at": "2026-12-01T09:05:00.000+00:00"}
    {"kind": "content", "id": 1, "author": "staff:mei", "note": "first", "sha256": "9f86...",
     "published_at": "2026-11-25T04:00:00.000+00:00", "rollback_of": null, "base64": "eyJm..."}

A record is a user's state as the engine keeps it (its storage version is not: versions are
per store). A value is text when its bytes are UTF-8, else base64; `expires_at` (absolute, so
that the time a file spends on disk counts) is absent for a value that never expires. A
content line is one published content version, oldest first, as `Storage.restore_content`
puts it back: its id, author, note, hash, time and the version it rolled back to, and the
packed content (kvisa/bot/content/versions.py) in base64; the hash must be that of the
content. The header's counts let an import tell a truncated file from a whole one.

Schema 2 added the content lines; a schema 1 file (no content lines, no content count) is
read as it is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from kvisa.bot.content.versions import Packed
from kvisa.bot.i18n import N_
from kvisa.errors import FlowError
from kvisa.identity import UserKey
from kvisa.storage.base import JSON, ContentVersion

FORMAT = "kvisa-export"
SCHEMA = 2  # raise it when a line changes meaning; an import refuses a newer one
KINDS = ("record", "value", "claim", "content")
# The kinds a schema's header counts (and its lines may be): schema 2 added content.
SCHEMA_KINDS = {1: KINDS[:3], 2: KINDS}


@dataclass(frozen=True)
class Header:
    schema: int
    kvisa: str  # the version that wrote the file
    exported_at: dt.datetime
    source: str  # the backend it came from: sqlite, redis
    counts: dict[str, int]  # entries per kind


@dataclass(frozen=True)
class RecordEntry:
    key: UserKey
    data: JSON


@dataclass(frozen=True)
class ValueEntry:
    name: str
    value: bytes
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class ClaimEntry:
    name: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class ContentEntry:
    version: ContentVersion  # published_at is written to the millisecond, as other times
    content: bytes  # packed (versions.Packed), hashing to version.sha256


Entry = RecordEntry | ValueEntry | ClaimEntry | ContentEntry


def kind(entry: Entry) -> str:
    if isinstance(entry, RecordEntry):
        return "record"
    if isinstance(entry, ContentEntry):
        return "content"
    return "value" if isinstance(entry, ValueEntry) else "claim"


def identity(entry: Entry) -> str:
    """What an entry is about: a user key, a value's or claim's name, a version's id."""
    if isinstance(entry, RecordEntry):
        return str(entry.key)
    return str(entry.version.id) if isinstance(entry, ContentEntry) else entry.name


class LineError(Exception):
    """A line is not a valid entry: `message` (a gettext id) with its `params`."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Problem:
    """What is wrong with a file, and on which line (None: the file as a whole)."""

    line: int | None
    message: str  # a gettext id with {placeholders}
    params: dict[str, object] = field(default_factory=dict)

    def english(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return where + self.message.format(**self.params)


# --- writing ---------------------------------------------------------------------------------


def timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def unix_timestamp(seconds: float) -> str:
    return timestamp(dt.datetime.fromtimestamp(seconds, dt.UTC))


def encode_header(header: Header) -> bytes:
    line = {
        "kind": "header",
        "format": FORMAT,
        "schema": header.schema,
        "kvisa": header.kvisa,
        "exported_at": timestamp(header.exported_at),
        "source": header.source,
        "counts": {k: header.counts.get(k, 0) for k in KINDS},
    }
    return orjson.dumps(line) + b"\n"


def encode_entry(entry: Entry) -> bytes:
    line: dict[str, Any]
    if isinstance(entry, RecordEntry):
        line = {"kind": "record", "key": str(entry.key), "data": entry.data}
    elif isinstance(entry, ValueEntry):
        line = {"kind": "value", "name": entry.name}
        try:
            line["text"] = entry.value.decode("utf-8")
        except UnicodeDecodeError:
            line["base64"] = base64.b64encode(entry.value).decode("ascii")
        if entry.expires_at is not None:
            line["expires_at"] = timestamp(entry.expires_at)
    elif isinstance(entry, ClaimEntry):
        line = {"kind": "claim", "name": entry.name, "expires_at": timestamp(entry.expires_at)}
    else:
        version = entry.version
        line = {
            "kind": "content",
            "id": version.id,
            "author": version.author,
            "note": version.note,
            "sha256": version.sha256,
            "published_at": unix_timestamp(version.published_at),
            "rollback_of": version.rollback_of,
            "base64": base64.b64encode(entry.content).decode("ascii"),
        }
    return orjson.dumps(line) + b"\n"


# --- reading ---------------------------------------------------------------------------------

FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # kind: (required, optional)
    "header": (
        frozenset({"kind", "format", "schema", "kvisa", "exported_at", "source", "counts"}),
        frozenset(),
    ),
    "record": (frozenset({"kind", "key", "data"}), frozenset()),
    "value": (frozenset({"kind", "name"}), frozenset({"text", "base64", "expires_at"})),
    "claim": (frozenset({"kind", "name", "expires_at"}), frozenset()),
    "content": (
        frozenset(
            {"kind", "id", "author", "note", "sha256", "published_at", "rollback_of", "base64"}
        ),
        frozenset(),
    ),
}


def shown(value: object, limit: int = 60) -> str:
    """A value in a problem: JSON, on one line, cut when long."""
    text = orjson.dumps(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_line(raw: bytes) -> Header | Entry:
    """One line of an export file (without its newline); LineError says what is wrong."""
    if not raw.strip():
        raise LineError(N_("an empty line"))
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LineError(N_("not JSON ({detail})"), detail=str(exc)) from None
    if not isinstance(line, dict):
        raise LineError(N_("expected a JSON object, got {value}"), value=shown(line))
    what = line.get("kind")
    if not isinstance(what, str) or what not in FIELDS:
        raise LineError(
            N_("kind: expected one of {kinds}, got {value}"),
            kinds=", ".join(("header", *KINDS)),
            value=shown(what),
        )
    if what == "header":
        newer(line)
    required, optional = FIELDS[what]
    for name in sorted(required - line.keys()):
        raise LineError(N_("{kind}: the field {field} is missing"), kind=what, field=name)
    for name in sorted(line.keys() - required - optional):
        raise LineError(N_("{kind}: unknown field {field}"), kind=what, field=shown(name))
    if what == "header":
        return parse_header(line)
    if what == "record":
        return RecordEntry(user_key(line["key"]), json_object("record", "data", line["data"]))
    if what == "content":
        return content_entry(line)
    name = line["name"]
    if not isinstance(name, str) or not name:
        raise LineError(
            N_("{kind}: {field}: expected {expected}, got {value}"),
            kind=what,
            field="name",
            expected=N_("a non-empty string"),
            value=shown(name),
        )
    if what == "claim":
        return ClaimEntry(name, instant("claim", "expires_at", line["expires_at"]))
    expires = line.get("expires_at")
    return ValueEntry(
        name,
        value_bytes(line),
        None if expires is None else instant("value", "expires_at", expires),
    )


class NewerSchema(LineError):
    """The file was written in a schema this version cannot read."""


def newer(line: dict[str, Any]) -> None:
    """Refuse a newer schema before anything else in its header is judged: a later version
    may well have changed the header too."""
    schema = line.get("schema")
    if type(schema) is int and schema > SCHEMA:
        raise NewerSchema(
            N_(
                "header: written by kvisa {version} in schema {schema}; this kvisa reads "
                "schema {supported} and older: upgrade kvisa to import it"
            ),
            version=shown(line.get("kvisa")),
            schema=schema,
            supported=SCHEMA,
        )


def parse_header(line: dict[str, Any]) -> Header:
    if line["format"] != FORMAT:
        raise LineError(
            N_("header: format: expected {expected}, got {value}"),
            expected=shown(FORMAT),
            value=shown(line["format"]),
        )
    schema = line["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise LineError(
            N_("header: schema: expected a whole number from 1, got {value}"),
            value=shown(schema),
        )
    for name in ("kvisa", "source"):
        if not isinstance(line[name], str):
            raise LineError(
                N_("{kind}: {field}: expected {expected}, got {value}"),
                kind="header",
                field=name,
                expected=N_("a string"),
                value=shown(line[name]),
            )
    counts = line["counts"]
    kinds = SCHEMA_KINDS[schema]
    if (
        not isinstance(counts, dict)
        or set(counts) != set(kinds)
        or not all(type(n) is int and n >= 0 for n in counts.values())
    ):
        raise LineError(
            N_("header: counts: expected {expected}, got {value}"),
            expected="{" + ", ".join(f'"{k}": N' for k in kinds) + "}",
            value=shown(counts),
        )
    # A kind the schema did not have yet: none of it in the file.
    counts = {k: counts.get(k, 0) for k in KINDS}
    exported_at = instant("header", "exported_at", line["exported_at"])
    return Header(schema, line["kvisa"], exported_at, line["source"], counts)


def user_key(value: object) -> UserKey:
    if isinstance(value, str):
        try:
            return UserKey.parse(value)
        except ValueError:
            pass
    raise LineError(
        N_("{kind}: {field}: expected {expected}, got {value}"),
        kind="record",
        field="key",
        expected=N_("a user key like telegram:12345"),
        value=shown(value),
    )


def json_object(what: str, name: str, value: object) -> JSON:
    if not isinstance(value, dict):
        raise LineError(
            N_("{kind}: {field}: expected {expected}, got {value}"),
            kind=what,
            field=name,
            expected=N_("a JSON object"),
            value=shown(value),
        )
    return value


def instant(what: str, name: str, value: object) -> dt.datetime:
    if isinstance(value, str):
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            return at
    raise LineError(
        N_("{kind}: {field}: expected {expected}, got {value}"),
        kind=what,
        field=name,
        expected=N_("a time with its offset, like 2026-12-01T09:00:00+00:00"),
        value=shown(value),
    )


def value_bytes(line: dict[str, Any]) -> bytes:
    if ("text" in line) == ("base64" in line):
        raise LineError(N_("value: expected exactly one of the fields text and base64"))
    if "text" in line:
        if isinstance(line["text"], str):
            try:
                return line["text"].encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate, written as \ud800 in the JSON
                pass
        field_name, expected, value = "text", N_("a string"), line["text"]
    else:
        if isinstance(line["base64"], str):
            try:
                return base64.b64decode(line["base64"], validate=True)
            except (binascii.Error, ValueError):
                pass
        field_name, expected, value = "base64", N_("base64 text"), line["base64"]
    raise LineError(
        N_("{kind}: {field}: expected {expected}, got {value}"),
        kind="value",
        field=field_name,
        expected=expected,
        value=shown(value),
    )


def content_entry(line: dict[str, Any]) -> ContentEntry:
    """A content line: every field of the version, and content that hashes to its sha256."""

    def wrong(name: str, expected: str) -> LineError:
        return LineError(
            N_("{kind}: {field}: expected {expected}, got {value}"),
            kind="content",
            field=name,
            expected=expected,
            value=shown(line[name]),
        )

    version_id = line["id"]
    if type(version_id) is not int or version_id < 1:
        raise wrong("id", N_("a whole number from 1"))
    for name in ("author", "note", "sha256"):
        if not isinstance(line[name], str):
            raise wrong(name, N_("a string"))
    rollback_of = line["rollback_of"]
    if rollback_of is not None and (
        type(rollback_of) is not int or not 1 <= rollback_of < version_id
    ):
        raise wrong("rollback_of", N_("null or the id of an earlier version"))
    published_at = instant("content", "published_at", line["published_at"])
    try:
        if not isinstance(line["base64"], str):
            raise ValueError
        content = base64.b64decode(line["base64"], validate=True)
        found = Packed.from_bytes(content).sha256
    except (binascii.Error, ValueError, FlowError):
        raise wrong("base64", N_("base64 of a packed flows directory")) from None
    if found != line["sha256"]:
        raise LineError(
            N_(
                "content: sha256: the content hashes to {found}, not {value}: the line was "
                "changed or damaged"
            ),
            found=found,
            value=shown(line["sha256"], 80),  # a whole SHA-256, to compare
        )
    version = ContentVersion(
        version_id,
        published_at.timestamp(),
        line["author"],
        line["note"],
        line["sha256"],
        rollback_of,
    )
    return ContentEntry(version, content)
