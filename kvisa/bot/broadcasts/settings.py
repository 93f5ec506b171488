"""Broadcast settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from kvisa.errors import ConfigError
from kvisa.identity import UserKey

CHANNELS = ("telegram", "wechat", "console")


def parse_admins(value: str) -> frozenset[UserKey]:
    """`telegram:12345,wechat:oAbC...`: channel-qualified ids, comma or space separated."""
    admins = set()
    for item in value.replace(",", " ").split():
        channel, sep, user_id = item.partition(":")
        if not sep or channel not in CHANNELS or not user_id:
            raise ConfigError("KVISA_ADMINS", f"expected ids such as telegram:12345, got {item!r}")
        admins.add(UserKey(channel, user_id))
    return frozenset(admins)


@dataclass(frozen=True)
class BroadcastSettings:
    admins: frozenset[UserKey] = frozenset()
    admin_token: str | None = field(
        default=None, repr=False
    )  # the HTTP admin API is off without it
    agency: Mapping[str, str] = field(
        default_factory=lambda: {"en": "the KVisa team", "zh": "KVisa 团队"}
    )
    concurrency: int = 8  # messages on the wire at once (the pacer sets the rate)
    poll_interval: float = (
        1.0  # how often the leader looks for broadcasts queued by other processes
    )
    progress_interval: float = 3.0  # how often figures are saved and the admin's message updated
    # 429s from this many different chats within a second mean the bot's own limit, not one
    # chat's: every broadcast message then waits retry_after.
    flood_spread: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BroadcastSettings:
        env = os.environ if env is None else env
        defaults = cls()
        name_en = env.get("KVISA_AGENCY_NAME", "").strip() or defaults.agency["en"]
        name_zh = env.get("KVISA_AGENCY_NAME_ZH", "").strip() or (
            name_en if env.get("KVISA_AGENCY_NAME") else defaults.agency["zh"]
        )
        token = env.get("KVISA_ADMIN_TOKEN", "").strip() or None
        if token is not None and len(token) < 16:
            raise ConfigError(
                "KVISA_ADMIN_TOKEN", "must be at least 16 characters (use a random string)"
            )
        return cls(
            admins=parse_admins(env.get("KVISA_ADMINS", "")),
            admin_token=token,
            agency={"en": name_en, "zh": name_zh},
        )
