"""Telegram updates to Inbound, Outbound to Bot API calls. Pure functions: no network, no clock.

Texts go out as plain text (no parse_mode), so nothing a user typed, or a label made from it,
can ever be read as formatting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from kvisa.bot.i18n import Text
from kvisa.bot.messages import Attachment, Inbound, Outbound
from kvisa.identity import UserKey

CHANNEL = "telegram"
TEXT_LIMIT = 4096  # characters of a message, counted in UTF-16 code units as Telegram does
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
_POSITIONAL = re.compile(r"#[0-9]+")


# --- who and what came in ---------------------------------------------------------------------


def user_key(chat_id: int) -> UserKey:
    return UserKey(CHANNEL, str(chat_id))


def chat_id(user: UserKey) -> int:
    if user.channel != CHANNEL or not user.id.lstrip("-").isdigit():
        raise ValueError(f"not a Telegram chat: {user}")
    return int(user.id)


def update_user(update: Update) -> UserKey | None:
    """Whose update this is (their updates are handled in order); None for what we ignore:
    anything but private messages and button presses (the bot keeps personal data, so it
    does not talk in groups)."""
    if update.message is not None:
        return user_key(update.message.chat.id) if update.message.chat.type == "private" else None
    query = update.callback_query
    if query is not None:
        if isinstance(query.message, Message) and query.message.chat.type != "private":
            return None
        return user_key(query.from_user.id)
    return None


def inbound_from_message(message: Message, at: dt.datetime) -> Inbound:
    """Text or a command; anything else (sticker, photo without caption) arrives as empty text,
    which the engine answers with a hint."""
    language = message.from_user.language_code if message.from_user else None
    text = message.text if message.text is not None else (message.caption or "")
    return Inbound.from_text(user_key(message.chat.id), text, at, language)


def inbound_from_callback(query: CallbackQuery, at: dt.datetime) -> Inbound | None:
    """A button press: the option and the prompt it belongs to, so the engine spots stale ones."""
    if query.data is None:
        return None
    prompt, option = parse_callback_data(query.data)
    return Inbound(
        user_key(query.from_user.id),
        at,
        option=option,
        prompt=prompt,
        lang_hint=query.from_user.language_code,
    )


# --- buttons ----------------------------------------------------------------------------------


def callback_data(prompt: int | None, position: int, option_id: str) -> str:
    """`<prompt>:<option id>`, or `<prompt>:#<position>` (1-based) when the id would not fit
    Telegram's 64 bytes or could be mistaken for a position."""
    head = "" if prompt is None else str(prompt)
    data = f"{head}:{option_id}"
    if len(data.encode()) > CALLBACK_DATA_LIMIT or _POSITIONAL.fullmatch(option_id):
        data = f"{head}:#{position}"
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"prompt number too large for callback data: {prompt}")
    return data


def parse_callback_data(data: str) -> tuple[int | None, str]:
    """The prompt number (None when absent) and the option: an id or `#N`."""
    head, sep, option = data.partition(":")
    if not sep or not (head == "" or head.isascii() and head.isdigit()):
        return None, data  # not ours: the engine answers it as a stale choice
    return (int(head) if head else None), option


def keyboard(outbound: Outbound) -> InlineKeyboardMarkup | None:
    """One button a row: labels such as "Degree: Master's" are too long to share a row."""
    if not outbound.options:
        return None
    rows = [
        [
            InlineKeyboardButton(
                text=option.label or option.id,
                callback_data=callback_data(outbound.prompt, position, option.id),
            )
        ]
        for position, option in enumerate(outbound.options, 1)
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- texts ------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 code units."""
    size = 0
    for index, char in enumerate(text):
        size += 2 if ord(char) > 0xFFFF else 1
        if size > limit:
            return index
    return len(text)


def _cut_line(line: str, limit: int) -> list[str]:
    """A line longer than the limit, cut at its last space that fits, else mid-word."""
    pieces = []
    while utf16_len(line) > limit:
        end = _fitting(line, limit)
        space = max(line.rfind(" ", 0, end + 1), line.rfind("\t", 0, end + 1))
        if space > 0:
            pieces.append(line[:space])
            line = line[space + 1 :]
        else:
            pieces.append(line[:end])
            line = line[end:]
    return pieces + [line]


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Messages of at most `limit` UTF-16 units, split between lines; a single line longer than
    that is cut at a space. Whitespace-only pieces are dropped (Telegram refuses them)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        length = utf16_len(line)
        if length > limit:
            *full, line = _cut_line(line, limit)
            chunks += ["\n".join(current), *full]
            current, size, length = [], 0, utf16_len(line)
        if current and size + 1 + length > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
        size += length + (1 if current else 0)
        current.append(line)
    chunks.append("\n".join(current))
    return [chunk for chunk in chunks if chunk.strip()]


def clip(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units, with an ellipsis when cut."""
    if utf16_len(text) <= limit:
        return text
    return text[: _fitting(text, limit - 1)] + "…"


# --- what goes out ----------------------------------------------------------------------------


def attachment_method(chat: int, attachment: Attachment) -> TelegramMethod[Any]:
    """Pictures as photos (shown inline), anything else (the .ics calendar) as a document."""
    upload = BufferedInputFile(attachment.data, filename=attachment.filename)
    caption = clip(attachment.caption, CAPTION_LIMIT) or None
    if attachment.content_type.startswith("image/"):
        return SendPhoto(chat_id=chat, photo=upload, caption=caption)
    return SendDocument(chat_id=chat, document=upload, caption=caption)


def send_methods(chat: int, outbound: Outbound) -> list[TelegramMethod[Any]]:
    """The calls that show one Outbound: its text (split if long, the keyboard under the last
    part), then its attachments."""
    parts = split_text(outbound.text)
    markup = keyboard(outbound)
    if markup is not None and not parts:
        parts = ["…"]  # a keyboard needs a message to hang from
    methods: list[TelegramMethod[Any]] = [SendMessage(chat_id=chat, text=part) for part in parts]
    if markup is not None:
        methods[-1] = SendMessage(chat_id=chat, text=parts[-1], reply_markup=markup)
    return methods + [attachment_method(chat, attachment) for attachment in outbound.attachments]


def bot_commands(t: Text, commands: Sequence[tuple[str, str]]) -> list[BotCommand]:
    """The command menu in one language (descriptions are msgids)."""
    return [
        BotCommand(command=name, description=clip(t(summary), 256)) for name, summary in commands
    ]


# --- after a press ----------------------------------------------------------------------------


class Press(Enum):
    ACCEPTED = "accepted"  # the choice was taken: show it on the question
    STALE = "stale"  # the engine refused it as out of date: just drop the old buttons
    UNKNOWN = "unknown"  # no prompt followed (an error, or the data was erased): leave it


def judge_press(prompt: int | None, replies: Sequence[Outbound]) -> Press:
    """Whether the engine took a press, read from its reply: prompts are numbered one by one,
    so a taken press on prompt P is followed by prompt P+1, while a stale one is answered by
    re-asking the current prompt under another number."""
    following = next((reply.prompt for reply in replies if reply.prompt is not None), None)
    if prompt is None or following is None:
        return Press.UNKNOWN
    return Press.ACCEPTED if following == prompt + 1 else Press.STALE


def chosen_label(query: CallbackQuery) -> str | None:
    """The label of the button pressed, read from the keyboard of the message it was on."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return None
    for row in message.reply_markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None


def answered_text(question: str, label: str) -> str:
    """The question as it reads once answered: the chosen label under it, no buttons."""
    mark = f"\n\n✅ {clip(label, 256)}"
    return clip(question, TEXT_LIMIT - utf16_len(mark)) + mark


def press_edit(query: CallbackQuery, press: Press) -> TelegramMethod[Any] | None:
    """How the pressed question message changes: shows the choice and loses its keyboard when
    the choice was taken; only loses its keyboard when it was stale."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None or press is Press.UNKNOWN:
        return None  # an inaccessible (old) message, or nothing to take away
    label = chosen_label(query)
    if press is Press.ACCEPTED and label is not None and message.text is not None:
        return EditMessageText(
            chat_id=message.chat.id,
            message_id=message.message_id,
            text=answered_text(message.text, label),
        )
    return EditMessageReplyMarkup(chat_id=message.chat.id, message_id=message.message_id)
