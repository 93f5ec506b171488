"""Everything a deployment keeps about a user besides their record: the one list of holdings
that /delete and the retention purge erase (see bot/erasure.py).

A feature that keeps something new about an applicant (link codes, staff notes) adds its
holding to `holdings()`, or stores its values with `OwnedValues.set`, and a test in
tests/privacy lists the storage keys and files before and after /delete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

from kvisa.bot.broadcasts.admin import draft_name
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.cases.applicants import CASES, SECRET, ref_of
from kvisa.bot.cases.audit import AuditLog
from kvisa.bot.cases.catalog import open_catalog
from kvisa.bot.cases.notes import Notes
from kvisa.bot.erasure import Holding
from kvisa.identity import UserKey
from kvisa.storage.base import Storage


def attachments_dir(data_dir: Path, user: UserKey) -> Path:
    """Where the console saves a user's pictures and calendar files."""
    return data_dir / "attachments" / user.id


class ConsoleAttachments:
    """The files the console saved for a user under KVISA_DATA_DIR/attachments/<user>/."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    async def erase(self, user: UserKey) -> None:
        if user.channel != "console":
            return
        root = (self.data_dir / "attachments").resolve()
        folder = attachments_dir(self.data_dir, user).resolve()
        if folder.parent != root:  # an id like ".." or "a/b" names no folder of its own
            return
        if folder.is_dir():
            await asyncio.to_thread(shutil.rmtree, folder)


class CaseFile:
    """The workspace's index entry of an applicant, and their ref in its audit log."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def erase(self, user: UserKey) -> None:
        secret = await self.storage.get_value(SECRET)
        if not secret:  # the workspace never ran: it indexed and logged nothing
            return
        ref = ref_of(secret, user)
        catalog = open_catalog(self.storage)
        try:
            await catalog.remove(CASES, ref)
            await AuditLog(catalog, lambda: dt.datetime.now(dt.UTC)).anonymise(ref)
        finally:
            await catalog.close()


def holdings(storage: Storage, data_dir: Path) -> list[Holding]:
    """What the engine's erasure walks besides its own (the record, owned values)."""
    store = BroadcastStore(storage)

    async def forget_draft(user: UserKey) -> None:
        await storage.delete_value(draft_name(user))

    return [
        Holding("broadcast recipient rows", store.forget_recipient),
        Holding("broadcast draft", forget_draft),
        Holding("console attachments", ConsoleAttachments(data_dir).erase),
        Holding("staff notes", Notes(storage).erase),
        Holding("case index and audit log", CaseFile(storage).erase),
    ]
