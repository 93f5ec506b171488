"""deploy/Caddyfile run by a real Caddy on loopback, in front of two fake replicas: the public
paths reach the replicas in turn, everything else (/metrics first) is 404 at the proxy, and a
replica whose /readyz says 503 (draining) gets no more requests.

Caddy is a Debian package (`apt-get install caddy`); without it these tests are skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.deploy.files import caddy_paths, caddy_upstreams, caddyfile
from tests.support import free_port

CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(CADDY is None, reason="caddy is not installed")
PUBLIC = ["/telegram", "/wechat", "/wechat/files/abc", "/admin/broadcasts", "/agency/x", "/healthz"]
PRIVATE = ["/metrics", "/readyz", "/", "/telegramx", "/admin-panel", "/static/x"]


class Replica:
    """A stand-in for one `kvisa serve`: answers every path with its name."""

    def __init__(self, name: str) -> None:
        self.name, self.ready = name, True
        self.seen: list[str] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/readyz":
            return web.Response(status=200 if self.ready else 503)
        self.seen.append(request.path)
        return web.Response(text=self.name)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    started = [Replica(upstream.split(":")[0]) for upstream in caddy_upstreams()]
    for replica in started:
        await replica.start()
    yield started
    for replica in started:
        await replica.stop()


@pytest.fixture
async def proxy(replicas: list[Replica], tmp_path: Path) -> AsyncIterator[str]:
    """Caddy on the deploy Caddyfile, with only what a test needs changed: the replicas' addresses
    (loopback instead of compose's service names), no admin endpoint, http on a free port."""
    upstreams = " ".join(caddy_upstreams())
    text = caddyfile()
    assert text.count(f"reverse_proxy {upstreams} {{") == 1
    text = text.replace(upstreams, " ".join(f"127.0.0.1:{r.port}" for r in replicas))
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n" + text, encoding="utf-8")
    base = f"http://127.0.0.1:{free_port()}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "KVISA_PUBLIC_URL": base,
    }
    assert CADDY is not None
    process = await asyncio.create_subprocess_exec(
        CADDY,
        "run",
        "--config",
        str(config),
        "--adapter",
        "caddyfile",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(30), aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        await process.wait()


async def fetch(base: str, path: str, method: str = "GET") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, base + path) as r:
        return r.status, await r.text()


def test_the_caddyfile_routes_the_public_paths_and_nothing_else() -> None:
    assert caddy_paths() == {
        "/telegram",
        "/wechat",
        "/wechat/*",
        "/admin",
        "/admin/*",
        "/agency",
        "/agency/*",
        "/healthz",
    }


async def test_public_paths_reach_the_replicas_in_turn(proxy: str, replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.seen.clear()
    answered = set()
    for path in PUBLIC:
        for method in ("GET", "POST"):
            status, body = await fetch(proxy, path, method)
            assert status == 200, path
            answered.add(body)
    assert answered == {r.name for r in replicas}
    assert sorted(p for r in replicas for p in r.seen) == sorted(PUBLIC * 2)


async def test_metrics_readyz_and_unknown_paths_stop_at_the_proxy(
    proxy: str, replicas: list[Replica]
) -> None:
    for replica in replicas:
        replica.seen.clear()
    for path in PRIVATE:
        status, _ = await fetch(proxy, path)
        assert status == 404, path
    assert not any(r.seen for r in replicas)


async def test_a_draining_replica_gets_no_new_requests(proxy: str, replicas: list[Replica]) -> None:
    draining, other = replicas
    draining.ready = False
    # Caddy looks at /readyz every 2 s; after a few looks only the other replica answers.
    async with asyncio.timeout(30):
        while True:
            bodies = {(await fetch(proxy, "/telegram", "POST"))[1] for _ in range(6)}
            if bodies == {other.name}:
                break
            await asyncio.sleep(0.5)
    draining.seen.clear()
    for _ in range(10):
        assert await fetch(proxy, "/wechat", "POST") == (200, other.name)
    assert draining.seen == []
