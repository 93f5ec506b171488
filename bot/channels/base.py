"""What every messaging platform adapter provides, and what it is given."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.engine.types import Outbound
from storage.base import UserKey

if TYPE_CHECKING:
    from aiohttp import web

    from bot.clock import Clock
    from bot.config import Settings
    from bot.engine.engine import Engine
    from bot.i18n import Catalogs


@dataclass(frozen=True)
class Services:
    """What `kvisa serve` hands each channel: one engine, one storage, one clock."""

    settings: Settings
    engine: Engine
    catalogs: Catalogs
    clock: Clock


class Channel(ABC):
    """A platform adapter. Replies to a user's message are the adapter's own business; `send`
    is how the bot speaks first (reminders, broadcasts), from a stored UserKey only."""

    name: str

    def routes(self, app: web.Application) -> None:  # noqa: B027 - optional hook
        """Add this channel's HTTP endpoints (webhooks) to the shared server."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin receiving (long polling, menus); return once running."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop receiving and release connections."""

    @abstractmethod
    async def send(self, user: UserKey, messages: Sequence[Outbound]) -> None:
        """Deliver messages to a user outside a reply. Raises Blocked, RateLimited or ChannelError."""
