"""Pushes go once per applicant: on the channel its order puts first, moved to the other one
when that refuses, and recorded on the one it went out on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kvisa.bot.applicants import route
from kvisa.bot.clock import FixedClock
from kvisa.bot.messages import Outbound
from kvisa.bot.reminders.delivery import Deliverer
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.retention.rules import Due, Rules, due
from kvisa.errors import Blocked, ChannelError, Undeliverable
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import session
from tests.support import content

TG, WX = UserKey("telegram", "1001"), UserKey("wechat", "oAlice")
# 09:00:30 in Shanghai on November 25: the 7-day reminder of an entry on November 17 is due.
NOW = dt.datetime(2026, 11, 25, 1, 0, 30, tzinfo=dt.UTC)


def linked(**extra: Any) -> dict[str, Any]:
    state = session(events={"entered": dt.date(2026, 11, 17)}, **extra)
    seen = {str(TG): "2026-11-24T00:00:00+00:00", str(WX): "2026-11-23T00:00:00+00:00"}
    return state | {"identities": [str(TG), str(WX)], "seen": seen}


class Platform:
    """One channel's sends, refusing with `refusal` when given."""

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal
        self.sent: list[UserKey] = []

    async def __call__(self, user: UserKey, messages: Sequence[Outbound]) -> None:
        if self.refusal is not None:
            raise self.refusal
        self.sent.append(user)


async def deliver(tmp_path: Path, data: dict[str, Any], tg: Platform, wx: Platform) -> str:
    flows, catalogs = content()
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        await storage.put(TG, data, expected_version=0)
        deliverer = Deliverer(
            flows,
            catalogs,
            storage,
            FixedClock(NOW),
            {"telegram": tg, "wechat": wx},
            ReminderSettings(),
        )
        await deliverer.deliver(TG)
        record = await storage.get(TG)
    assert record is not None
    (entry,) = record.data["reminders_sent"].values()
    return str(entry)


def test_the_order_is_the_choice_else_wechat_after_entry_else_the_last_used() -> None:
    state = linked()
    assert route(TG, state, NOW) == [WX, TG]  # entered China: WeChat first
    state["events"] = {}
    assert route(TG, state, NOW) == [TG, WX]  # last written from
    state["channel_choice"] = "wechat"
    assert route(TG, state, NOW) == [WX, TG]
    state["blocked"] = [str(WX)]
    assert route(TG, state, NOW) == [TG]


async def test_a_reminder_goes_on_wechat_once_after_entry(tmp_path: Path) -> None:
    tg, wx = Platform(), Platform()
    entry = await deliver(tmp_path, linked(), tg, wx)
    assert (tg.sent, wx.sent) == ([], [WX])
    assert entry.endswith(" wechat")


async def test_telegram_blocked_moves_the_reminder_to_wechat(tmp_path: Path) -> None:
    tg, wx = Platform(Blocked("403")), Platform()
    entry = await deliver(tmp_path, linked(channel_choice="telegram"), tg, wx)
    assert wx.sent == [WX] and entry.endswith(" wechat")


async def test_wechat_outside_its_window_without_a_template_moves_it_to_telegram(
    tmp_path: Path,
) -> None:
    tg, wx = Platform(), Platform(Undeliverable("outside the 48-hour window"))
    entry = await deliver(tmp_path, linked(), tg, wx)
    assert tg.sent == [TG] and entry.endswith(" telegram")


async def test_a_failing_channel_hands_over_and_nothing_goes_twice(tmp_path: Path) -> None:
    tg, wx = Platform(), Platform(ChannelError("502 after retries"))
    entry = await deliver(tmp_path, linked(), tg, wx)
    assert (tg.sent, wx.sent) == ([TG], [])
    assert entry.endswith(" telegram")


def test_the_retention_pass_leaves_forwards_to_their_applicant() -> None:
    rules = Rules()
    forward = {"linked_to": str(TG), "keep": "theirs", "link_id": "x", "kept": None}
    assert due(forward, NOW + dt.timedelta(days=3650), rules) is Due.KEEP
