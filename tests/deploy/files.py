"""Readers for the files under deploy/, as the tools that use them would read them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from kvisa.bot.settings import FIELDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


# --- settings ------------------------------------------------------------------------------
def is_secret(variable: str) -> bool:
    """A setting whose value must stay out of sight: a SecretStr, or kept out of the repr
    (REDIS_URL, which may carry a password)."""
    field_info = FIELDS[variable]
    annotation = field_info.annotation
    return (
        annotation is SecretStr
        or SecretStr in getattr(annotation, "__args__", ())
        or field_info.repr is False
    )


def drain_seconds() -> float:
    """How long `kvisa serve` drains on SIGTERM: KVISA_SHUTDOWN_GRACE's default, or the 20 s
    it is specified with while the setting is still being added."""
    grace = FIELDS.get("KVISA_SHUTDOWN_GRACE")
    return float(grace.default) if grace is not None else 20.0


# --- compose.yaml --------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    """compose.yaml with its anchors and merge keys resolved (PyYAML does both)."""
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def bot_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from the bot's image."""
    return {
        name: service
        for name, service in spec["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` against `env`."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.groups()
        if env.get(name):
            return env[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name}: {rest}")
        return rest or ""

    return INTERPOLATION.sub(one, value)


def interpolation_names(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(interpolation_names(v) for v in node.values()), set())
    if isinstance(node, list):
        return set().union(*(interpolation_names(v) for v in node), set())
    if isinstance(node, str):
        return {match.group(1) for match in INTERPOLATION.finditer(node)}
    return set()


# --- Caddyfile -----------------------------------------------------------------------------
def caddyfile() -> str:
    return (DEPLOY / "Caddyfile").read_text(encoding="utf-8")


def caddy_paths() -> set[str]:
    """The paths the `@bot` matcher sends to the replicas."""
    match = re.search(r"^\s*@bot path (.+)$", caddyfile(), re.MULTILINE)
    assert match, "the Caddyfile has no `@bot path ...` matcher"
    return set(match.group(1).split())


def caddy_upstreams() -> list[str]:
    match = re.search(r"^\s*reverse_proxy ([^{]+)\{", caddyfile(), re.MULTILINE)
    assert match, "the Caddyfile has no `reverse_proxy UPSTREAMS {` line"
    return match.group(1).split()


# --- Dockerfile ----------------------------------------------------------------------------
@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for kind, args in self.instructions if kind == instruction]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments): comments dropped,
    continued lines joined, ARGs before the first FROM substituted as Docker would."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for entry in logical:
        kind, _, args = entry.strip().partition(" ")
        kind, args = kind.upper(), " ".join(args.split())
        if kind == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif kind == "FROM":
            for name, value in global_args.items():
                args = args.replace("${" + name + "}", value)
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 else None))
        else:
            stages[-1].instructions.append((kind, args))
    return stages


def run_commands(stage: Stage) -> list[list[str]]:
    """Each RUN of `stage` split into its commands (at `&&`), BuildKit's --mount flags dropped."""
    commands = []
    for run in stage.all("RUN"):
        words = [w for w in shlex.split(run) if not w.startswith("--mount=")]
        command: list[str] = []
        for word in words:
            if word == "&&":
                commands.append(command)
                command = []
            else:
                command.append(word)
        commands.append(command)
    return commands


def exec_form(args: str) -> list[str]:
    """A JSON-array instruction argument (CMD, ENTRYPOINT, HEALTHCHECK ... CMD)."""
    return list(yaml.safe_load(args))


def image_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            name, _, value = word.partition("=")
            env[name] = value
    return env


# --- Kubernetes ----------------------------------------------------------------------------
def manifests(name: str) -> list[dict[str, Any]]:
    with (K8S / name).open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def resource(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in manifests(path.name):
            if doc.get("kind") == kind and doc["metadata"]["name"] == name:
                return doc
    raise LookupError(f"no {kind} {name} in deploy/k8s")


def flows_configmap() -> dict[str, Any]:
    """The ConfigMap `kubectl create configmap kvisa-flows --from-file=flows/` makes: one key
    per regular file of the directory, its name the key and its text the value."""
    data = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "flows").iterdir())
        if path.is_file()
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kvisa-flows"},
        "data": data,
    }
