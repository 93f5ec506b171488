"""WeChat messages to the engine's Inbound, and Outbound back to WeChat texts. Pure functions.

A WeChat chat shows text and pictures only: options become numbered lines (the user answers
with the number or the label), a picture goes as an image message, any other file as a link.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wechatpy.events import BaseEvent  # type: ignore[import-untyped]
from wechatpy.messages import BaseMessage  # type: ignore[import-untyped]

from kvisa.bot.messages import Attachment, Inbound, Outbound
from kvisa.identity import UserKey

# WeChat refuses a customer-service text over 2048 bytes of UTF-8 (45002 "content size out of
# limit") and cuts passive replies near it; it documents no exact figure, so stay below.
TEXT_LIMIT = 2000
# Template message fields show about 20 characters since May 2023; the rest is cut.
TEMPLATE_FIELD = 20
TEMPLATE_REMARK = 200
# Messages a user sends that the bot cannot read: it asks them to type instead.
UNREADABLE = frozenset(
    {
        "voice",
        "image",
        "location",
        "video",
        "shortvideo",
        "link",
        "file",
        "miniprogrampage",
        "unknown",
    }
)
# XML 1.0 allows no control characters but tab and newlines, not even inside CDATA.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Unsubscribed:
    """The user unfollowed the account: mark them inactive; nothing can be answered."""

    user: UserKey


@dataclass(frozen=True)
class Unreadable:
    """A voice message, a picture, a location...: answered with a polite "please type"."""

    user: UserKey
    kind: str


Event = Inbound | Unsubscribed | Unreadable | None  # None: nothing to do (e.g. a VIEW event)


@dataclass(frozen=True)
class Picture:
    """An image sent as an image message (uploaded as temporary media first)."""

    attachment: Attachment


Part = str | Picture  # what goes out as one WeChat message, in order


def user_of(message: BaseMessage) -> UserKey:
    return UserKey("wechat", message.source)


def event_of(message: BaseMessage, at: dt.datetime) -> Event:
    """What a WeChat message, as wire.parse gives it, means for the engine."""
    user = user_of(message)
    if message.type == "text":
        return Inbound.from_text(user, message.content or "", at)
    if not is_event(message):
        return Unreadable(user, message.type if message.type in UNREADABLE else "unknown")
    event = getattr(message, "event", "")
    if event == "subscribe":
        return Inbound.from_text(user, "/start", at)
    if event in ("subscribe_scan", "scan"):
        # A park's QR code: `qrscene_lingang` on subscribing (wechatpy strips the prefix),
        # `lingang` when a follower scans it; both work like a Telegram deep link.
        return Inbound.from_text(user, f"/start {message.scene_id or ''}".strip(), at)
    if event == "click":
        return Inbound.from_text(user, "/" + (message.key or "help"), at)
    if event == "unsubscribe":
        return Unsubscribed(user)
    return None


def is_event(message: BaseMessage) -> bool:
    # An event wechatpy has no class for is one too: wire.parse makes it a BaseEvent.
    return isinstance(message, BaseEvent)


def retry_key(message: BaseMessage) -> str:
    """What a retry of this message has in common with the first try: MsgId for messages,
    sender + CreateTime for events (plus the event, so two events in one second both count)."""
    if not is_event(message) and message.id:
        return f"msg:{message.id}"
    return f"event:{message.source}:{message.time}:{getattr(message, 'event', message.type)}"


def text_of(outbound: Outbound) -> str:
    """The message text with its options as numbered lines."""
    lines = [outbound.text] if outbound.text else []
    lines += [f"{number}. {option.label}" for number, option in enumerate(outbound.options, 1)]
    return "\n".join(lines)


def parts_of(outbounds: Sequence[Outbound], file_link: Callable[[Attachment], str]) -> list[Part]:
    """The WeChat messages for a turn's replies, as few as fit: consecutive texts are joined
    (WeChat allows one passive reply and a handful of customer-service messages per message
    the user sends), pictures go in between, other files become `file_link` texts."""
    parts: list[Part] = []
    texts: list[str] = []
    for outbound in outbounds:
        texts.append(text_of(outbound))
        for attachment in outbound.attachments:
            if attachment.content_type.startswith("image/"):
                texts.append(attachment.caption)
                parts += pack(texts)
                texts = []
                parts.append(Picture(attachment))
            else:
                texts.append(file_link(attachment))
    return parts + pack(texts)


def pack(texts: Iterable[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Texts joined by blank lines into as few messages as fit in `limit` bytes each."""
    messages: list[str] = []
    for piece in (p for text in texts if text.strip() for p in split(text.strip(), limit)):
        if messages and utf8_len(messages[-1]) + 2 + utf8_len(piece) <= limit:
            messages[-1] += "\n\n" + piece
        else:
            messages.append(piece)
    return messages


def split(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` bytes, cut between lines where possible, so a
    numbered option is never torn in two."""
    if (
        not text.startswith("\n") and utf8_len(text) <= limit
    ):  # most replies: as the loop would give
        return [text] if text.strip() else []
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        for chunk in cut(line, limit):
            if not current:
                current = chunk
            elif utf8_len(current) + 1 + utf8_len(chunk) <= limit:
                current += "\n" + chunk
            else:
                pieces.append(current)
                current = chunk
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def cut(line: str, limit: int) -> list[str]:
    """A single line longer than `limit` bytes, cut at character boundaries."""
    if utf8_len(line) <= limit:
        return [line]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = utf8_len(char)
        if size + width > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    chunks.append("".join(current))
    return chunks


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def xml_text(text: str) -> str:
    """Text that is safe inside the CDATA wechatpy writes: no control characters, and no
    `]]>` that would end the CDATA early and let the rest be read as XML."""
    return XML_ILLEGAL.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def template_data(outbounds: Sequence[Outbound]) -> dict[str, dict[str, str]]:
    """Outbound text in the reminder template's fields: the first line is the title
    (`first`, `keyword1`), the second line the detail (`keyword2`, e.g. a date), the rest the
    remark. The template in the account's console is expected to use these four fields."""
    lines = [line.strip() for o in outbounds for line in text_of(o).splitlines() if line.strip()]
    title = lines[0] if lines else ""
    detail = lines[1] if len(lines) > 1 else ""
    return {
        "first": {"value": clip(title, TEMPLATE_REMARK)},
        "keyword1": {"value": clip(title, TEMPLATE_FIELD)},
        "keyword2": {"value": clip(detail, TEMPLATE_FIELD)},
        "remark": {"value": clip("\n".join(lines[1:]), TEMPLATE_REMARK)},
    }
