"""The applicants as the agency's workspace sees them: the one place that enumerates, looks up
and summarises them, and keeps the case index (catalog.py) up to date as the engine commits.

Today an applicant is a user record (`telegram:123`); when channel identities come to point
to one applicant, `record`, `find`, `linked_channels` and the keys the index is fed change
here and nowhere else. Pages and URLs name an applicant by an opaque reference (`ref`, a keyed
hash of the key), never by a channel id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kvisa.bot import applicants
from kvisa.bot.cases.catalog import Catalog, Entry, Page
from kvisa.bot.content.model import Flows
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import assess
from kvisa.bot.policy.reminders import timeline_of
from kvisa.bot.policy.zones import shanghai_today
from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)

CASES = "cases"  # the catalog collection
SECRET = "workspace:secret"  # storage value: the key of refs and of the workspace's cookies
INDEX_MARK = "workspace:index"  # storage value: what the index was last built from (derived)
INDEX_VERSION = "1"  # raise when the summary or its facets change: the index is rebuilt
NO_DEADLINE = 1e7  # the score of a case without a deadline: after every date's ordinal
REF_LENGTH = 20  # hex digits of a ref (80 bits)
_REF = re.compile(f"[0-9a-f]{{{REF_LENGTH}}}")
_KEY = re.compile(r"[a-z]+:\S+")
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# The record's fields a summary reads; a turn that changes none of them leaves the index alone.
SUMMARY_FIELDS = (
    "consent_at",
    "lang",
    "answers",
    "events",
    "deficiency_tolerance",
    "finished",
    "ticked",
    "inactive",
)


def ref_of(secret: bytes, user: UserKey) -> str:
    return hmac.new(secret, str(user).encode(), hashlib.sha256).hexdigest()[:REF_LENGTH]


def terms(text: str) -> set[str]:
    """Search terms of a note: words in lower case, each Chinese character on its own (names
    are not split by spaces)."""
    found = {w.casefold() for w in _WORD.findall(text) if not _CJK.search(w)}
    found |= set(_CJK.findall(text))
    return {t for t in found if t}


def search_groups(query: str) -> list[list[str]]:
    """A whole `channel:id`, or every term of the query (a facet group each)."""
    stripped = query.strip().casefold()
    if _KEY.fullmatch(stripped):
        return [[f"t:{stripped}"]]
    return [[f"t:{term}"] for term in sorted(terms(query))[:8]]


async def workspace_secret(storage: Storage, patience: float = 30.0) -> bytes:
    """The deployment's workspace key, made once and shared by every replica (a storage value,
    so `kvisa export` carries it and refs survive a move). A storage that does not answer is
    asked again for `patience` seconds (a replica starting while Redis restarts or fails over
    waits for it, as its turns would)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            stored = await storage.get_value(SECRET)
            if stored:
                return stored
            if await storage.claim(f"{SECRET}:making", 10):
                stored = await storage.get_value(SECRET)
                if not stored:
                    stored = secrets.token_bytes(32)
                    await storage.set_value(SECRET, stored)
                return stored
        except StorageError:
            if loop.time() > deadline:
                raise
            log.warning("workspace: the storage did not answer for the workspace key; retrying")
            await asyncio.sleep(0.5)
            continue
        if loop.time() > deadline:
            raise StorageError("the workspace key could not be read or made")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Filters:
    """What the cases page filters by (any value of a field, every field)."""

    reached: tuple[str, ...] = ()
    park: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    verdict: tuple[str, ...] = ()
    handover: tuple[str, ...] = ()
    search: str = ""

    def groups(self) -> list[list[str]]:
        groups = [
            [f"{name}:{v}" for v in values]
            for name, values in (
                ("reached", self.reached),
                ("park", self.park),
                ("plan", self.plan),
                ("channel", self.channel),
                ("verdict", self.verdict),
                ("handover", self.handover),
            )
            if values
        ]
        return groups + search_groups(self.search)


def summarize(
    flows: Flows, user: UserKey, data: dict[str, Any] | None, today: dt.date, notes: str = ""
) -> tuple[float, set[str], dict[str, Any]] | None:
    """(score, facets, document) of an applicant's index entry; None when they are no case
    (no record, or no consent yet: such a record holds nothing and expires within a day)."""
    if not data or not data.get("consent_at"):
        return None
    answers = data.get("answers") or {}
    events = data.get("events") or {}
    verdict, via, items = "pending", [], 0
    if data.get("finished"):
        try:
            result = assess(flows, answer_values(flows, answers), today)
            verdict = "eligible" if result.eligible else "not_eligible"
            via, items = list(result.channels), len(result.checklist)
        except Exception:  # an answer the policy cannot read: shown as pending, never fails
            log.debug("a case could not be assessed for the index", exc_info=True)
    next_deadline: dict[str, Any] | None = None
    try:
        timeline = timeline_of(flows, data, today)
        due = [d for d in timeline.deadlines if d.kind == "action" and not d.met]
        if due:
            d = due[0]
            next_deadline = {
                "id": d.id,
                "title": d.title,
                "date": d.date.isoformat(),
                "act_by": d.act_by.isoformat(),
                "estimated": d.estimated,
            }
    except Exception:
        log.debug("a case's timeline could not be built for the index", exc_info=True)
    order = [e.id for e in flows.timeline.events]
    reported = [e for e in order if e in events]
    reached = set(order[: order.index(reported[-1]) + 1]) if reported else set()
    handover = data.get("handover") if isinstance(data.get("handover"), dict) else None
    doc: dict[str, Any] = {
        "key": str(user),
        "channel": user.channel,
        "lang": data.get("lang", "en"),
        "park": answers.get("park"),
        "plan": answers.get("plan"),
        "verdict": verdict,
        "via": via,
        "step": reported[-1] if reported else None,
        "next": next_deadline,
        "ticked": len(data.get("ticked") or []),
        "items": items,
        "inactive": bool(data.get("inactive")),
        "handover": handover
        and {
            "status": handover.get("status"),
            "since": handover.get("since"),
            "held_by": handover.get("held_by"),
            "reason": str(handover.get("reason") or "")[:200],
        },
        "notes": bool(notes),
    }
    facets = {f"channel:{user.channel}", f"lang:{doc['lang']}", f"verdict:{verdict}"}
    facets |= {f"via:{c}" for c in via} | {f"reached:{e}" for e in reached}
    facets |= {f"{k}:{answers[k]}" for k in ("park", "plan") if isinstance(answers.get(k), str)}
    if handover:
        facets.add(f"handover:{handover.get('status')}")
    # Found by any of its channel ids (a linked applicant by its Telegram and WeChat ids both).
    ids = applicants.identities(user, data)
    facets |= {f"channel:{i.channel}" for i in ids}
    facets |= {f"t:{t}" for i in ids for t in (str(i).casefold(), i.id.casefold())}
    facets |= {f"t:{t}" for t in terms(notes)}
    score = (
        float(dt.date.fromisoformat(next_deadline["act_by"]).toordinal())
        if next_deadline
        else NO_DEADLINE
    )
    return score, facets, doc


def projection(data: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What a summary reads of a record (the handover without its messages)."""
    if data is None:
        return None
    handover = data.get("handover") if isinstance(data.get("handover"), dict) else None
    brief = handover and {k: v for k, v in handover.items() if k != "messages"}
    return (*(repr(data.get(f)) for f in SUMMARY_FIELDS), repr(brief))


class Applicants:
    """Looking up applicants and keeping their index: an engine watcher (`on_change`), a holding
    of the erasure registry (`forget`), and the queries the workspace's pages make."""

    def __init__(
        self,
        flows: Flows,
        storage: Storage,
        catalog: Catalog,
        secret: bytes,
        now: Callable[[], dt.datetime],
        notes: Callable[[UserKey], Any] | None = None,
    ) -> None:
        self.flows, self.storage, self.catalog, self.secret = flows, storage, catalog, secret
        self.now = now
        self.notes_text = notes  # async: the staff notes' text of a user (search terms)

    def ref(self, user: UserKey) -> str:
        return ref_of(self.secret, user)

    def today(self) -> dt.date:
        return shanghai_today(self.now())

    # --- looking up ---------------------------------------------------------------------------

    async def record(self, user: UserKey) -> dict[str, Any] | None:
        stored = await self.storage.get(user)
        return stored.data if stored else None

    async def find(self, ref: str) -> UserKey | None:
        """The applicant a ref names (through the index: refs cannot be reversed)."""
        if not _REF.fullmatch(ref):
            return None
        doc = await self.catalog.get(CASES, ref)
        return UserKey.parse(doc["key"]) if doc else None

    def linked_channels(self, user: UserKey, data: dict[str, Any] | None) -> list[str]:
        """The channel identities that reach this applicant (the founder first)."""
        return [str(i) for i in applicants.identities(user, data)]

    # --- the index ----------------------------------------------------------------------------

    async def entry(self, user: UserKey, data: dict[str, Any] | None) -> Entry | None:
        if applicants.is_forward(data):  # a linked identity: its applicant is the case
            return None
        notes = await self.notes_text(user) if self.notes_text is not None else ""
        summary = summarize(self.flows, user, data, self.today(), notes)
        if summary is None:
            return None
        score, facets, doc = summary
        return Entry(self.ref(user), score, frozenset(facets), doc)

    async def on_change(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """The engine's watcher: a committed change to a record."""
        if projection(before) == projection(after):
            return
        await self.refresh(user, after)

    async def refresh(self, user: UserKey, data: dict[str, Any] | None = None) -> None:
        if data is None:
            data = await self.record(user)
        entry = await self.entry(user, data)
        if entry is None:
            await self.catalog.remove(CASES, self.ref(user))
        else:
            await self.catalog.put(CASES, [entry])

    async def forget(self, user: UserKey) -> None:
        await self.catalog.remove(CASES, self.ref(user))

    def mark(self) -> str:
        return f"{INDEX_VERSION}:{hashlib.sha256(self.secret).hexdigest()[:8]}"

    async def ensure_index(self) -> bool:
        """Build the index when it was never built or was built differently (a new release's
        summary, an import); True when it was rebuilt."""
        stored = await self.storage.get_value(INDEX_MARK)
        if stored is not None and stored.decode() == self.mark():
            return False
        await self.rebuild()
        await self.storage.set_value(INDEX_MARK, self.mark().encode())
        return True

    async def rebuild(self) -> int:
        """Index every stored record again (a page at a time); the count of cases."""
        await self.catalog.clear(CASES)
        count, batch = 0, []
        async for user, stored in self.storage.records():
            entry = await self.entry(user, stored.data)
            if entry is not None:
                batch.append(entry)
            if len(batch) >= 500:
                await self.catalog.put(CASES, batch)
                count, batch = count + len(batch), []
        if batch:
            await self.catalog.put(CASES, batch)
            count += len(batch)
        return count

    # --- what the pages list ------------------------------------------------------------------

    async def page(self, filters: Filters, offset: int, limit: int) -> Page:
        return await self.catalog.query(CASES, filters.groups(), offset=offset, limit=limit)

    async def due(self, until: dt.date, offset: int, limit: int) -> Page:
        """Cases whose next deadline's act-by day is `until` or earlier (overdue included)."""
        return await self.catalog.query(
            CASES, (), high=float(until.toordinal()), offset=offset, limit=limit
        )

    async def handed_over(self, limit: int = 200) -> Page:
        return await self.catalog.query(CASES, [["handover:queued", "handover:held"]], limit=limit)
