"""What an applicant types reaches the engine's matching, replies and storage without control
characters or terminal escapes; /start greets once."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.engine.choice import clean, cleaned
from kvisa.bot.messages import Inbound
from kvisa.identity import UserKey
from tests.support import NOON_SHANGHAI, Chat

RED = "\x1b[31m"
RESET = "\x1b[0m"
UNSAFE = {chr(c) for c in (*range(0x00, 0x0A), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def safe(text: str) -> bool:
    """No control character but the newline, no bidi override, no lone surrogate."""
    return not any(ch in UNSAFE or ch in BIDI or "\ud800" <= ch <= "\udfff" for ch in text)


def test_clean_removes_escape_sequences_whole() -> None:
    assert clean(f"{RED}Germany{RESET}") == "Germany"
    assert clean("x\x1b]0;owned\x07y") == "xy"  # a terminal title (OSC) with its text
    assert clean("\x9b2Jz") == "z"  # the 8-bit CSI: clear screen
    assert clean("a\tb\r\nc\rd\x00") == "a b\nc\nd"
    assert clean("ok\u202eevil") == "okevil"
    assert clean("lone \ud83d") == "lone \ufffd"


@given(st.text())
def test_clean_leaves_nothing_unsafe_and_is_idempotent(text: str) -> None:
    once = clean(text)
    assert safe(once)
    assert clean(once) == once


@given(st.text().filter(safe))
def test_clean_keeps_ordinary_text_as_it_is(text: str) -> None:
    assert clean(text) == text


def test_an_escaped_command_is_read_as_the_command() -> None:
    inbound = Inbound.from_text(UserKey("console", "x"), f"{RED}/help{RESET}", NOON_SHANGHAI)
    assert inbound.command is None  # the channel saw text
    assert cleaned(inbound).command == "help"


async def test_escapes_are_neither_echoed_nor_stored(chat: Chat) -> None:
    await chat.send(f"/{RED}bogus\x07")
    assert "\x1b" not in chat.text and "\x07" not in chat.text
    assert "/bogus" in chat.text
    await chat.send("/start")
    await chat.choose("agree")
    await chat.send(f"{RED}doctorate{RESET}")  # matched as the option once cleaned
    state = await chat.state()
    assert state and state["answers"] == {"degree": "doctorate"}
    assert safe(json.dumps(state, ensure_ascii=False))


async def test_start_after_the_greeting_asks_for_consent_without_greeting_again(
    chat: Chat,
) -> None:
    first = await chat.send("/start")
    assert len(first) == 2  # the greeting, then the consent question
    again = await chat.send("/start")
    assert [o.text for o in again] == [first[1].text]
    assert again[0].options == first[1].options
    assert (await chat.awaiting()) == {"kind": "consent"}
    await chat.choose("agree")  # the question asked again is the one answered
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}


async def test_start_with_a_park_link_after_the_greeting_keeps_the_park(chat: Chat) -> None:
    await chat.send("/start")
    await chat.send("/start lingang")
    await chat.choose("agree")
    state = await chat.state()
    assert state and state["answers"] == {"park": "lingang"}
