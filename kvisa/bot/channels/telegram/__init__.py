"""Telegram (aiogram 3): long polling, or a webhook at /telegram with TELEGRAM_WEBHOOK_URL."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.telegram.api import LeanSession
from kvisa.bot.channels.telegram.channel import TelegramChannel

__all__ = ["TelegramChannel", "from_settings"]


def from_settings(services: Services) -> TelegramChannel | None:
    """The channel when TELEGRAM_BOT_TOKEN is set, else None (bot/settings.py checked the rest)."""
    settings = services.settings
    if settings.telegram_token is None:
        return None
    secret = settings.telegram_webhook_secret
    session = LeanSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return TelegramChannel(
        services,
        Bot(settings.telegram_token.get_secret_value(), session=session),
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret else None,
    )
