"""Settings from environment variables (a .env file is read first if present)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.content.loader import load_flows
from kvisa.bot.content.model import Flows
from kvisa.bot.i18n import Catalogs
from kvisa.bot.pacing import DEFAULT_RATES, rates_from_env
from kvisa.bot.paths import flows_dir
from kvisa.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    redis_url: str | None
    flows_dir: Path
    log_level: str
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Telegram: on when the token is set; webhook mode when the URL is set, else long polling.
    telegram_token: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    # WeChat Official Account: on when token, app id and secret are set; safe mode with the AES key.
    wechat_token: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_encoding_aes_key: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_template_reminder: str | None = None
    public_base_url: str | None = None  # where users reach our HTTP server (signed file links)
    # Agency broadcasts: who may send them, the HTTP admin API's token, the agency's name.
    broadcasts: BroadcastSettings = field(default_factory=BroadcastSettings)
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            data_dir=Path(env.get("KVISA_DATA_DIR") or "./var"),
            redis_url=env.get("REDIS_URL") or None,
            flows_dir=Path(env["KVISA_FLOWS_DIR"]) if env.get("KVISA_FLOWS_DIR") else flows_dir(),
            log_level=(env.get("KVISA_LOG_LEVEL") or "WARNING").upper(),
            http_host=env.get("KVISA_HTTP_HOST") or "127.0.0.1",
            http_port=_port(env.get("KVISA_HTTP_PORT")),
            telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            telegram_api_base=(env.get("TELEGRAM_API_BASE") or "https://api.telegram.org").rstrip(
                "/"
            ),
            telegram_webhook_url=env.get("TELEGRAM_WEBHOOK_URL") or None,
            telegram_webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET") or None,
            wechat_token=env.get("WECHAT_TOKEN") or None,
            wechat_app_id=env.get("WECHAT_APP_ID") or None,
            wechat_app_secret=env.get("WECHAT_APP_SECRET") or None,
            wechat_encoding_aes_key=env.get("WECHAT_ENCODING_AES_KEY") or None,
            wechat_api_base=(env.get("WECHAT_API_BASE") or "https://api.weixin.qq.com").rstrip("/"),
            wechat_template_reminder=env.get("WECHAT_TEMPLATE_REMINDER") or None,
            public_base_url=(env.get("KVISA_PUBLIC_URL") or "").rstrip("/") or None,
            broadcasts=BroadcastSettings.from_env(env),
            rates=rates_from_env(env),
        )

    def __repr__(self) -> str:
        # Never print secrets (tokens, app secret, AES key) in logs or tracebacks.
        hidden = {
            "telegram_token",
            "telegram_webhook_secret",
            "wechat_token",
            "wechat_app_secret",
            "wechat_encoding_aes_key",
        }
        shown = ", ".join(
            f"{k}={'***' if k in hidden and v else v!r}" for k, v in vars(self).items()
        )
        return f"Settings({shown})"

    @property
    def storage_url(self) -> str:
        return self.redis_url or f"sqlite:///{self.data_dir / 'kvisa.db'}"


def _port(value: str | None) -> int:
    if not value:
        return 8080
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError("KVISA_HTTP_PORT", f"must be a port number, got {value!r}")
    return int(value)


def load_content(settings: Settings) -> tuple[Flows, Catalogs]:
    """The validated flows and the catalogs; every flows text must have its Chinese."""
    catalogs = Catalogs()
    return load_flows(settings.flows_dir, translated=catalogs.has_chinese), catalogs
