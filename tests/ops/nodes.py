"""Real processes for the operations tests: private redis-servers (plain, append-only, a
replica, a sentinel) on free ports, `kvisa serve` replicas, and a round-robin front that
stands for the proxy and the platforms' redelivery in front of them."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
from aiohttp import web

from tests.conftest import die_with_parent, redis_server_binary
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # seconds a process may take to answer (a loaded machine, cold imports)


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class RedisNode:
    """A redis-server of one test: a free port, its files in `directory`; `extra` arguments
    (append-only, replicaof) or, for a sentinel, the lines of its configuration file."""

    def __init__(
        self, directory: Path, *extra: str, sentinel_config: Iterable[str] | None = None
    ) -> None:
        binary = redis_server_binary()
        assert binary is not None, "no redis-server to start"
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.extra = list(extra)
        self.sentinel_config = list(sentinel_config) if sentinel_config is not None else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> RedisNode:
        if self.sentinel_config is not None:
            config = self.dir / "sentinel.conf"  # a sentinel rewrites its file: ours alone
            config.write_text(
                "\n".join([f"port {self.port}", "bind 127.0.0.1", *self.sentinel_config]) + "\n"
            )
            command = [self.binary, str(config), "--sentinel"]
        else:
            command = [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.dir),
                "--daemonize",
                "no",
                *self.extra,
            ]
        with open(self.dir / "redis.log", "ab") as log_file:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        wait_until(self.answers, START_TIMEOUT, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited: {(self.dir / 'redis.log').read_text()}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SHUTDOWN as a supervisor does it (SIGTERM): the append-only file is flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class Replica:
    """One `kvisa serve` process (or `command`), its log in a file."""

    name: str
    env: dict[str, str]
    directory: Path
    command: list[str] = field(
        default_factory=lambda: [sys.executable, "-m", "kvisa.bot.cli", "serve"]
    )
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}-{self.starts}.log"

    def start(self) -> Replica:
        self.starts += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **self.env,
            "KVISA_HTTP_PORT": str(self.port),
            "KVISA_DATA_DIR": str(self.directory / f"{self.name}-var"),
        }
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.directory,  # no .env of the checkout is read
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        return self

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self) -> Replica:
        wait_until(self.ready, START_TIMEOUT, f"{self.name} ready", interval=0.1)
        return self

    def metric(self, name: str, token: str | None = None) -> float:
        """The value of one sample line of /metrics, e.g. 'kvisa_scheduler_leader{...}'."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, text = self.get("/metrics", headers)
        assert status == 200, text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no {name} in /metrics")

    def terminate(self, timeout: float) -> int:
        """SIGTERM, and the exit status (fails if it takes longer than `timeout`)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # What it was doing: its tasks' and threads' stacks (tests/ops/replica.py).
            for dump in (signal.SIGUSR1, signal.SIGUSR2):
                self.process.send_signal(dump)
                time.sleep(1.0)
            self.process.kill()
            self.process.wait()
            tail = self.log_path.read_text(errors="replace")[-12000:]
            raise AssertionError(
                f"{self.name} still running {timeout} s after SIGTERM:\n{tail}"
            ) from None
        finally:
            self.process = None if self.process.poll() is not None else self.process

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Front:
    """Round robin over the replicas, as the proxy spreads requests; a request a replica
    refuses (connection refused or reset, 503 while it drains) is sent again to the next
    after a pause, as Telegram and WeChat send an update again. Records what it forwarded."""

    def __init__(self, replicas: list[Replica], attempts: int = 100, pause: float = 0.2) -> None:
        self.replicas = replicas
        self.attempts, self.pause = attempts, pause
        self.turn = itertools.count()
        self.port = free_port()
        self.refused = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Front:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self.forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        for _ in range(self.attempts):
            replica = self.replicas[next(self.turn) % len(self.replicas)]
            url = replica.base_url + request.path_qs
            try:
                async with self._client.request(
                    request.method, url, data=body, headers=headers
                ) as answer:
                    content = await answer.read()
                    if answer.status != 503:
                        return web.Response(
                            status=answer.status,
                            body=content,
                            content_type=answer.content_type,
                        )
            except (TimeoutError, aiohttp.ClientError):
                pass
            self.refused += 1
            await asyncio.sleep(self.pause)
        return web.Response(status=502)
