"""The Dockerfile's steps, run here without Docker: copy what its COPY lines copy (minus what
the build context's ignore file drops), run its pip commands with the paths moved under a
temporary directory, then use the `kvisa` they installed in a fresh venv: check the flows and
the settings that compose.yaml and the Kubernetes manifests give it, and serve a Telegram
conversation with the Dockerfile's HEALTHCHECK passing and SIGTERM ending it cleanly.

Slow (the wheels of every dependency, from pip's cache when it has them), so built once a session.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from kvisa.bot.settings import example
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.deploy.files import (
    DEPLOY,
    ROOT,
    Stage,
    bot_services,
    compose,
    dockerfile_stages,
    exec_form,
    flows_configmap,
    image_env,
    interpolated,
    manifests,
    resource,
    run_commands,
)
from tests.support import free_port

pytestmark = pytest.mark.timeout(900)
SYSTEM_COMMANDS = {"groupadd", "useradd", "install"}  # the image's user: test_dockerfile.py
TELEGRAM = {
    "TELEGRAM_BOT_TOKEN": example("TELEGRAM_BOT_TOKEN"),
    "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
    "TELEGRAM_WEBHOOK_SECRET": example("TELEGRAM_WEBHOOK_SECRET"),
    "KVISA_PUBLIC_URL": "https://bot.example.org",
}


@dataclass
class Image:
    root: Path
    venv: Path
    env: dict[str, str]  # the final stage's ENV, paths moved under root

    def kvisa(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        return subprocess.run(
            [str(self.venv / "bin" / "kvisa"), *args],
            cwd=home,  # the image's WORKDIR: no .env, no checkout around
            env={"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", **self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def copy_build_context(stage: Stage, src: Path) -> None:
    """The build stage's COPY lines, from the repository root into `src` (its WORKDIR)."""
    rules = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!")) and line != "*"
    ]
    ignore = shutil.ignore_patterns(*(rule.rsplit("/", 1)[-1] for rule in rules))
    for args in stage.all("COPY"):
        *sources, dest = args.split()
        for source in sources:
            origin = ROOT / source
            target = src / dest / origin.name if dest.endswith("/") else src / dest
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=ignore)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def moved(command: list[str], paths: dict[str, Path], src: Path) -> list[str]:
    """A Dockerfile command with the image's paths moved under the test's directory."""
    out: list[str] = []
    for index, word in enumerate(command):
        if index == 0 and word == "python":
            out.append(sys.executable)
        elif word == "--no-cache-dir":
            continue  # the image keeps no cache; here pip's cache spares the network
        elif word == ".":
            out.append(str(src))
        elif word in paths:
            out.append(str(paths[word]))
        else:
            assert not word.startswith("/"), f"a path the test does not know: {word}"
            out.append(word)
    return out


def satisfied(requirement: str) -> bool:
    wanted = Requirement(requirement)
    return wanted.specifier.contains(importlib.metadata.version(wanted.name), prereleases=True)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    root = tmp_path_factory.mktemp("image")
    build, final = dockerfile_stages()
    paths = {
        "/wheels": root / "wheels",
        "/opt/kvisa": root / "opt-kvisa",
        "/opt/kvisa/bin/python": root / "opt-kvisa" / "bin" / "python",
        "/var/lib/kvisa": root / "home",
    }
    src = root / "src"
    copy_build_context(build, src)
    ran = []
    for command in run_commands(build) + run_commands(final):
        if command[0] in SYSTEM_COMMANDS:
            continue
        if command[:4] == ["python", "-m", "pip", "install"] and "--no-index" not in command:
            # The build requirements: the test extras have them; installing them here would
            # change the environment running the suite.
            needed = [w for w in command[4:] if not w.startswith("-")]
            assert all(satisfied(r) for r in needed), needed
            continue
        run = subprocess.run(
            moved(command, paths, src), cwd=src, capture_output=True, text=True, timeout=800
        )
        assert run.returncode == 0, f"{' '.join(command)}\n{run.stdout}\n{run.stderr}"
        ran.append(command[:4])
    assert ran == [  # the wheels, the venv, the install into it
        ["python", "-m", "pip", "wheel"],
        ["python", "-m", "venv", "--without-pip"],
        ["python", "-m", "pip", "--python"],
    ]
    env = {name: str(paths.get(value, value)) for name, value in image_env(final).items()}
    env.pop("PATH")
    return Image(root, paths["/opt/kvisa"], env)


def test_the_image_has_its_own_flows_and_catalogs(image: Image) -> None:
    run = image.kvisa("flows", "check", env={})
    assert run.returncode == 0, run.stderr
    assert str(image.venv) in run.stdout  # the wheel's data, not the checkout's
    assert not (image.venv / "bin" / "pip").exists()  # no installer left in the venv


def test_config_check_accepts_what_compose_gives_each_replica(image: Image) -> None:
    for service in bot_services(compose()).values():
        env = {k: interpolated(str(v), {}) for k, v in service["environment"].items()}
        env["KVISA_DATA_DIR"] = image.env["KVISA_DATA_DIR"]
        run = image.kvisa("config", "check", env={**TELEGRAM, **env})
        assert run.returncode == 0, run.stderr
        assert "KVISA_HTTP_HOST=0.0.0.0\n" in run.stdout
        assert "REDIS_URL=redis://redis:6379/0\n" in run.stdout


def test_the_pod_reads_its_flows_from_the_configmap_and_its_settings(
    image: Image, tmp_path: Path
) -> None:
    for name, text in flows_configmap()["data"].items():  # as the kubelet mounts it
        (tmp_path / name).write_text(text, encoding="utf-8")
    (secret,) = manifests("secret.example.yaml")
    filled = {
        key: example(key) if value.startswith("<") else value
        for key, value in secret["stringData"].items()
    }
    env = {
        **resource("ConfigMap", "kvisa-settings")["data"],
        **filled,
        "KVISA_FLOWS_DIR": str(tmp_path),
        "KVISA_DATA_DIR": image.env["KVISA_DATA_DIR"],
    }
    run = image.kvisa("config", "check", env=env)
    assert run.returncode == 0, run.stderr
    run = image.kvisa("flows", "check", env=env)
    assert run.returncode == 0, run.stderr
    assert str(tmp_path) in run.stdout


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def healthcheck(image: Image, port: int) -> int:
    """The Dockerfile's HEALTHCHECK command, run by the image's python."""
    (args,) = dockerfile_stages()[-1].all("HEALTHCHECK")
    command = exec_form(args[args.index("CMD") + len("CMD") :])
    process = await asyncio.create_subprocess_exec(
        str(image.venv / "bin" / command[0]),
        *command[1:],
        env={"KVISA_HTTP_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


async def test_the_installed_bot_serves_a_webhook_conversation_and_stops_on_sigterm(
    image: Image, telegram: FakeBotApi, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **image.env,
        "KVISA_HTTP_HOST": "127.0.0.1",  # in a test: loopback only
        "KVISA_HTTP_PORT": str(port),
        "KVISA_DATA_DIR": str(tmp_path),  # the embedded SQLite: one process
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": telegram.base_url,
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
        "TELEGRAM_WEBHOOK_SECRET": "deploy-test-secret",
        "PATH": f"{image.venv / 'bin'}:/usr/bin:/bin",
    }
    server = await asyncio.create_subprocess_exec(
        str(image.venv / "bin" / "kvisa"),
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await telegram.wait_for(lambda: telegram.webhook, 60, "the webhook registered")
        async with asyncio.timeout(60):
            while await healthcheck(image, port) != 0:
                await asyncio.sleep(0.2)
        assert await telegram.deliver(telegram.message_update(4242, "/start")) == 200
        await telegram.wait_for(lambda: telegram.delivered(4242), 30, "a reply")
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await server.wait() == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert server.stderr is not None
    assert b"Traceback" not in await server.stderr.read()
    assert os.listdir(tmp_path)  # the SQLite store lives in KVISA_DATA_DIR
