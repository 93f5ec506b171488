"""Notes the agency's staff keep about an applicant (the bot asks no name; a note may hold
one). A storage value per applicant, `notes:<user>`, so export and import carry them and the
erasure registry (bot/holdings.py) removes them with everything else."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

MAX_NOTE = 2000  # characters of one note
MAX_NOTES = 200  # notes kept per applicant (the oldest go first)
LOCK_TTL = 5.0


@dataclass(frozen=True)
class Note:
    by: str
    at: str  # ISO time
    text: str


def notes_name(user: UserKey) -> str:
    return f"notes:{user}"


class Notes:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def of(self, user: UserKey) -> list[Note]:
        raw = await self.storage.get_value(notes_name(user))
        try:
            stored = json.loads(raw) if raw else []
        except ValueError:
            stored = []
        return [
            Note(str(n.get("by", "")), str(n.get("at", "")), str(n.get("text", "")))
            for n in stored
            if isinstance(n, dict)
        ]

    async def text(self, user: UserKey) -> str:
        """Every note's text, for search."""
        return "\n".join(n.text for n in await self.of(user))

    async def add(self, user: UserKey, note: Note) -> None:
        lock = f"{notes_name(user)}:lock"
        for _ in range(250):
            if await self.storage.claim(lock, LOCK_TTL):
                break
            await asyncio.sleep(0.02)
        else:
            raise StorageError("the notes of an applicant stayed locked")
        try:
            notes = [*await self.of(user), Note(note.by, note.at, note.text[:MAX_NOTE])]
            data = [n.__dict__ for n in notes[-MAX_NOTES:]]
            await self.storage.set_value(
                notes_name(user), json.dumps(data, ensure_ascii=False).encode()
            )
        finally:
            await self.storage.release(lock)

    async def erase(self, user: UserKey) -> None:
        await self.storage.delete_value(notes_name(user))
