"""REDIS_URL naming a Sentinel-managed master: a master, a replica and one sentinel on free
ports; the master dies, the sentinel promotes the replica, turns resume on it and the
reminders planned before the failover are sent, once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.errors import SettingsError
from kvisa.identity import UserKey
from kvisa.storage.urls import parse_sentinel
from tests.channels.telegram.conftest import Telegram, User
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.ops.nodes import RedisNode, wait_until
from tests.reminders.conftest import MORNING, session
from tests.support import ACADEMIC, free_port

pytestmark = pytest.mark.redis
MASTER = "kvisa-master"
DUE_IN = 15.0  # seconds from the seeding to the reminders' time
REMINDED = range(8_001, 8_004)


class ShiftedClock:
    """The system's clock moved by `shift`: the reminders come due at a chosen moment."""

    def __init__(self, shift: dt.timedelta) -> None:
        self.shift = shift

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.shift


async def answer_questions(user: User, answers: dict[str, str]) -> None:
    """Answer each question the bot is waiting for, as `interview` does after consent."""
    while (state := await user.state()) and state["awaiting"]["kind"] == "question":
        awaiting, value = state["awaiting"], answers[state["awaiting"]["id"]]
        if value in user.last_prompt.option_ids:
            await user.press(value)
        else:
            await user.send(value)
        after = await user.state()
        assert after and after["awaiting"] != awaiting, f"{awaiting['id']}={value!r} refused"


def master_port(sentinel: RedisNode) -> int:
    with sentinel.client() as client:
        host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
    return int(port)


# Its waits are the sentinel's real time (detection, election, reminders due): on a loaded
# 2-core machine they add up past the suite's default 120 s without anything being wrong.
@pytest.mark.timeout(300)
async def test_turns_and_reminders_resume_on_the_new_master_after_a_failover(
    redis_nodes: Callable[..., RedisNode], tmp_path: Path
) -> None:
    master = redis_nodes("master", "--appendonly", "yes").start()
    replica = redis_nodes(
        "replica", "--appendonly", "yes", "--replicaof", "127.0.0.1", str(master.port)
    ).start()
    sentinel = redis_nodes(
        "sentinel",
        sentinel_config=[
            f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1",
            f"sentinel down-after-milliseconds {MASTER} 1000",
            f"sentinel failover-timeout {MASTER} 10000",
        ],
    ).start()

    def replica_known() -> bool:
        with sentinel.client() as client:
            return bool(client.execute_command("SENTINEL", "replicas", MASTER))

    await asyncio.to_thread(wait_until, replica_known, 30, "the sentinel to see the replica")

    clock = ShiftedClock(MORNING[7] - dt.datetime.now(dt.UTC) - dt.timedelta(seconds=DUE_IN))
    async with FakeBotApi() as fake:
        settings = Settings.from_env(
            {
                "REDIS_URL": f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0",
                "KVISA_DATA_DIR": str(tmp_path / "var"),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(free_port()),
                "KVISA_REMINDER_LEADER_TTL": "3",
            }
        )
        server = Server(settings, clock)
        await server.start()
        try:
            tg = Telegram(fake, server, webhook=False)
            assert server.storage is not None and server.reminders is not None
            for chat in REMINDED:
                await server.storage.put(
                    UserKey("telegram", str(chat)), session(), expected_version=0
                )
            await server.reminders.reschedule_all()
            user = tg.user(8_100)
            await user.send("/start")
            await user.press("agree")

            def in_sync() -> bool:
                with master.client() as client:
                    return int(client.execute_command("WAIT", 1, 1000)) == 1

            await asyncio.to_thread(wait_until, in_sync, 10, "the replica to have every write")
            master.kill()
            await asyncio.to_thread(
                wait_until,
                lambda: master_port(sentinel) == replica.port,
                30,
                "the sentinel to promote the replica",
            )

            async with asyncio.timeout(30):  # the sentinel hands out the new master
                while await server.readiness():
                    await asyncio.sleep(0.2)
            await answer_questions(user, ACADEMIC)  # the interview goes on where it stood
            state = await user.state()
            assert state is not None and state["finished"]

            def reminded() -> dict[int, int]:
                return {chat: len(fake.messages.get(chat, [])) for chat in REMINDED}

            await fake.wait_for(
                lambda: all(reminded().values()), timeout=DUE_IN + 30, what="the reminders"
            )
            await asyncio.sleep(2.0)
            assert reminded() == {chat: 1 for chat in REMINDED}
            assert await server.readiness() == []
        finally:
            await server.stop()


@given(
    hosts=st.lists(
        st.tuples(st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True), st.integers(1, 65535)),
        min_size=1,
        max_size=3,
    ),
    master=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    db=st.integers(0, 15),
    password=st.none() | st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True),
)
def test_a_sentinel_url_reads_back_what_it_names(
    hosts: list[tuple[str, int]], master: str, db: int, password: str | None
) -> None:
    netloc = ",".join(f"{host}:{port}" for host, port in hosts)
    credentials = f":{password}@" if password else ""
    target = parse_sentinel(f"redis+sentinel://{credentials}{netloc}/{master}/{db}")
    assert target.sentinels == tuple(hosts)
    assert (target.master, target.db, target.password) == (master, db, password)


@given(st.text(max_size=80))
def test_any_redis_url_is_taken_or_refused_in_one_line(text: str) -> None:
    try:
        Settings.from_env({"REDIS_URL": "redis+sentinel://" + text})
    except SettingsError as exc:
        assert len(exc.problems) == 1 and "\n" not in str(exc.problems[0])


def test_a_sentinel_url_without_a_master_is_named_in_the_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "redis+sentinel://:secret@127.0.0.1:26379"})
    (problem,) = caught.value.problems
    assert problem.variable == "REDIS_URL" and "no master name" in problem.problem
    assert "secret" not in problem.problem
