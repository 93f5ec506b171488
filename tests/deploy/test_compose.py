"""deploy/compose.yaml names only real commands and settings, and runs Redis, two replicas and
Caddy the way deploy/README.md says."""

from __future__ import annotations

import re

import pytest

from kvisa.bot.cli import build_parser
from kvisa.bot.settings import VARIABLES, Settings
from tests.deploy.files import (
    bot_services,
    caddy_upstreams,
    compose,
    dockerfile_stages,
    drain_seconds,
    exec_form,
    interpolated,
    interpolation_names,
)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_every_bot_service_runs_a_real_kvisa_subcommand() -> None:
    entrypoint = exec_form(dockerfile_stages()[-1].all("ENTRYPOINT")[-1])
    assert entrypoint == ["kvisa"]
    for name, service in bot_services(compose()).items():
        args = build_parser().parse_args(service["command"])  # exits 2 on an unknown one
        assert args.command == "serve", name


def test_every_environment_key_and_interpolated_variable_is_a_setting() -> None:
    spec = compose()
    for name, service in spec["services"].items():
        unknown = set(service.get("environment", {})) - set(VARIABLES)
        assert not unknown, f"{name} sets variables the bot does not read: {unknown}"
    assert interpolation_names(spec) <= set(VARIABLES)


def test_the_bot_environment_is_valid_and_listens_inside_the_container() -> None:
    for service in bot_services(compose()).values():
        env = {k: interpolated(str(v), {}) for k, v in service["environment"].items()}
        settings = Settings.from_env(env)
        assert settings.http_host == "0.0.0.0"
        assert settings.redis_url == "redis://redis:6379/0"
        assert service["env_file"] == ".env"


def test_a_redis_url_in_dot_env_replaces_the_bundled_redis() -> None:
    (service, *_) = bot_services(compose()).values()
    given = {"REDIS_URL": "rediss://:pw@redis.example.org:6380/2"}
    assert interpolated(service["environment"]["REDIS_URL"], given) == given["REDIS_URL"]


def test_caddy_refuses_to_start_without_the_public_url() -> None:
    caddy = compose()["services"]["caddy"]
    with pytest.raises(KeyError, match="KVISA_PUBLIC_URL"):
        interpolated(caddy["environment"]["KVISA_PUBLIC_URL"], {})
    url = "https://bot.example.org"
    assert interpolated(caddy["environment"]["KVISA_PUBLIC_URL"], {"KVISA_PUBLIC_URL": url}) == url


def test_two_replicas_share_one_redis_and_caddy_proxies_to_each() -> None:
    spec = compose()
    bots = bot_services(spec)
    assert len(bots) == 2
    for service in bots.values():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        # published on the host's loopback only: /metrics and /readyz are not public
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert caddy_upstreams() == [f"{name}:8080" for name in bots]


def test_replicas_get_the_whole_drain_before_docker_kills_them() -> None:
    for service in bot_services(compose()).values():
        assert seconds(service["stop_grace_period"]) >= drain_seconds() + 5


def test_redis_keeps_an_append_only_file_on_a_named_volume() -> None:
    spec = compose()
    redis = spec["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in spec["volumes"]


def test_caddy_publishes_http_and_https_and_keeps_its_certificates() -> None:
    spec = compose()
    caddy = spec["services"]["caddy"]
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    mounts = dict(volume.split(":")[1::-1] for volume in caddy["volumes"])
    assert mounts["/data"] in spec["volumes"]
    assert mounts["/etc/caddy/Caddyfile"] == "./Caddyfile"
