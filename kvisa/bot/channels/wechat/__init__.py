"""WeChat Official Account: on when WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET are set."""

from __future__ import annotations

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.channels.wechat.channel import WeChatChannel
from kvisa.bot.settings import Settings

__all__ = ["WeChatChannel", "check_settings", "from_settings"]


def check_settings(settings: Settings) -> bool:
    """True when WeChat is configured. bot/settings.py refuses half a configuration, a
    malformed EncodingAESKey and WeChat without KVISA_PUBLIC_URL, naming the variable."""
    return settings.wechat_app_id is not None


def from_settings(services: Services) -> WeChatChannel | None:
    settings = services.settings
    if not check_settings(settings):
        return None
    assert settings.wechat_app_id and settings.wechat_app_secret
    api = WeChatApi(
        services.engine.storage,
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_api_base,
    )
    return WeChatChannel(services, api)
