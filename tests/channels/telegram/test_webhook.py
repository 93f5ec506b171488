"""Webhook mode: Telegram POSTs updates to /telegram on the shared server, with the secret."""

from __future__ import annotations

import pytest

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.telegram import from_settings
from kvisa.bot.clock import FixedClock
from kvisa.bot.settings import Settings
from kvisa.errors import ConfigError
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.telegram.conftest import WEBHOOK_SECRET, Serve
from tests.channels.telegram.fake_api import TOKEN
from tests.support import NOON_SHANGHAI, content, engine_on


async def test_webhook_mode_registers_the_url_and_secret_and_never_polls(serve: Serve) -> None:
    tg = await serve(webhook=True)
    assert tg.fake.webhook is not None
    assert (
        tg.fake.webhook["url"].endswith("/telegram")
        and tg.fake.webhook["secret_token"] == WEBHOOK_SECRET
    )
    assert tg.fake.webhook["allowed_updates"] == ["message", "callback_query"]
    assert not tg.fake.calls_to("getUpdates")


@pytest.mark.parametrize("secret", ["", "wrong-secret", WEBHOOK_SECRET + "x"])
async def test_webhook_without_the_secret_gets_401_and_nothing_is_processed(
    serve: Serve, secret: str
) -> None:
    tg = await serve(webhook=True)
    status = await tg.fake.deliver(tg.fake.message_update(2001, "/start"), secret=secret)
    await tg.channel.idle()
    assert status == 401
    assert not tg.fake.calls_to("sendMessage") and await tg.state(2001) is None


async def test_webhook_with_the_right_secret_runs_the_conversation(serve: Serve) -> None:
    tg = await serve(webhook=True)
    user = tg.user(2002)
    await user.send("/start")
    await user.press("agree")
    state = await user.state()
    assert state and state["awaiting"] == {"kind": "question", "id": "degree"}


async def test_webhook_retry_of_an_update_is_handled_once(serve: Serve) -> None:
    tg = await serve(webhook=True)
    update = tg.fake.message_update(2003, "/start")
    await tg.submit(update)
    sent = len(tg.fake.calls_to("sendMessage"))
    await tg.submit(update)  # Telegram sends it again (it thought we did not answer in time)
    assert sent > 0 and len(tg.fake.calls_to("sendMessage")) == sent


async def test_webhook_update_that_is_not_an_update_is_dropped_and_the_next_one_handled(
    serve: Serve,
) -> None:
    tg = await serve(webhook=True)
    assert (
        await tg.fake.deliver({"update_id": 77, "message": {"text": 5}}) == 200
    )  # no retries of junk
    await tg.user(2004).send("/start")
    assert tg.fake.calls_to("sendMessage", 2004)


def services(settings: Settings, storage: SqliteStorage) -> Services:
    _, catalogs = content()
    return Services(settings, engine_on(storage), catalogs, FixedClock(NOON_SHANGHAI))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram"}, "TELEGRAM_WEBHOOK_SECRET"),
        (
            {
                "TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram",
                "TELEGRAM_WEBHOOK_SECRET": "has spaces",
            },
            "TELEGRAM_WEBHOOK_SECRET",
        ),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_API_BASE": "api.telegram.org"}, "TELEGRAM_API_BASE"),
    ],
)
async def test_bad_telegram_settings_name_the_variable(
    env: dict[str, str], variable: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as error:  # the settings are checked as they are read
        Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "KVISA_DATA_DIR": str(tmp_path)} | env)
    assert error.value.variable == variable


async def test_no_token_means_no_telegram_channel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        assert (
            from_settings(services(Settings.from_env({"KVISA_DATA_DIR": str(tmp_path)}), storage))
            is None
        )


async def test_a_channel_that_fails_to_start_leaves_no_server_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    from aiohttp import web

    from kvisa.bot.server import Server
    from kvisa.bot.settings import Settings

    async def unauthorized(request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
        )

    api = web.Application()
    api.router.add_route("*", "/{tail:.*}", unauthorized)
    runner = web.AppRunner(api)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.from_env(
        {
            "KVISA_DATA_DIR": str(tmp_path),
            "KVISA_HTTP_PORT": str(port),
            "TELEGRAM_BOT_TOKEN": "123456:ABCdefGhIJKlmNoPQRsTUVwxyZ-123456789",
            "TELEGRAM_API_BASE": f"http://127.0.0.1:{api_port}",
        }
    )
    server = Server(settings)
    try:
        try:
            await server.start()  # a revoked token: the Bot API answers 401
        except Exception:
            pass
        else:  # pragma: no cover - the start above must fail
            await server.stop()
            raise AssertionError("the server started with a token the Bot API refused")
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))  # the port is free again: nothing was left listening
        await server.stop()  # and stopping twice is harmless
    finally:
        await runner.cleanup()
