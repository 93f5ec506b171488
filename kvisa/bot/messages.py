"""What channels hand the engine and what it hands back. No channel library is imported here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kvisa.identity import UserKey


@dataclass(frozen=True)
class Inbound:
    """One user message: typed text, a chosen option, or a command."""

    user: UserKey
    at: dt.datetime  # aware; the channel takes it from the injected clock
    text: str | None = None
    option: str | None = None  # an option id from a button, or "#N": the N-th option shown
    prompt: int | None = None  # the prompt the option belongs to (stale-button detection)
    command: str | None = None  # without the slash, lower case: "start", "edit"
    args: str = ""
    lang_hint: str | None = None  # the platform's language code, e.g. "zh-hans"

    @classmethod
    def from_text(
        cls, user: UserKey, text: str, at: dt.datetime, lang_hint: str | None = None
    ) -> Inbound:
        """Parse `/cmd args` (also `/cmd@BotName`) or plain text."""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1 and not stripped[1].isspace():
            head, _, args = stripped[1:].partition(" ")
            command = head.split("@", 1)[0].lower()
            return cls(user, at, command=command, args=args.strip(), lang_hint=lang_hint)
        return cls(user, at, text=text, lang_hint=lang_hint)


@dataclass(frozen=True)
class UiOption:
    """A choice offered to the user: a button on Telegram, a numbered line elsewhere."""

    id: str
    label: str


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message. A turn may leave `data` empty and give `make` instead: the
    engine produces the bytes in a worker thread after the turn is saved (drawing a picture
    takes tens of milliseconds of CPU, which must not stall other users' replies)."""

    filename: str
    content_type: str
    data: bytes = b""
    caption: str = ""
    make: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Outbound:
    text: str
    options: tuple[UiOption, ...] = ()
    prompt: int | None = None  # set when options belong to a prompt that can go stale
    attachments: tuple[Attachment, ...] = field(default=())


async def materialize(outbound: Outbound) -> Outbound:
    """Produce deferred attachments (in a thread), so channels only ever see bytes."""
    import asyncio

    if not any(a.make for a in outbound.attachments):
        return outbound
    made = []
    for attachment in outbound.attachments:
        if attachment.make is not None:
            attachment = replace(
                attachment, data=await asyncio.to_thread(attachment.make), make=None
            )
        made.append(attachment)
    return replace(outbound, attachments=tuple(made))
