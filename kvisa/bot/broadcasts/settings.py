"""What the broadcast runner and the admin chat need: from the settings, plus tuning knobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from kvisa.bot.settings import DEFAULT_AGENCY, Settings
from kvisa.identity import UserKey


@dataclass(frozen=True)
class BroadcastSettings:
    """Who may broadcast, the admin API's token, the sender's name, and the runner's pace."""

    admins: frozenset[UserKey] = frozenset()
    # The HTTP admin API is off without it.
    admin_token: SecretStr | None = field(default=None, repr=False)
    agency: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_AGENCY))
    concurrency: int = 8  # messages on the wire at once (the pacer sets the rate)
    poll_interval: float = 1.0  # how often the leader looks for broadcasts queued elsewhere
    progress_interval: float = 3.0  # how often figures are saved and the admin's message updated
    # 429s from this many different chats within a second mean the bot's own limit, not one
    # chat's: every broadcast message then waits retry_after.
    flood_spread: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> BroadcastSettings:
        """KVISA_ADMINS, KVISA_ADMIN_TOKEN and the agency's name; the knobs at their defaults."""
        return cls(
            admins=frozenset(UserKey.parse(admin) for admin in settings.admins),
            admin_token=settings.admin_token,
            agency=settings.agency,
        )
