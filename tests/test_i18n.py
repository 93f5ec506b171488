"""Catalogs: every message extracted from the code and flows has a real Chinese translation."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(locale: str):  # type: ignore[no-untyped-def]
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "kvisa.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def extracted() -> set[str]:
    method_map = [("bot/**.py", "python"), ("storage/**.py", "python"), ("flows/**.yaml", "kvisa_flows")]
    return {msg[2] for msg in extract_from_dir(str(ROOT), method_map, keywords={"t": None, "N_": None})
            if isinstance(msg[2], str)}


def test_every_message_in_code_and_flows_has_a_chinese_translation() -> None:
    zh = catalog("zh_Hans")
    missing = sorted(m for m in extracted() if not (zh.get(m) and zh.get(m).string and not zh.get(m).fuzzy))
    assert missing == [], f"untranslated (run `make messages` and translate): {missing[:10]}"


def test_translations_keep_their_placeholders() -> None:
    for message in catalog("zh_Hans"):
        if message.id and message.string:
            assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), message.id


def test_chinese_translations_are_chinese() -> None:
    for message in catalog("zh_Hans"):
        words = PLACEHOLDER.sub("", message.id) if message.id else ""
        if words != "English / 中文" and re.search("[A-Za-z]{4}", words):
            assert re.search("[\u4e00-\u9fff]", message.string), message.id
