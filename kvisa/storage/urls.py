"""Redis URLs, read without importing redis: plain ones (`redis://`, `rediss://`, `unix://`),
which redis-py reads itself, and the Sentinel form, which it has no URL for:

    redis+sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db]

the sentinels to ask (port 26379 when left out), the name they know the master by, and the
database (0 when left out). The user and password are the data nodes' (the master's and its
replicas'); the sentinels are asked without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://host:port[,host:port]/master-name[/db]"


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME + "://")


def parse_sentinel(url: str) -> SentinelTarget:
    """The parts of a `redis+sentinel://` URL; ValueError saying what is wrong."""
    rest = url.removeprefix(SENTINEL_SCHEME + "://").partition("?")[0].partition("#")[0]
    netloc, _, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")  # user@host: a user name alone
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":") if ":" in item else (item, "", "")
        host = host.strip("[]")
        if not host:
            raise ValueError("no sentinel host")
        if colon and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"not a port: {port!r}")
        sentinels.append((host, int(port) if colon else SENTINEL_PORT))
    parts = [part for part in path.split("/") if part]
    if not parts:
        raise ValueError("no master name")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("the database must be a number")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelTarget(tuple(sentinels), unquote(parts[0]), db, username, password)
