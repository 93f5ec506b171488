"""Storage backends behind one ABC: SQLite (embedded default) and Redis (production)."""

from __future__ import annotations

from kvisa.storage.base import Record, Storage

__all__ = ["Record", "Storage", "open_storage"]


def open_storage(url: str) -> Storage:
    """Build a backend from a URL: ``sqlite:///path/to/file.db`` or ``redis://host:port/db``
    (or ``redis+sentinel://host:port/master/db``)."""
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        from kvisa.storage.redis import RedisStorage

        return RedisStorage.from_url(url)
    if url.startswith("sqlite:"):
        from kvisa.storage.sqlite import SqliteStorage

        return SqliteStorage.from_url(url)
    raise ValueError(f"unsupported storage URL scheme: {url.split(':', 1)[0]!r}")
