"""Who a message comes from: a user on one channel. Below everything else, so that storage,
the engine and the channels all name users the same way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class UserKey:
    """A user on one channel: ``telegram:12345``, ``wechat:oAbC...``, ``console:alice``."""

    channel: str
    id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> UserKey:
        channel, sep, ident = text.partition(":")
        if not sep or not channel or not ident:
            raise ValueError(f"not a channel-qualified user id: {text!r}")
        return cls(channel, ident)
