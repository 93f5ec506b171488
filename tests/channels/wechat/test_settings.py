"""When the WeChat channel is on, and how a half-done configuration is reported (as the settings
are read: see bot/settings.py)."""

from __future__ import annotations

import pytest

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat import check_settings, from_settings
from kvisa.bot.clock import SystemClock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.settings import Settings
from kvisa.errors import ConfigError
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.callbacks import AES_KEY
from tests.support import content

FULL = {
    "WECHAT_TOKEN": "token",
    "WECHAT_APP_ID": "wx1",
    "WECHAT_APP_SECRET": "secret",
    "KVISA_PUBLIC_URL": "https://bot.example.org",
}


def test_wechat_is_off_without_its_settings() -> None:
    assert check_settings(Settings.from_env({})) is False


def test_wechat_is_on_with_token_app_id_and_secret() -> None:
    assert check_settings(Settings.from_env(FULL)) is True
    assert check_settings(Settings.from_env(FULL | {"WECHAT_ENCODING_AES_KEY": AES_KEY})) is True


def test_a_missing_secret_is_named() -> None:
    with pytest.raises(ConfigError) as error:
        check_settings(
            Settings.from_env({k: v for k, v in FULL.items() if k != "WECHAT_APP_SECRET"})
        )

    assert error.value.variable == "WECHAT_APP_SECRET"


@pytest.mark.parametrize("key", ["too-short", AES_KEY + "A", "!" * 43])
def test_a_malformed_aes_key_is_named(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_settings(Settings.from_env(FULL | {"WECHAT_ENCODING_AES_KEY": key}))

    assert error.value.variable == "WECHAT_ENCODING_AES_KEY"


def test_wechat_without_a_public_url_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({k: v for k, v in FULL.items() if k != "KVISA_PUBLIC_URL"})

    assert error.value.variable == "KVISA_PUBLIC_URL"


def test_a_configured_wechat_gives_a_channel() -> None:
    flows, catalogs = content()
    engine = Engine(flows, catalogs, SqliteStorage(":memory:"))  # never opened

    channel = from_settings(Services(Settings.from_env(FULL), engine, catalogs, SystemClock()))

    assert channel is not None and channel.name == "wechat"
