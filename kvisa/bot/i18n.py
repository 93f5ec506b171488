"""Languages: gettext catalogs (domain `kvisa`), Babel formatting, and the language choice.

Two languages: "en" and "zh" (Simplified Chinese, catalog zh_Hans). Message ids are the
English texts, so the English catalog may leave them untranslated.
"""

from __future__ import annotations

import datetime as dt
import gettext
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import read_mo

from kvisa.bot.paths import locales_dir
from kvisa.errors import ConfigError

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
DOMAIN = "kvisa"
_CATALOG_LOCALE: dict[Lang, str] = {"en": "en", "zh": "zh_Hans"}
_BABEL_LOCALE: dict[Lang, str] = {"en": "en", "zh": "zh_Hans_CN"}


def N_(message: str) -> str:
    """Mark a message for extraction where it is translated later (module-level constants)."""
    return message


def lang_from_hint(hint: str | None) -> Lang:
    """`zh`, `zh-hans`, `zh_CN`, `zh-TW`... mean Chinese; anything else English."""
    return "zh" if hint and hint.strip().lower().startswith("zh") else "en"


def other(lang: Lang) -> Lang:
    return "en" if lang == "zh" else "zh"


@dataclass(frozen=True)
class Text:
    """Everything a renderer needs to speak one language."""

    lang: Lang
    translations: gettext.NullTranslations
    locale: Locale

    def __call__(self, message: str, **params: object) -> str:
        translated = self.translations.gettext(message)
        return translated.format(**params) if params else translated

    def plural(self, singular: str, plural: str, n: int, **params: object) -> str:
        return self.translations.ngettext(singular, plural, n).format(n=n, **params)

    def date(self, day: dt.date, fmt: str = "long") -> str:
        return format_date(day, fmt, locale=self.locale)

    def country(self, code: str) -> str:
        return str(self.locale.territories.get(code, code))


class Catalogs:
    """The compiled catalogs of both languages, loaded once."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or locales_dir()
        self._texts: dict[Lang, Text] = {}
        for lang in LANGS:
            try:
                translations = gettext.translation(DOMAIN, directory, [_CATALOG_LOCALE[lang]])
            except FileNotFoundError as exc:
                raise ConfigError(
                    "locales",
                    f"no compiled catalog for {_CATALOG_LOCALE[lang]} in {directory} "
                    "(run `make catalogs`, or reinstall the package)",
                ) from exc
            self._texts[lang] = Text(lang, translations, Locale.parse(_BABEL_LOCALE[lang]))
        self._chinese = _translated(directory, _CATALOG_LOCALE["zh"])

    def __getitem__(self, lang: Lang) -> Text:
        return self._texts[lang]

    def has_chinese(self, message: str) -> bool:
        return message in self._chinese


def _translated(directory: Path, locale: str) -> frozenset[str]:
    """The message ids a compiled catalog translates (read with Babel: gettext keeps its table
    private)."""
    path = gettext.find(DOMAIN, str(directory), [locale])
    if path is None:
        return frozenset()
    with open(path, "rb") as fh:
        catalog = read_mo(fh)
    return frozenset(m.id for m in catalog if isinstance(m.id, str) and m.id and m.string)


# Between the two languages of a message pushed to a user (reminders, broadcasts).
SEPARATOR = "\n\n— — —\n\n"


def bilingual(catalogs: Catalogs, lang: Lang, render: Callable[[Text], str]) -> str:
    """One message in both languages: the user's first, the other below."""
    return render(catalogs[lang]) + SEPARATOR + render(catalogs[other(lang)])
