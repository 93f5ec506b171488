"""Loading and validating the YAML content in flows/."""

from __future__ import annotations

from pathlib import Path

from kvisa.bot.content.loader import load_flows
from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Catalogs
from kvisa.bot.paths import flows_dir
from kvisa.bot.settings import Settings


def content_dir(settings: Settings) -> Path:
    """KVISA_FLOWS_DIR when set (the agency's edited copy), else the shipped flows/."""
    return settings.flows_dir or flows_dir()


def load_content(settings: Settings) -> tuple[Flows, Catalogs]:
    """The validated flows and the catalogs; every flows text must have its Chinese."""
    catalogs = Catalogs()
    return load_flows(content_dir(settings), translated=catalogs.has_chinese), catalogs
