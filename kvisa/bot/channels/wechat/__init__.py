"""WeChat Official Account: on when WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET are set."""

from __future__ import annotations

import base64
import binascii

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.channels.wechat.channel import WeChatChannel
from kvisa.bot.config import Settings
from kvisa.errors import ConfigError

__all__ = ["WeChatChannel", "check_settings", "from_settings"]

REQUIRED = (
    ("WECHAT_TOKEN", "wechat_token"),
    ("WECHAT_APP_ID", "wechat_app_id"),
    ("WECHAT_APP_SECRET", "wechat_app_secret"),
)


def check_settings(settings: Settings) -> bool:
    """True when WeChat is configured, False when it is not at all; ConfigError when half."""
    missing = [variable for variable, attribute in REQUIRED if not getattr(settings, attribute)]
    if len(missing) == len(REQUIRED):
        return False
    if missing:
        raise ConfigError(
            missing[0], "WeChat needs WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET together"
        )
    key = settings.wechat_encoding_aes_key
    if key is not None and not valid_aes_key(key):
        raise ConfigError(
            "WECHAT_ENCODING_AES_KEY",
            "must be the 43-character EncodingAESKey from the account's console",
        )
    return True


def valid_aes_key(key: str) -> bool:
    try:
        return len(key) == 43 and len(base64.b64decode(key + "=", validate=True)) == 32
    except binascii.Error:
        return False


def from_settings(services: Services) -> WeChatChannel | None:
    settings = services.settings
    if not check_settings(settings):
        return None
    if not settings.public_base_url:
        raise ConfigError(
            "KVISA_PUBLIC_URL",
            "WeChat sends calendar files as links to this server: "
            "set the https URL where users reach it",
        )
    assert settings.wechat_app_id and settings.wechat_app_secret
    api = WeChatApi(
        services.engine.storage,
        settings.wechat_app_id,
        settings.wechat_app_secret,
        settings.wechat_api_base,
    )
    return WeChatChannel(services, api)
