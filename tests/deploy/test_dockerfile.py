"""deploy/Dockerfile read the way Docker reads it: the stages, what each copies and runs, the
user, the health check (run for real against a server on loopback)."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch

from packaging.specifiers import SpecifierSet

from kvisa.bot.settings import VARIABLES
from tests.deploy.files import DEPLOY, ROOT, dockerfile_stages, exec_form, image_env, run_commands
from tests.support import free_port

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
BUILD_TOOLS = ("gcc", "g++", "cc", "make", "build-essential", "hatchling", "babel", "git")


def test_the_image_has_a_build_stage_and_a_slim_final_stage() -> None:
    build, final = dockerfile_stages()
    assert build.name == "build"
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", final.base), final.base
    version = re.match(r"python:(3\.\d+)", final.base)
    assert version and SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(
        version.group(1) + ".0"
    )
    assert build.base == final.base  # the wheels are built for the interpreter that runs them


def test_the_build_stage_installs_exactly_the_build_requirements() -> None:
    build = dockerfile_stages()[0]
    installs = [c for c in run_commands(build) if c[:4] == ["python", "-m", "pip", "install"]]
    assert len(installs) == 1
    requirements = [w for w in installs[0][4:] if not w.startswith("-")]
    assert requirements == PYPROJECT["build-system"]["requires"]


def test_no_build_tool_reaches_the_final_stage() -> None:
    final = dockerfile_stages()[-1]
    assert not final.all("COPY") and not final.all("ADD")  # the wheels come in a bind mount only
    for command in run_commands(final):
        assert "apt-get" not in command
        installed = [w for w in command if not w.startswith("-")]
        if command[:3] == ["python", "-m", "pip"]:
            assert "--no-index" in command
            assert installed[-1] == PYPROJECT["project"]["name"]
        assert not set(installed) & set(BUILD_TOOLS), command


def test_the_build_stage_copies_everything_the_wheel_is_built_from() -> None:
    build = dockerfile_stages()[0]
    copied = {source.rstrip("/") for args in build.all("COPY") for source in args.split()[:-1]}
    hatch = PYPROJECT["tool"]["hatch"]["build"]
    needed = {
        "pyproject.toml",
        PYPROJECT["project"]["readme"],
        hatch["hooks"]["custom"]["path"],
        "locales",  # the hook compiles locales/*/LC_MESSAGES/*.po
        *hatch["targets"]["wheel"]["packages"],
        *hatch["targets"]["wheel"]["force-include"],
    }
    assert needed <= copied
    # ... and the build context's ignore file lets each through.
    rules = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in needed:
        excluded = False
        for rule in rules:
            negated, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if fnmatch(path, pattern):
                excluded = not negated
        assert not excluded, path


def test_the_bot_runs_as_a_numeric_non_root_user_that_the_image_creates() -> None:
    final = dockerfile_stages()[-1]
    user = final.all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    useradd = next(c for c in run_commands(final) if c[0] == "useradd")
    assert useradd[useradd.index("--uid") + 1] == uid


def test_the_image_environment_names_settings_and_listens_inside_the_container() -> None:
    env = image_env(dockerfile_stages()[-1])
    ours = {name for name in env if name.startswith(("KVISA_", "REDIS_", "TELEGRAM_", "WECHAT_"))}
    assert ours <= set(VARIABLES)
    assert env["KVISA_HTTP_HOST"] == "0.0.0.0"
    assert exec_form(dockerfile_stages()[-1].all("CMD")[-1]) == ["serve"]


@contextmanager
def http_server(status: int) -> Iterator[int]:
    """A loopback server answering every GET with `status`; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def healthcheck(port: int) -> int:
    final = dockerfile_stages()[-1]
    (args,) = final.all("HEALTHCHECK")
    command = exec_form(args[args.index("CMD") + len("CMD") :])
    assert command[0] == "python"
    env = {"KVISA_HTTP_PORT": str(port)}
    run = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
    return run.returncode


def test_the_healthcheck_passes_on_200_from_healthz_and_fails_on_503() -> None:
    with http_server(200) as port:
        assert healthcheck(port) == 0
    with http_server(503) as port:
        assert healthcheck(port) != 0


def test_the_healthcheck_fails_when_nothing_listens() -> None:
    assert healthcheck(free_port()) != 0
