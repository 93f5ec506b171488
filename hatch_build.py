"""Compile the gettext catalogs (locales/*/LC_MESSAGES/*.po) into .mo files at build time.

A wheel gets them under kvisa/_data/locales; an editable install gets them next to the .po
files, where kvisa.bot.paths looks in a source checkout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def compile_catalogs(src: Path, dest: Path) -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(src.glob("*/LC_MESSAGES/*.po")):
        locale = po_path.parent.parent.name
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        mo_path = dest / po_path.relative_to(src).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as fh:
            write_mo(fh, catalog)
        written.append(mo_path)
    return written


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        src = Path(self.root) / "locales"
        if self.target_name != "wheel":
            return
        if version == "editable":
            compile_catalogs(src, src)
            return
        out = Path(tempfile.mkdtemp(prefix="kvisa-locales-"))
        compile_catalogs(src, out)
        build_data["force_include"][str(out)] = "kvisa/_data/locales"
