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
    method_map = [
        ("kvisa/**.py", "python"),
        ("flows/**.yaml", "kvisa_flows"),
        ("kvisa/bot/workspace/templates/**.html", "jinja2"),
    ]
    found = extract_from_dir(
        str(ROOT), method_map, keywords={"t": None, "N_": None, "plural": (1, 2)}
    )
    return {msg[2] if isinstance(msg[2], str) else msg[2][0] for msg in found}


def test_every_message_in_code_and_flows_has_a_chinese_translation() -> None:
    zh = catalog("zh_Hans")
    missing = sorted(
        m for m in extracted() if not (zh.get(m) and zh.get(m).string and not zh.get(m).fuzzy)
    )
    assert missing == [], f"untranslated (run `make messages` and translate): {missing[:10]}"


def forms(message) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(source, translation) pairs; a plural message's every form is checked against its plural."""
    if isinstance(message.id, tuple):
        return [(message.id[1], form) for form in message.string]
    return [(message.id, message.string)]


def test_translations_keep_their_placeholders() -> None:
    for message in catalog("zh_Hans"):
        for source, translation in forms(message) if message.id else []:
            assert set(PLACEHOLDER.findall(source)) == set(PLACEHOLDER.findall(translation)), source


def test_chinese_translations_are_chinese() -> None:
    for message in catalog("zh_Hans"):
        for source, translation in forms(message) if message.id else []:
            words = PLACEHOLDER.sub("", source)
            if words != "English / 中文" and re.search("[A-Za-z]{4}", words):
                assert re.search("[\u4e00-\u9fff]", translation), source
