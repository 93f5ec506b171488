"""The durable broadcast queue, kept in the storage backend (Redis or SQLite) as values.

- `bc:index`: the ids of all broadcasts, oldest first (changed under a claim).
- `bc:<id>`: the broadcast: texts, segment, author, status, figures.
- `bc:<id>:r:<n>`: one chunk of recipients, {user key: state}.
- `bc:<id>:cancel`: present when an admin asked to stop it.
- `bc:<id>:m:<n>`: for a broadcast of kind `notice` (a content change's personal notices,
  bot/publishing), each recipient's own message, chunked as the recipients are.

A recipient's state goes pending -> sending -> sent | failed | blocked | undeliverable |
skipped. `sending` is written before the message leaves and the outcome after it: a process
that dies in between leaves `sending`, which the next run turns into `uncertain` and never
sends again (an update must never arrive twice; the admin sees how many are uncertain). A
clean stop lets every send in flight finish first, so a restart loses and repeats nothing.

When a broadcast ends, its recipient chunks are deleted and only the figures are kept: who
received a policy update is not worth keeping once it cannot be sent twice. A recipient erased
before then (/delete, the retention purge) is taken out of every chunk at once: their row stays,
for the figures, under an anonymous name (`erased:<random>`), pending turned into skipped. A
chunk is changed under a claim (`bc:<id>:r:<n>:lock`), by the runner too, which takes what
was erased meanwhile from the stored chunk (`change_chunk`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kvisa.identity import UserKey
from kvisa.storage.base import Storage

CHUNK = 200  # recipients per stored chunk: each state change rewrites one chunk (a few KB)
INDEX = "bc:index"
KEEP = 200  # broadcasts listed; older ones drop out of the index
ERASED = "erased:"  # the name of an erased recipient's row starts so
LOCK_TTL = 5.0  # seconds a chunk or the index may stay locked by one change

State = Literal[
    "pending", "sending", "sent", "failed", "blocked", "undeliverable", "skipped", "uncertain"
]
FINAL: tuple[State, ...] = ("sent", "failed", "blocked", "undeliverable", "skipped", "uncertain")
# An erased recipient is not sent to; one on the wire at that moment may have received it.
ERASED_STATE: dict[str, State] = {"pending": "skipped", "sending": "uncertain"}
Status = Literal["queued", "running", "done", "cancelled"]


@dataclass
class Broadcast:
    id: str
    en: str
    zh: str
    segment: str  # canonical text form
    author: str  # "telegram:123", "cli", "http"
    created_at: str  # ISO
    total: int
    per_channel: dict[str, int]
    chunks: int
    status: Status = "queued"
    counts: dict[str, int] = field(default_factory=dict)  # state -> recipients
    started_at: str | None = None
    finished_at: str | None = None
    rate: float = 0.0  # messages a second lately (for the time left)
    throttled: int = 0  # 429s received (flood control)
    progress_ref: str | None = None  # the admin's progress message, where it can be edited
    # "news": the same update for everyone, who may opt out (/news off); "notice": each
    # recipient's own message about a change to their case (bot/publishing), no opt-out.
    kind: str = "news"

    @property
    def remaining(self) -> int:
        return self.total - sum(self.counts.get(state, 0) for state in FINAL)

    @property
    def seconds_left(self) -> float | None:
        if self.status in ("done", "cancelled") or not self.remaining:
            return 0.0
        return self.remaining / self.rate if self.rate > 0 else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"remaining": self.remaining, "seconds_left": self.seconds_left}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Broadcast:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class BroadcastStore:
    """Broadcasts and their recipients' states, on any Storage."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def _get_json(self, name: str) -> Any:
        raw = await self.storage.get_value(name)
        return None if raw is None else json.loads(raw)

    async def _set_json(self, name: str, value: Any) -> None:
        await self.storage.set_value(
            name, json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        )

    # --- broadcasts ---------------------------------------------------------------------------

    async def create(
        self,
        *,
        en: str,
        zh: str,
        segment: str,
        author: str,
        created_at: str,
        recipients: Sequence[UserKey],
        broadcast_id: str | None = None,
        messages: Mapping[str, str] | None = None,
    ) -> Broadcast:
        """Store a new broadcast with every recipient pending, then list it (the runner only
        sees it once it is complete). With `messages` (recipient -> text) it is a broadcast of
        kind notice, each recipient getting their own text."""
        broadcast_id = broadcast_id or await self._new_id()
        chunks = [recipients[i : i + CHUNK] for i in range(0, len(recipients), CHUNK)]
        for n, chunk in enumerate(chunks):
            if messages is not None:
                await self._set_json(
                    f"bc:{broadcast_id}:m:{n}", {str(u): messages[str(u)] for u in chunk}
                )
            await self._set_json(
                f"bc:{broadcast_id}:r:{n}", {str(user): "pending" for user in chunk}
            )
        broadcast = Broadcast(
            broadcast_id,
            en,
            zh,
            segment,
            author,
            created_at,
            len(recipients),
            dict(Counter(user.channel for user in recipients)),
            len(chunks),
            counts={"pending": len(recipients)},
            kind="news" if messages is None else "notice",
        )
        await self.save(broadcast)
        await self.add_to_index(broadcast_id)
        return broadcast

    async def add_to_index(self, broadcast_id: str) -> None:
        """Put a stored broadcast in the index (once), where the runner finds it."""
        await self._change_index(
            lambda ids: [*(i for i in ids if i != broadcast_id), broadcast_id][-KEEP:]
        )

    async def messages(self, broadcast_id: str, n: int) -> dict[str, str]:
        """The recipients' own messages of chunk `n` (a notice)."""
        return dict(await self._get_json(f"bc:{broadcast_id}:m:{n}") or {})

    async def _new_id(self) -> str:
        while True:
            candidate = secrets.token_hex(3)  # short enough to type in /broadcast_cancel
            if await self.storage.get_value(f"bc:{candidate}") is None:
                return candidate

    async def _change_index(self, change: Any) -> None:
        async with self._locked("bc:index-lock", "the broadcast index"):
            await self._set_json(INDEX, change(await self._get_json(INDEX) or []))

    @asynccontextmanager
    async def _locked(self, lock: str, what: str) -> AsyncIterator[None]:
        for _ in range(200):
            if await self.storage.claim(lock, LOCK_TTL):
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError(f"{what} stayed locked")
        try:
            yield
        finally:
            await self.storage.release(lock)

    async def get(self, broadcast_id: str) -> Broadcast | None:
        data = await self._get_json(f"bc:{broadcast_id}")
        return Broadcast.from_json(data) if data else None

    async def save(self, broadcast: Broadcast) -> None:
        await self._set_json(f"bc:{broadcast.id}", asdict(broadcast))

    async def ids(self) -> list[str]:
        return list(await self._get_json(INDEX) or [])

    async def recent(self, limit: int = 10) -> list[Broadcast]:
        found = [await self.get(broadcast_id) for broadcast_id in (await self.ids())[-limit:]]
        return [b for b in reversed(found) if b is not None]

    async def cancel(self, broadcast_id: str) -> Broadcast | None:
        broadcast = await self.get(broadcast_id)
        if broadcast is not None and broadcast.status in ("queued", "running"):
            await self.storage.set_value(f"bc:{broadcast_id}:cancel", b"1")
        return broadcast

    async def cancelled(self, broadcast_id: str) -> bool:
        return await self.storage.get_value(f"bc:{broadcast_id}:cancel") is not None

    # --- recipients ---------------------------------------------------------------------------

    async def chunk(self, broadcast_id: str, n: int) -> dict[str, State]:
        return dict(await self._get_json(f"bc:{broadcast_id}:r:{n}") or {})

    async def save_chunk(self, broadcast_id: str, n: int, states: dict[str, State]) -> None:
        """Write a chunk as it is (a new broadcast's; else see change_chunk)."""
        await self._set_json(f"bc:{broadcast_id}:r:{n}", states)

    async def change_chunk(
        self,
        broadcast_id: str,
        n: int,
        change: Callable[[dict[str, State]], dict[str, State]],
    ) -> None:
        """Read, change and write a chunk under its lock, so an erasure and the runner never
        overwrite each other's change."""
        name = f"bc:{broadcast_id}:r:{n}"
        async with self._locked(f"{name}:lock", f"recipients {n} of broadcast {broadcast_id}"):
            stored = await self._get_json(name)
            if stored is None:  # the broadcast ended: its recipients are forgotten
                return
            await self._set_json(name, change(dict(stored)))

    async def forget_recipient(self, user: UserKey) -> None:
        """Take `user` out of every broadcast that still lists recipients (see the module
        docstring); nothing happens where they are not listed."""
        name = str(user)

        def anonymised(states: dict[str, State]) -> dict[str, State]:
            if name not in states:
                return states
            state = states.pop(name)
            erased = ERASED_STATE.get(state, state)
            states[f"{ERASED}{secrets.token_hex(8)}"] = erased
            return states

        for broadcast_id in await self.ids():
            broadcast = await self.get(broadcast_id)
            if broadcast is None or broadcast.status not in ("queued", "running"):
                continue
            for n in range(broadcast.chunks):
                await self.change_chunk(broadcast_id, n, anonymised)
                if broadcast.kind == "notice":  # their own message goes with them
                    texts = await self.messages(broadcast_id, n)
                    if texts.pop(name, None) is not None:
                        await self._set_json(f"bc:{broadcast_id}:m:{n}", texts)

    async def forget_recipients(self, broadcast: Broadcast) -> None:
        for n in range(broadcast.chunks):
            await self.storage.delete_value(f"bc:{broadcast.id}:r:{n}")
            await self.storage.delete_value(f"bc:{broadcast.id}:m:{n}")
        await self.storage.delete_value(f"bc:{broadcast.id}:cancel")


def tally(states: Iterable[str]) -> dict[str, int]:
    return dict(Counter(states))
