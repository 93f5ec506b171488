"""WeChat passive-reply latency and throughput: `kvisa serve` on /wechat (safe mode, Redis),
next to a bare aiohttp endpoint that only checks the signature, decrypts with wechatpy and
echoes the text back as an encrypted passive reply.

Each server runs in its own process (as in production); this process plays WeChat's servers:
it encrypts and signs each user's message as WeChat does and times the HTTP request until the
passive reply has arrived. Two figures for each server:
- saturation: N users at a time go through the interview, each answering (by number) as soon
  as the reply has arrived, a new user taking over when one is done (closed loop): messages
  per second, and latency;
- fixed rate: messages posted at a steady rate (open loop): p50 and p99 latency.
Targets (issue #5): kvisa at least half the bare endpoint's messages per second; p99 under
20 ms at 100 messages per second.

Run: .venv/bin/python bench/wechat_latency.py [--users 50] [--rounds 6] [--rate 100] [--seconds 10]
     .venv/bin/python bench/wechat_latency.py --reading   (only the CPU cost of reading a message)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
import redis
import xmltodict  # type: ignore[import-untyped]
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.utils import WeChatSigner  # type: ignore[import-untyped]

from bench.common import link_identities, percentile
from tests.channels.wechat.fake_api import FakeWeChatApi
from tests.support import content, free_port

TOKEN = "bench-callback-token"
AES_KEY = "benchbenchbenchbenchbenchbenchbenchbench123"  # 43 characters
APP_ID, APP_SECRET = "wxbench000000000a", "bench-secret"
ACCOUNT = "gh_kvisa_bench"
NUMBERED = re.compile(r"^(\d+)\. (.+)$", re.MULTILINE)

# The interview of tests.support.ACADEMIC, answered by number: ("say", text) or
# ("choose", question id, option id); "consent" and "_today" are the bot's own options.
SCRIPT: list[tuple[str, ...]] = [
    ("say", "/start"),
    ("choose", "consent", "agree"),
    ("choose", "degree", "master"),
    ("choose", "degree_field_stem", "yes"),
    ("choose", "degree_from_recognized", "yes"),
    ("choose", "stem_work_at_recognized", "no"),
    ("say", "1998-04-27"),
    ("say", "DE"),
    ("say", "Germany"),
    ("say", "2031-01-01"),
    ("choose", "planned_application", "_today"),
    ("choose", "plan", "research"),
    ("choose", "park", "lingang"),
]


def labels() -> dict[tuple[str, str], str]:
    """The English label of every option the script chooses."""
    flows, catalogs = content()
    t = catalogs["en"]
    found = {("consent", "agree"): t("I agree")}
    for step in SCRIPT:
        if step[0] == "choose" and step[1] != "consent":
            option = flows.question(step[1]).option(step[2])
            found[(step[1], step[2])] = t(option.label) if option else t("Today")
    return found


def sign(*values: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*values)
    return str(signer.signature)


def callback(
    crypto: WeChatCrypto, openid: str, text: str, msg_id: int
) -> tuple[bytes, dict[str, str]]:
    """The body and query string WeChat would post for a text from `openid`."""
    created = str(int(time.time()))
    xml = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
        f"</FromUserName><CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
    nonce = secrets.token_hex(5)
    encrypted = xmltodict.parse(crypto.encrypt_message(xml, nonce, created))["xml"]["Encrypt"]
    body = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    )
    query = {
        "signature": sign(TOKEN, created, nonce),
        "timestamp": created,
        "nonce": nonce,
        "openid": openid,
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, created, nonce, encrypted),
    }
    return body.encode(), query


def reading_cost(number: int = 5000, repeat: int = 9) -> None:
    """`--reading`: the CPU time per message of the callback's own reading of a text message
    (signature, envelope, decryption, message) in this process, the best of `repeat` runs: on a
    busy machine steadier than the servers' figures. Run it in the trees to compare."""
    from kvisa.bot.channels.wechat import wire

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    body, query = callback(crypto, "o_bench_user_0000001", "1998-04-27", 7_000_000_000_000_000_000)

    def read() -> None:
        wire.check_signature(TOKEN, query)
        wire.parse(wire.open_body(body, query, TOKEN, crypto))

    runs = timeit.repeat(read, number=number, repeat=repeat, timer=time.process_time)
    print(f"reading a text message: {min(runs) / number * 1e6:.1f} us of CPU (best of {repeat})")


# --- the servers, each in a process of its own ------------------------------------------------


def start_server(
    kind: str, port: int, api_base: str, redis_url: str, data_dir: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "WECHAT_ENCODING_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": api_base,
        "REDIS_URL": redis_url,
        "KVISA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "KVISA_DATA_DIR": data_dir,
        "KVISA_HTTP_PORT": str(port),
        "KVISA_LOG_LEVEL": "ERROR",
        "TELEGRAM_BOT_TOKEN": "",
    }
    command = (
        [sys.executable, "-m", "kvisa.bot.cli", "serve"]
        if kind == "kvisa"
        else [sys.executable, __file__, "--bare-endpoint", str(port)]
    )
    return subprocess.Popen(command, cwd=ROOT, env=env)


def bare_endpoint(port: int) -> None:
    """The baseline: signature check, wechatpy decryption and parsing, an encrypted echo."""
    from aiohttp import web
    from wechatpy import parse_message  # type: ignore[import-untyped]
    from wechatpy.replies import TextReply  # type: ignore[import-untyped]
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def echo(request: web.Request) -> web.Response:
        query = request.query
        check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])
        xml = crypto.decrypt_message(
            await request.read(), query["msg_signature"], query["timestamp"], query["nonce"]
        )
        message = parse_message(xml)
        reply = TextReply(message=message, content=message.content).render()
        return web.Response(text=crypto.encrypt_message(reply, query["nonce"], query["timestamp"]))

    app = web.Application()
    app.router.add_post("/wechat", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- WeChat's side ----------------------------------------------------------------------------


@dataclass
class Driver:
    http: aiohttp.ClientSession
    url: str
    kind: str  # "kvisa" or "bare"
    labels: dict[tuple[str, str], str]
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, APP_ID))
    latencies: list[float] = field(default_factory=list)
    users: itertools.count[int] = field(default_factory=itertools.count)
    msg_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(7_000_000_000_000_000_000)
    )

    def request(self, openid: str, text: str) -> tuple[bytes, dict[str, str]]:
        """The body and query string WeChat would post for a text from `openid`."""
        return callback(self.crypto, openid, text, next(self.msg_ids))

    def reply_text(self, body: str) -> str:
        sealed = xmltodict.parse(body)["xml"]
        xml = self.crypto.decrypt_message(
            body, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
        )
        return str(xmltodict.parse(xml)["xml"]["Content"])

    def text_for(self, step: tuple[str, ...], previous: str) -> str:
        if step[0] == "say" or self.kind == "bare":
            return step[-1]
        label = self.labels[(step[1], step[2])]
        numbers = {m.group(2): m.group(1) for m in NUMBERED.finditer(previous)}
        if label not in numbers:
            raise RuntimeError(f"the bot did not offer {label!r}: {previous!r}")
        return numbers[label]

    async def turn(self, openid: str, step: tuple[str, ...], previous: str) -> str:
        body, query = self.request(openid, self.text_for(step, previous))
        start = time.perf_counter()
        async with self.http.post(self.url, params=query, data=body) as response:
            answer = await response.text()
            self.latencies.append(time.perf_counter() - start)
        if response.status != 200 or answer == "success":
            raise RuntimeError(
                f"no passive reply from {self.kind}: {response.status} {answer[:200]!r}"
            )
        return self.reply_text(answer)

    async def user(self) -> None:
        """One new user through the whole interview, answering as soon as the reply came."""
        openid, previous = f"o_bench_{next(self.users)}", ""
        for step in SCRIPT:
            previous = await self.turn(openid, step, previous)

    async def saturate(self, users: int, rounds: int) -> tuple[float, list[float]]:
        """`users` interviews at a time, `rounds` after one another."""

        async def one_after_another() -> None:
            for _ in range(rounds):
                await self.user()

        self.latencies = []
        start = time.perf_counter()
        await asyncio.gather(*(one_after_another() for _ in range(users)))
        return len(self.latencies) / (time.perf_counter() - start), self.latencies

    async def steady(self, rate: float, seconds: float) -> tuple[float, list[float]]:
        """Messages at a fixed rate, each from a user whose previous turn is over (new users
        join when all are busy), so the server is never asked faster than `rate`."""
        self.latencies = []
        ready: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def one(openid: str, step: int, previous: str) -> None:
            reply = await self.turn(openid, SCRIPT[step], previous)
            if step + 1 < len(SCRIPT):
                ready.put_nowait((openid, step + 1, reply))

        loop = asyncio.get_running_loop()
        start, total = loop.time(), int(rate * seconds)
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            openid, step, previous = (
                ready.get_nowait() if not ready.empty() else (f"o_bench_{next(self.users)}", 0, "")
            )
            task = asyncio.create_task(one(openid, step, previous))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return total / (loop.time() - start), self.latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_pid(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.info("server")["process_id"])


def report(label: str, rate: float, latencies: list[float]) -> None:
    print(
        f"  {label:<12} {rate:8.1f} messages/s   p50 {percentile(latencies, 0.5) * 1000:6.1f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   ({len(latencies)} messages)"
    )


def clean_redis(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        stale = [
            *client.scan_iter(match="kvisa:user:wechat:o_bench_*", count=1000),
            *client.scan_iter(match="kvisa:user:telegram:91*", count=1000),
            *client.scan_iter(match=f"kvisa:*:wechat:{APP_ID}:*", count=1000),
            *client.scan_iter(match=f"kvisa:*:wechat:token*:{APP_ID}", count=1000),
        ]
        for start in range(0, len(stale), 1000):
            client.delete(*stale[start : start + 1000])


async def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start listening")


Figures = dict[str, tuple[float, list[float]]]


async def bench(
    kind: str, args: argparse.Namespace, api: FakeWeChatApi
) -> tuple[Figures, float, float]:
    """Latency figures, and the server's and Redis's CPU milliseconds per message at saturation."""
    port = free_port()
    if kind == "kvisa" and args.linked:
        budget = 10 + args.users * (args.rounds + 1) + int(args.rate * args.seconds)
        pairs = [(f"wechat:o_bench_{n}", f"telegram:{9_100_000_000 + n}") for n in range(budget)]
        link_identities(args.redis, pairs)
    process = start_server(kind, port, api.base_url, args.redis, args.data_dir)
    connector = aiohttp.TCPConnector(limit=200)
    redis_process = redis_pid(args.redis)
    try:
        await wait_until_listening(port, process)
        async with aiohttp.ClientSession(connector=connector) as http:
            driver = Driver(http, f"http://127.0.0.1:{port}/wechat", kind, labels())
            await driver.saturate(5, 1)  # warm up: connections, caches
            cpu_before = cpu_seconds(process.pid), cpu_seconds(redis_process)
            saturation = await driver.saturate(args.users, args.rounds)
            count = len(saturation[1])
            server_cpu = (cpu_seconds(process.pid) - cpu_before[0]) / count * 1000
            redis_cpu = (cpu_seconds(redis_process) - cpu_before[1]) / count * 1000
            return (
                {
                    "saturation": saturation,
                    "fixed rate": await driver.steady(args.rate, args.seconds),
                },
                server_cpu,
                redis_cpu,
            )
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
        clean_redis(args.redis)


async def main(args: argparse.Namespace) -> None:
    clean_redis(args.redis)
    api = FakeWeChatApi(APP_ID, APP_SECRET)
    await api.start()
    print(
        f"{args.users} users at a time x {args.rounds} rounds x {len(SCRIPT)} messages for "
        f"saturation; {args.rate:g} messages/s for {args.seconds:g} s at the fixed rate; "
        f"safe mode (AES); storage {args.redis}; {os.cpu_count()} CPUs"
    )
    figures: dict[str, Figures] = {}
    cpu: dict[str, float] = {}
    try:
        for kind, label in (
            ("kvisa", "kvisa serve /wechat (interview)"),
            ("bare", "bare aiohttp: decrypt + echo"),
        ):
            figures[kind], cpu[kind], redis_cpu = await bench(kind, args, api)
            print(label)
            for phase, (rate, latencies) in figures[kind].items():
                report(phase, rate, latencies)
            print(
                f"  CPU per message at saturation: server {cpu[kind]:.2f} ms, "
                f"Redis {redis_cpu:.2f} ms"
            )
    finally:
        await api.stop()
    ratio = figures["kvisa"]["saturation"][0] / figures["bare"]["saturation"][0]
    p99 = percentile(figures["kvisa"]["fixed rate"][1], 0.99) * 1000
    print(
        f"kvisa / bare messages per second: {ratio:.2f} (target >= 0.5); "
        f"server CPU per message, bare / kvisa: {cpu['bare'] / cpu['kvisa']:.2f}; "
        f"kvisa p99 at {args.rate:g}/s: {p99:.1f} ms (target < 20 ms)"
    )
    print(f"WeChat API calls during the run (passive replies need none): {len(api.calls)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare-endpoint"]:
        bare_endpoint(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:2] == ["--reading"]:
        reading_cost()
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--linked", action="store_true", help="users linked to a Telegram applicant"
    )
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--redis", default=os.environ.get("KVISA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    with tempfile.TemporaryDirectory() as data_dir:
        parser.set_defaults(data_dir=data_dir)
        asyncio.run(main(parser.parse_args()))
