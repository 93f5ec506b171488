"""Telegram (aiogram 3): long polling, or a webhook at /telegram when TELEGRAM_WEBHOOK_URL is
set."""

from __future__ import annotations

import re

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError, validate_token

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.telegram.api import LeanSession
from kvisa.bot.channels.telegram.channel import TelegramChannel
from kvisa.bot.errors import ConfigError

__all__ = ["TelegramChannel", "from_settings"]

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token


def from_settings(services: Services) -> TelegramChannel | None:
    """The channel when TELEGRAM_BOT_TOKEN is set, else None."""
    settings = services.settings
    token = settings.telegram_token
    if not token:
        return None
    try:
        validate_token(token)
    except TokenValidationError:
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN", "must look like 123456789:AAE... (from @BotFather)"
        ) from None
    if not settings.telegram_api_base.startswith(("http://", "https://")):
        raise ConfigError(
            "TELEGRAM_API_BASE", f"must be an http(s) URL, got {settings.telegram_api_base!r}"
        )
    url, secret = settings.telegram_webhook_url, settings.telegram_webhook_secret
    if url:
        if not url.startswith(("https://", "http://")):
            raise ConfigError("TELEGRAM_WEBHOOK_URL", f"must be an https URL, got {url!r}")
        if not secret:
            raise ConfigError("TELEGRAM_WEBHOOK_SECRET", "required with TELEGRAM_WEBHOOK_URL")
        if not _SECRET.fullmatch(secret):
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET", "1-256 characters: letters, digits, _ and -"
            )
    session = LeanSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return TelegramChannel(
        services, Bot(token, session=session), webhook_url=url, webhook_secret=secret
    )
