"""Settings from environment variables (a .env file is read first if present)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.content.loader import load_flows
from bot.content.model import Flows
from bot.i18n import Catalogs
from bot.paths import flows_dir


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    redis_url: str | None
    flows_dir: Path
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("KVISA_DATA_DIR") or "./var"),
            redis_url=env.get("REDIS_URL") or None,
            flows_dir=Path(env["KVISA_FLOWS_DIR"]) if env.get("KVISA_FLOWS_DIR") else flows_dir(),
            log_level=(env.get("KVISA_LOG_LEVEL") or "WARNING").upper(),
        )

    @property
    def storage_url(self) -> str:
        return self.redis_url or f"sqlite:///{self.data_dir / 'kvisa.db'}"


def load_content(settings: Settings) -> tuple[Flows, Catalogs]:
    """The validated flows and the catalogs; every flows text must have its Chinese."""
    catalogs = Catalogs()
    return load_flows(settings.flows_dir, translated=catalogs.has_chinese), catalogs
