"""Reading a typed reply as one of the options offered: by its number, id or label."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from kvisa.bot.i18n import Text
from kvisa.bot.messages import UiOption
from kvisa.bot.policy.answers import normalize

MAX_MESSAGE = 1000  # longer messages are refused before any parsing


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
