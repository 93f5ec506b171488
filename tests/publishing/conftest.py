"""Content-version fixtures: applicants stored on both backends, a copy of flows/ to edit,
and publishing from a directory as `kvisa content publish` does."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.content.versions import pack
from kvisa.bot.i18n import Catalogs, Lang
from kvisa.bot.paths import flows_dir
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.identity import UserKey
from kvisa.storage.base import ContentVersion, Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage

CATALOGS = Catalogs()
PROFILE: dict[str, Any] = {
    "degree": "master",
    "degree_field_stem": True,
    "degree_from_recognized": True,
    "stem_work_at_recognized": False,
    "birth_date": "1996-03-01",
    "residence_country": "DE",
    "passport_expiry": "2031-01-01",
    "planned_application": "2026-12-01",
    "plan": "employed",
    "park": "other",
}


def applicant(
    lang: Lang = "en", events: dict[str, str] | None = None, **answers: Any
) -> dict[str, Any]:
    """A stored applicant who agreed and has their verdict."""
    return Session(
        lang=lang,
        lang_chosen=True,
        consent_at="2026-11-01T00:00:00+00:00",
        finished=True,
        awaiting=Waiting(Kind.MENU),
        answers={**PROFILE, **answers},
        events=events or {},
        last_seen="2026-11-25T03:00:00+00:00",
    ).to_json()


async def store(storage: Storage, people: dict[str, dict[str, Any]]) -> None:
    for name, data in people.items():
        assert await storage.put(UserKey("telegram", name), data, expected_version=0)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        async with SqliteStorage(tmp_path / "kvisa.db") as sqlite:
            yield sqlite
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        async with RedisStorage.from_url(url, prefix=prefix) as redis:
            yield redis


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(flows_dir(), target)
    return target


def edit(path: Path, pattern: str, replacement: str) -> None:
    """Replace the one match of `pattern` (a regular expression, multi-line) in the file."""
    text = path.read_text(encoding="utf-8")
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    path.write_text(new, encoding="utf-8")


async def publish(
    storage: Storage, directory: Path, rollback_of: int | None = None
) -> ContentVersion:
    packed, _ = pack(directory, CATALOGS)
    return await storage.publish_content(
        packed.to_bytes(),
        author="test",
        note="",
        sha256=packed.sha256,
        published_at=time.time(),
        rollback_of=rollback_of,
    )
