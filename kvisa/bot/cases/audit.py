"""The workspace's audit log: who signed in, viewed or changed which applicant, and who sent
what. A catalog collection ordered by time, filtered by actor or applicant (ref); an erased
applicant's entries stay, for the record of what staff did, under an anonymous ref."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import Any

from kvisa.bot.cases.catalog import Catalog, Entry, Page

AUDIT = "audit"
ERASED = "erased-"  # an erased applicant's ref becomes this and a random suffix


class AuditLog:
    def __init__(self, catalog: Catalog, now: Callable[[], dt.datetime]) -> None:
        self.catalog = catalog
        self.now = now

    async def record(
        self, actor: str, action: str, ref: str | None = None, detail: str = ""
    ) -> None:
        """One entry: `action` is a word (`view`, `tick`, `reply`, `broadcast`, `sign-in`...),
        `detail` what else matters (never an applicant's message text)."""
        at = self.now()
        member = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        facets = {f"actor:{actor}", f"action:{action}"} | ({f"ref:{ref}"} if ref else set())
        doc: dict[str, Any] = {
            "at": at.isoformat(timespec="seconds"),
            "actor": actor,
            "action": action,
            "ref": ref,
            "detail": detail[:300],
            "ts": at.timestamp(),
        }
        await self.catalog.put(AUDIT, [Entry(member, at.timestamp(), frozenset(facets), doc)])

    async def recent(
        self, offset: int = 0, limit: int = 50, actor: str | None = None, ref: str | None = None
    ) -> Page:
        groups = [[f"actor:{actor}"]] if actor else []
        groups += [[f"ref:{ref}"]] if ref else []
        return await self.catalog.query(AUDIT, groups, offset=offset, limit=limit, reverse=True)

    async def anonymise(self, ref: str) -> int:
        """The applicant `ref` was erased: their entries keep what staff did, not whom to."""
        anonymous = ERASED + secrets.token_hex(4)
        changed = 0
        while True:
            page = await self.recent(0, 200, ref=ref)
            if not page.docs:
                return changed
            entries = []
            for member, doc in page.docs:
                doc = {**doc, "ref": anonymous}
                at = float(doc.get("ts") or dt.datetime.fromisoformat(doc["at"]).timestamp())
                facets = {f"actor:{doc['actor']}", f"action:{doc['action']}", f"ref:{anonymous}"}
                entries.append(Entry(member, at, frozenset(facets), doc))
            await self.catalog.put(AUDIT, entries)
            changed += len(entries)
