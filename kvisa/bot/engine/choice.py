"""Reading a typed reply: made safe to match, echo and store (`clean`), then read as one of
the options offered, by its number, id or label."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Protocol, TypeVar

from kvisa.bot.i18n import Text
from kvisa.bot.messages import Inbound, UiOption
from kvisa.bot.policy.answers import normalize

MAX_MESSAGE = 1000  # longer messages are refused before any parsing

# Anything clean() changes: C0 and C1 controls but the newline, DEL, the bidirectional
# embeddings, overrides and isolates (they reorder what is shown around them), lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Terminal escape sequences, removed whole so that no `[31m` is left behind: CSI (ESC [ or
# 0x9B, parameters, intermediates, a final byte); OSC, DCS, SOS, PM and APC strings up to
# their terminator (BEL or ST) or the end of the text; any other ESC sequence.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_SPACES = str.maketrans({"\t": " ", "\x0b": " ", "\x0c": " "})


def clean(text: str) -> str:
    """`text` without control characters and terminal escape sequences: what an applicant
    types is matched, echoed and stored only in this form. Line breaks stay (as `\\n`: a
    multi-line text such as a broadcast keeps its lines), tabs and form feeds become spaces,
    a lone surrogate (not UTF-8, cannot be stored) becomes U+FFFD."""
    if _UNSAFE.search(text) is None:
        return text  # nearly every message
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_SPACES)
    text = _ESCAPES.sub("", text)
    return _UNSAFE.sub(lambda m: "\ufffd" if m.group() >= "\ud800" else "", text)


def cleaned(inbound: Inbound) -> Inbound:
    """`inbound` with every text the applicant chose cleaned; a text that becomes a command
    once cleaned (`\\x1b[0m/start`) is read as that command."""
    if inbound.text is not None:
        text = clean(inbound.text)
        if text == inbound.text:
            return inbound
        return Inbound.from_text(inbound.user, text, inbound.at, inbound.lang_hint)
    command = inbound.command and clean(inbound.command)
    args, option = clean(inbound.args), inbound.option and clean(inbound.option)
    if (command, args, option) == (inbound.command, inbound.args, inbound.option):
        return inbound
    return replace(inbound, command=command, args=args, option=option)


def readable(text: str) -> bool:
    """True when the text has at least one letter or digit (not only emoji or punctuation)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def unreadable(t: Text, text: str) -> str | None:
    """Why a typed message cannot be read as any answer (empty, too long, only symbols)."""
    if not text.strip():
        return t("I received an empty message. Please type your answer, or choose an option.")
    if len(text) > MAX_MESSAGE:
        return t(
            "That message is too long for me ({length} characters). Please answer in a few words.",
            length=len(text),
        )
    if not readable(text):
        return t(
            "I could not read that (emoji or symbols only). Please answer in words or numbers."
        )
    return None


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


OptionT = TypeVar("OptionT", bound=_Identified)


def match_option(
    text: str, options: Iterable[OptionT], labels: Mapping[str, Iterable[str]]
) -> OptionT | None:
    """The option meant by a number (1-based), an option id, or a label in any language."""
    wanted = normalize(text)
    options = tuple(options)
    if wanted.isdigit():
        index = int(wanted)
        return options[index - 1] if 1 <= index <= len(options) else None
    for option in options:
        names = {normalize(option.id), *(normalize(label) for label in labels.get(option.id, ()))}
        if wanted in names:
            return option
    return None


def labels_by_id(option_lists: Iterable[Iterable[UiOption]]) -> dict[str, list[str]]:
    """Every label an option has (in each language offered), without the checkbox marks."""
    labels: dict[str, list[str]] = {}
    for options in option_lists:
        for option in options:
            labels.setdefault(option.id, []).append(option.label.lstrip("☐☑ "))
    return labels
