"""`kvisa wechat menu`: the account's custom menu, each button named in Chinese and English."""

from __future__ import annotations

from typing import Any

from kvisa.bot.channels.wechat import check_settings
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.channels.wechat.convert import utf8_len
from kvisa.bot.i18n import N_, Catalogs
from kvisa.bot.settings import Settings
from kvisa.errors import ConfigError
from kvisa.storage import open_storage

# Each button's key is the command it sends (see convert.event_of: CLICK -> /key).
BUTTONS = (("checklist", N_("Checklist")), ("timeline", N_("Timeline")))
# The third (and last) top-level button opens a list: help, a person at the agency (/human),
# and linking the applicant's Telegram.
MORE = N_("More")
UNDER_MORE = (
    ("help", N_("Help")),
    ("human", N_("Talk to a person")),
    ("link", N_("Link Telegram")),
)
NAME_LIMIT = 16  # bytes: WeChat's limit for a top-level button name
SUB_NAME_LIMIT = 60  # bytes: for a button in a list


def button_name(catalogs: Catalogs, label: str, limit: int = NAME_LIMIT) -> str:
    """`清单 Checklist` when it fits, else the Chinese alone, else the English alone."""
    zh, en = catalogs["zh"](label), catalogs["en"](label)
    for name in [f"{zh} {en}", zh, en] if zh != en else [en]:
        if utf8_len(name) <= limit:
            return name
    return en.encode()[:limit].decode(errors="ignore")


def menu(catalogs: Catalogs) -> dict[str, Any]:
    def click(command: str, label: str, limit: int = NAME_LIMIT) -> dict[str, str]:
        return {"type": "click", "name": button_name(catalogs, label, limit), "key": command}

    more = [click(command, label, SUB_NAME_LIMIT) for command, label in UNDER_MORE]
    return {
        "button": [click(command, label) for command, label in BUTTONS]
        + [{"name": button_name(catalogs, MORE), "sub_button": more}]
    }


async def install_menu(settings: Settings, catalogs: Catalogs) -> dict[str, Any]:
    """Create the menu through WeChat's API (with the token shared by the running bot)."""
    if not check_settings(settings):
        raise ConfigError(
            "WECHAT_APP_ID",
            "WeChat is not configured (WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_APP_SECRET)",
        )
    assert settings.wechat_app_id and settings.wechat_app_secret
    definition = menu(catalogs)
    async with open_storage(settings.storage_url) as storage:
        api = WeChatApi(
            storage,
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            settings.wechat_api_base,
        )
        try:
            await api.create_menu(definition)
        finally:
            api.close()
    return definition
