"""Export a store to a file, import a file into a store, move SQLite to Redis.

- Export streams: records, then values, then claims, a page at a time, then the published
  content versions, oldest first, one at a time, to an unnamed temporary file beside the
  target; the header (with the counts, known only at the end) is written first into the final
  file, which replaces FILE in one rename. A failed export leaves no file behind; memory does
  not grow with the store (Redis remembers key names while it scans, see RedisStorage._scan).
  The file is created readable by its owner only.
- Import reads the file twice. The first pass checks every line (and, with `merge`, every
  entry against the store) and writes nothing unless the whole file is good: every problem is
  named with its line, up to MAX_PROBLEMS of them. The second pass writes, BATCH entries at a
  time. Should the store fail on the way (or Ctrl-C), what this import wrote is removed again;
  what cannot be removed is counted, and importing again with `merge` finishes the job (it
  skips what is already there as in the file).
- Content versions are restored last, all in one atomic step (Storage.restore_content), with
  their own ids: a store that fails there keeps none of them, and the entries written before
  are removed as for any failure. Their content stays in memory until then (a version is
  about 120 KB packed).
- Merge adds what the store lacks. An entry already stored as in the file is skipped. A user
  record, a lasting value or a content version stored with other contents is a conflict: the
  import refuses and names every one (record versions are per store, so "newer" cannot be
  told; a content id names one publish of one store). An expiring value (a draft, a cached
  token, a file link) or a claim the store already has is kept as the store has it: those are
  short-lived and the store's own is the current one. Versions the store has beyond the file's
  stay, and stay current.
- Records that expire are not exported: those are of people who have not consented, holding
  only the pending consent prompt for a day at most (session.PRE_CONSENT), which a copy on disk
  would outlive; such a person is simply asked again.
- The reminder scheduler's job store is derived from the user records and is not exported;
  neither is the `reminders:rules` mark that says it was planned. An import removes that mark
  from the store, so the next `kvisa serve` to lead plans every user's reminders again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kvisa.bot.cases.applicants import INDEX_MARK
from kvisa.bot.data.format import (
    KINDS,
    SCHEMA,
    ClaimEntry,
    ContentEntry,
    Entry,
    Header,
    LineError,
    NewerSchema,
    Problem,
    RecordEntry,
    ValueEntry,
    encode_entry,
    encode_header,
    identity,
    kind,
    parse_line,
)
from kvisa.bot.i18n import N_
from kvisa.bot.reminders.service import RULES_KEY
from kvisa.errors import BotError, ContentConflict
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

BATCH = 500  # entries looked up or written at once
MAX_PROBLEMS = 20  # problems named; the rest are counted
DERIVED = frozenset({RULES_KEY, INDEX_MARK})  # values rebuilt from the records, never exported

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TransferError(BotError):
    """A file or store that cannot be exported or imported as asked: `problems` says what is
    wrong and where (a line of the file, or the file as a whole), `more` how many more."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        super().__init__("\n".join(p.english() for p in problems))
        self.problems = problems
        self.more = more


def fail(message: str, line: int | None = None, **params: object) -> TransferError:
    return TransferError([Problem(line, message, params)])


# --- export ----------------------------------------------------------------------------------


async def export_store(
    storage: Storage,
    path: Path,
    *,
    source: str,
    version: str,
    replace: bool = False,
    clock: Clock = utc_now,
) -> dict[str, int]:
    """Write everything `storage` keeps to `path`; the number of entries of each kind."""
    if path.exists() and not replace:
        raise fail(
            N_("{file} exists already: give another name, or --force to replace it"), file=str(path)
        )
    directory = path.parent if str(path.parent) else Path(".")
    exported_at = clock()
    counts = dict.fromkeys(KINDS, 0)
    with tempfile.TemporaryFile(dir=directory) as body:
        async for key, record in storage.records():
            if record.ttl is not None:  # see the module docstring
                continue
            body.write(encode_entry(RecordEntry(key, record.data)))
            counts["record"] += 1
        async for value in storage.values():
            if value.name in DERIVED:
                continue
            expires = None if value.ttl is None else clock() + dt.timedelta(seconds=value.ttl)
            body.write(encode_entry(ValueEntry(value.name, value.value, expires)))
            counts["value"] += 1
        async for claim in storage.claims():
            body.write(
                encode_entry(ClaimEntry(claim.name, clock() + dt.timedelta(seconds=claim.ttl)))
            )
            counts["claim"] += 1
        for published in await storage.content_versions():
            stored = await storage.content_version(published.id)
            if stored is not None:  # versions are never removed; this is only prudence
                body.write(encode_entry(ContentEntry(*stored)))
                counts["content"] += 1
        header = Header(SCHEMA, version, exported_at, source, counts)
        fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(encode_header(header))
                body.seek(0)
                shutil.copyfileobj(body, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return counts


# --- import ----------------------------------------------------------------------------------


@dataclass
class Imported:
    """What an import did."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    lasting_values: int = 0  # of the values written, those that never expire
    identical: int = 0  # merge: already stored as in the file
    kept: int = 0  # merge: expiring values and claims the store had already
    expired: int = 0  # expired since the export
    derived: int = 0  # derived values in the file (see DERIVED), not imported


@dataclass
class Checked:
    """The first pass's verdict on a file: its header, and the lines to skip (merge)."""

    header: Header
    skip: dict[int, str]  # line -> "identical" | "kept"


def read_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its newline, whether it ended with one)."""
    with open(path, "rb") as fh:
        yield from numbered(fh)


def numbered(fh: IO[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    for number, raw in enumerate(fh, 1):
        complete = raw.endswith(b"\n")
        yield number, raw[:-1] if complete else raw, complete


async def is_empty(storage: Storage) -> tuple[str, str] | None:
    """None for an empty store, else what it holds first: (kind, an example)."""
    async for key in storage.users():
        return "record", str(key)
    async for value in storage.values():
        return "value", value.name
    async for claim in storage.claims():
        return "claim", claim.name
    current = await storage.current_content_id()
    if current is not None:
        return "content", str(current)
    return None


async def check_empty(storage: Storage, where: str) -> None:
    found = await is_empty(storage)
    if found is not None:
        raise fail(
            N_(
                "{store} is not empty: it holds at least one {kind} ({example}); import into "
                "an empty store, or add --merge to add to what it holds"
            ),
            store=where,
            kind=found[0],
            example=found[1],
        )


class Problems:
    """The problems found so far: the first MAX_PROBLEMS kept, the rest counted."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.more = 0

    def add(self, line: int | None, message: str, /, **params: object) -> None:
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(Problem(line, message, params))
        else:
            self.more += 1

    def raise_any(self) -> None:
        if self.kept:
            raise TransferError(self.kept, self.more)


async def check_file(storage: Storage, path: Path, *, merge: bool) -> Checked:
    """The first pass: every line valid, the counts as announced, and (merge) no conflict."""
    problems = Problems()
    header: Header | None = None
    counts = dict.fromkeys(KINDS, 0)
    first_line: dict[tuple[str, str], int] = {}
    skip: dict[int, str] = {}
    pending: list[tuple[int, Entry]] = []
    last, complete = 0, True
    for number, raw, ended in read_lines(path):
        last, complete = number, ended
        try:
            item = parse_line(raw)
        except NewerSchema as exc:
            raise fail(exc.message, number, **exc.params) from None
        except LineError as exc:
            if number == 1:
                raise TransferError(
                    [
                        Problem(1, exc.message, exc.params),
                        Problem(None, N_("not a kvisa export: its first line must be the header")),
                    ]
                ) from None
            problems.add(number, exc.message, **exc.params)
            continue
        if number == 1:
            if not isinstance(item, Header):
                raise fail(N_("not a kvisa export: its first line must be the header"), 1)
            header = item
            continue
        if isinstance(item, Header):
            problems.add(number, N_("a second header: a file holds one, on its first line"))
            continue
        what = kind(item)
        counts[what] += 1
        name = identity(item)
        earlier = first_line.setdefault((what, name), number)
        if earlier != number:
            problems.add(
                number,
                N_("{kind} {name} again (first on line {first})"),
                kind=what,
                name=name,
                first=earlier,
            )
            continue
        if merge and not (isinstance(item, ValueEntry) and item.name in DERIVED):
            pending.append((number, item))
            if len(pending) >= BATCH:
                await compare(storage, pending, skip, problems)
                pending = []
    if pending:
        await compare(storage, pending, skip, problems)
    if header is None:
        raise fail(N_("the file is empty: a kvisa export starts with its header line"))
    whole = counts == header.counts and not problems.kept
    if not complete and not whole:  # a whole file that only lacks its last newline is fine
        problems.add(
            None, N_("the file ends in the middle of line {line}: it is truncated"), line=last
        )
    elif counts != header.counts and not problems.kept:  # else its lines' problems explain it
        problems.add(
            None,
            N_(
                "the header announces {expected} but the file holds {found}: it is truncated "
                "or was edited"
            ),
            expected=tally(header.counts),
            found=tally(counts),
        )
    problems.raise_any()
    return Checked(header, skip)


def tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={counts.get(k, 0)}" for k in KINDS)  # the file's own words


async def compare(
    storage: Storage, batch: list[tuple[int, Entry]], skip: dict[int, str], problems: Problems
) -> None:
    """Merge: how each entry stands against the store (new, identical, kept, conflict)."""

    async def look(entry: Entry) -> str:
        if isinstance(entry, ContentEntry):
            found = await storage.content_version(entry.version.id)
            if found is None:
                return "new"
            # As the file would hold it: the file has the time to the millisecond.
            same = encode_entry(ContentEntry(*found)) == encode_entry(entry)
            return "identical" if same else "conflict"
        if isinstance(entry, RecordEntry):
            record = await storage.get(entry.key)
            if record is None:
                return "new"
            return "identical" if record.data == entry.data else "conflict"
        if isinstance(entry, ValueEntry):
            stored = await storage.get_value(entry.name)
            if stored is None:
                return "new"
            if stored == entry.value:
                return "identical"
            return "kept" if entry.expires_at is not None else "conflict"
        return "new"  # a claim: taken at write time unless the store holds it (then kept)

    outcomes = await asyncio.gather(*(look(entry) for _, entry in batch))
    for (number, entry), outcome in zip(batch, outcomes, strict=True):
        if outcome == "conflict":
            problems.add(
                number,
                N_("{kind} {name} is stored already with other contents"),
                kind=kind(entry),
                name=identity(entry),
            )
        elif outcome != "new":
            skip[number] = outcome


async def import_file(
    storage: Storage, path: Path, *, merge: bool, where: str, clock: Clock = utc_now
) -> Imported:
    """Check `path`, then write it into `storage` (see the module docstring)."""
    if not merge:
        await check_empty(storage, where)
    checked = await check_file(storage, path, merge=merge)
    done = Imported()
    written: list[tuple[str, str]] = []  # (kind, name) of what this import wrote, for undoing
    batch: list[tuple[int, Entry, float | None]] = []
    contents: dict[int, ContentEntry] = {}  # by line: restored last, all at once
    number = 0
    try:
        for number, raw, _ in read_lines(path):
            if number == 1:
                continue
            try:
                entry = parse_line(raw)
            except LineError as exc:  # it was fine a moment ago: the file changed meanwhile
                raise fail(N_("the file changed during the import"), number) from exc
            assert not isinstance(entry, Header)
            if number in checked.skip:
                if checked.skip[number] == "identical":
                    done.identical += 1
                else:
                    done.kept += 1
                continue
            if isinstance(entry, ValueEntry) and entry.name in DERIVED:
                done.derived += 1
                continue
            if isinstance(entry, ContentEntry):
                contents[number] = entry
                continue
            ttl: float | None = None
            expires_at = entry.expires_at if not isinstance(entry, RecordEntry) else None
            if expires_at is not None:
                ttl = (expires_at - clock()).total_seconds()
                if ttl <= 0:
                    done.expired += 1
                    continue
            batch.append((number, entry, ttl))
            if len(batch) >= BATCH:
                await write_batch(storage, batch, written, done)
                batch = []
        if batch:
            await write_batch(storage, batch, written, done)
        for name in DERIVED:
            await storage.delete_value(name)
        if contents:  # last: all or none, so there is nothing of it to undo
            done.written["content"] = await restore(storage, contents)
    except BaseException as exc:
        left = await undo(storage, written)
        if isinstance(exc, TransferError) or not isinstance(exc, Exception):
            if left and isinstance(exc, TransferError):
                exc.problems.append(left_behind(left))
            raise
        problems = [Problem(None, N_("the import stopped: {error}"), {"error": str(exc)})]
        if left:
            problems.append(left_behind(left))
        else:
            problems.append(Problem(None, N_("nothing was imported: what was written is removed")))
        raise TransferError(problems) from exc
    return done


async def restore(storage: Storage, contents: dict[int, ContentEntry]) -> int:
    try:
        return await storage.restore_content(
            [(entry.version, entry.content) for entry in contents.values()]
        )
    except ContentConflict as exc:
        number = next(n for n, e in contents.items() if e.version.id == exc.version_id)
        raise fail(
            N_("{kind} {name} appeared in the store during the import"),
            number,
            kind="content",
            name=str(exc.version_id),
        ) from exc


def left_behind(left: int) -> Problem:
    return Problem(
        None,
        N_(
            "{count} entries this import wrote could not be removed: import the file again "
            "with --merge once the store answers (it skips what is there already)"
        ),
        {"count": left},
    )


async def write_batch(
    storage: Storage,
    batch: list[tuple[int, Entry, float | None]],
    written: list[tuple[str, str]],
    done: Imported,
) -> None:
    async def write(entry: Entry, ttl: float | None) -> bool:
        if isinstance(entry, RecordEntry):
            return await storage.put(entry.key, entry.data, expected_version=0)
        if isinstance(entry, ValueEntry):
            await storage.set_value(entry.name, entry.value, ttl)
            return True
        assert isinstance(entry, ClaimEntry) and ttl is not None  # content is restored apart
        return await storage.claim(entry.name, ttl)

    outcomes = await asyncio.gather(
        *(write(entry, ttl) for _, entry, ttl in batch), return_exceptions=True
    )
    failure: BaseException | None = None
    for (number, entry, ttl), outcome in zip(batch, outcomes, strict=True):
        what = kind(entry)
        if outcome is True:
            written.append((what, identity(entry)))
            done.written[what] += 1
            if isinstance(entry, ValueEntry) and ttl is None:
                done.lasting_values += 1
        elif outcome is False and isinstance(entry, ClaimEntry):
            done.kept += 1  # the store holds this claim already
        elif outcome is False and failure is None:
            failure = fail(
                N_("{kind} {name} appeared in the store during the import"),
                number,
                kind=what,
                name=identity(entry),
            )
        elif isinstance(outcome, BaseException) and failure is None:
            failure = outcome
    if failure is not None:
        raise failure


async def undo(storage: Storage, written: list[tuple[str, str]]) -> int:
    """Remove what this import wrote; how many entries could not be removed."""

    async def remove(what: str, name: str) -> None:
        if what == "record":
            key = UserKey.parse(name)
            record = await storage.get(key)
            if record is not None:
                await storage.put(key, None, expected_version=record.version)
        elif what == "value":
            await storage.delete_value(name)
        else:
            await storage.release(name)

    left = 0
    for start in range(0, len(written), BATCH):
        chunk = written[start : start + BATCH]
        outcomes = await asyncio.gather(*(remove(*item) for item in chunk), return_exceptions=True)
        left += sum(isinstance(outcome, BaseException) for outcome in outcomes)
    return left


# --- migrate ---------------------------------------------------------------------------------


@dataclass
class Migrated:
    exported: dict[str, int]
    imported: Imported
    found: dict[str, int]  # in the target afterwards: records, lasting and expiring values, claims


async def count(storage: Storage) -> dict[str, int]:
    found = {
        "record": 0,
        "lasting value": 0,
        "expiring value": 0,
        "claim": 0,
        "content version": 0,
    }
    async for _ in storage.users():
        found["record"] += 1
    async for value in storage.values():
        if value.name not in DERIVED:
            found["lasting value" if value.ttl is None else "expiring value"] += 1
    async for _ in storage.claims():
        found["claim"] += 1
    found["content version"] = len(await storage.content_versions())
    return found


async def migrate(
    source: Storage,
    target: Storage,
    *,
    workdir: Path,
    where: str,
    version: str,
    source_name: str = "sqlite",
) -> Migrated:
    """Copy everything `source` keeps into the empty `target` through an export file in
    `workdir` (removed afterwards), then count what the target holds: every record, every
    lasting value and every content version must be there (expiring ones may have expired
    meanwhile)."""
    await check_empty(target, where)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".kvisa-migrate-") as scratch:
        path = Path(scratch) / "export.jsonl"
        exported = await export_store(source, path, source=source_name, version=version)
        imported = await import_file(target, path, merge=False, where=where)
    found = await count(target)
    expected = {
        "record": exported["record"],
        "lasting value": imported.lasting_values,
        "content version": exported["content"],
    }
    wrong = [k for k, n in expected.items() if found[k] != n]
    if wrong:
        raise TransferError(
            [
                Problem(
                    None,
                    N_(
                        "verification failed: {store} holds {found} {kind}s, {expected} were "
                        "copied; it was left as it is"
                    ),
                    {"store": where, "found": found[k], "kind": k, "expected": expected[k]},
                )
                for k in wrong
            ]
        )
    return Migrated(exported, imported, found)
