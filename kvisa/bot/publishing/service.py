"""Publishing, as the command line, the admin API and the workspace do it: the candidate (the
flows directory in effect) or an old version, what it changes, a dry run, the publish."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from kvisa.bot.content.diff import Change, diff, report
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import Packed, pack, unpack
from kvisa.bot.i18n import Catalogs
from kvisa.bot.publishing.recheck import Summary, dry_run
from kvisa.errors import InputError
from kvisa.storage import Storage
from kvisa.storage.base import ContentVersion

CURRENT, DRAFT = "current", "draft"  # names of the current version and of the flows directory


@dataclass(frozen=True)
class Plan:
    """What publishing would do: the content to publish, against the current version."""

    current: int | None
    old: Packed
    new: Packed
    old_flows: Flows
    new_flows: Flows
    rollback_of: int | None

    @property
    def unchanged(self) -> bool:
        return self.current is not None and self.old.sha256 == self.new.sha256

    def changes(self) -> list[Change]:
        return diff(self.old, self.new)


def parse_id(value: object, field: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError(field, "a version id (a whole number from the version list)", value)
    return int(text)


class Publisher:
    def __init__(self, storage: Storage, catalogs: Catalogs, flows_dir: Path) -> None:
        self.storage, self.catalogs, self.flows_dir = storage, catalogs, flows_dir

    async def stored(self, version_id: int, field: str) -> tuple[ContentVersion, Packed]:
        found = await self.storage.content_version(version_id)
        if found is None:
            last = await self.storage.current_content_id()
            known = f"versions 1 to {last}" if last else "no version is published yet"
            raise InputError(field, f"a published version ({known})", str(version_id))
        return found[0], Packed.from_bytes(found[1])

    async def side(self, value: str, field: str) -> Packed:
        """A version by id, `current`, or `draft` (the flows directory in effect)."""
        if value == DRAFT:
            return pack(self.flows_dir, self.catalogs)[0]
        if value == CURRENT:
            current = await self.storage.current_content_id()
            if current is None:
                raise InputError(field, "a published version", "current (none yet)")
            return (await self.stored(current, field))[1]
        return (await self.stored(parse_id(value, field), field))[1]

    async def plan(self, rollback_of: int | None = None) -> Plan:
        """Publishing the flows directory, or (`rollback_of`) an old version's content again."""
        current = await self.storage.current_content_id()
        if rollback_of is not None:
            new = (await self.stored(rollback_of, "ID"))[1]
            new_flows = unpack(new)
        else:
            new, new_flows = pack(self.flows_dir, self.catalogs)
        if current is None:  # the first version: the baseline, nothing to compare with
            return Plan(None, new, new, new_flows, new_flows, rollback_of)
        old = (await self.stored(current, "current"))[1]
        return Plan(current, old, new, unpack(old, current), new_flows, rollback_of)

    async def dry_run(self, plan: Plan, today: dt.date) -> Summary:
        """Every applicant re-checked against the plan; nothing written or sent."""
        return await dry_run(self.storage, plan.old_flows, plan.new_flows, today)

    async def publish(self, plan: Plan, author: str, note: str) -> ContentVersion:
        return await self.storage.publish_content(
            plan.new.to_bytes(),
            author=author,
            note=note,
            sha256=plan.new.sha256,
            published_at=time.time(),
            rollback_of=plan.rollback_of,
        )

    def report(self, old: Packed, new: Packed) -> dict[str, list[str]]:
        """The changes as lines, in each language."""
        changes = diff(old, new)
        return {lang: report(self.catalogs[lang], changes, old, new) for lang in ("en", "zh")}
