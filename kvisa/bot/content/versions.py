"""Content versions: the flows directory packed into one hashed blob, stored by the storage
backend (`Storage.publish_content`), and read back as `Flows` by every replica.

A packed version holds every YAML file of flows/ as text and, for the diff and the change
notices, the Chinese of each of its texts as the catalogs gave it when it was published.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from kvisa.bot.content.loader import FILES, load_flows
from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Catalogs
from kvisa.errors import FlowError
from kvisa.storage import Storage

log = logging.getLogger(__name__)

FORMAT = 1
NAMES = (*FILES, "calendar")
# A replica looks for a newly published version at most this often (seconds).
CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class Packed:
    """A flows directory as stored: its YAML texts, the Chinese of its texts, and the hash."""

    files: Mapping[str, str]
    zh: Mapping[str, str]

    @property
    def sha256(self) -> str:
        """The hash of the content itself: the YAML files, by name (not the translations)."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        return digest.hexdigest()

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"format": FORMAT, "files": dict(self.files), "zh": dict(self.zh)},
            option=orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> Packed:
        try:
            data = orjson.loads(blob)
            files, zh = data["files"], data["zh"]
            if data.get("format") != FORMAT or not (
                isinstance(files, dict) and isinstance(zh, dict)
            ):
                raise ValueError("unknown format")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise FlowError(
                "content version", None, f"not a packed flows directory: {exc}"
            ) from exc
        return cls(
            {str(k): str(v) for k, v in files.items()}, {str(k): str(v) for k, v in zh.items()}
        )

    def chinese(self, msgid: str) -> str:
        return self.zh.get(msgid, msgid)


def pack(root: Path, catalogs: Catalogs) -> tuple[Packed, Flows]:
    """The flows directory `root`, validated (translations included), packed."""
    flows = load_flows(root, translated=catalogs.has_chinese)
    files = {}
    for name in NAMES:
        path = root / f"{name}.yaml"
        try:
            files[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FlowError(f"flows/{name}.yaml", None, f"cannot read: {exc}") from exc
    zh = {msgid: catalogs["zh"](msgid) for msgid, _, _ in flows.messages}
    return Packed(files, zh), flows


def unpack(packed: Packed, version: int | None = None) -> Flows:
    """The flows of a packed version (validated again; translations are not required: the
    catalogs may have moved on since it was published)."""
    with tempfile.TemporaryDirectory(prefix="kvisa-flows-") as scratch:
        root = Path(scratch)
        for name, text in packed.files.items():
            if name in NAMES:
                (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        return replace(load_flows(root), version=version)


class ContentSource:
    """The flows a replica serves: the current published version, else the flows directory.

    `current()` looks at the stored current id at most once every CHECK_INTERVAL seconds (one
    cheap read) and loads a new version when it changed; a turn takes the Flows it returns
    once and is evaluated against it throughout, so one turn sees one version.
    """

    def __init__(
        self,
        storage: Storage,
        fallback: Flows,
        *,
        interval: float = CHECK_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage, self.interval, self.monotonic = storage, interval, monotonic
        self.flows = fallback
        self._checked = -float("inf")
        self._refused: int | None = None

    async def current(self) -> Flows:
        now = self.monotonic()
        if now - self._checked < self.interval:
            return self.flows
        self._checked = now
        version_id = await self.storage.current_content_id()
        if version_id is None or version_id in (self.flows.version, self._refused):
            return self.flows
        stored = await self.storage.content_version(version_id)
        if stored is None:
            return self.flows
        try:
            flows = unpack(Packed.from_bytes(stored[1]), version_id)
            flows.faq_index  # noqa: B018 (built here, not on the first typed question)
            self.flows = flows
        except FlowError as exc:
            # Validated when published; a release that reads it differently keeps the old one.
            self._refused = version_id
            log.error("content version %s cannot be loaded: %s", version_id, exc)
            return self.flows
        log.info("now serving content version %s", version_id)
        return self.flows


def stamped(data: dict[str, Any] | None, flows: Flows) -> dict[str, Any] | None:
    """A record about to be written, with the content version its verdict and timeline were
    just worked out under (only once it has a verdict; the same dict when nothing changes)."""
    if data is None or not data.get("finished") or data.get("content_version") == flows.version:
        return data
    return {**data, "content_version": flows.version}
