"""Write deploy/.env.example from the settings model (kvisa/bot/settings.py).

    .venv/bin/python deploy/env_example.py          # rewrite deploy/.env.example
    .venv/bin/python deploy/env_example.py --check  # exit 1 if it is out of date

Every field of the model becomes one commented line `#VARIABLE=example` under its description,
what a good value looks like and its default, so the file lists every setting and cannot drift:
tests/deploy/test_env_example.py fails when the file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from kvisa.bot.settings import FIELDS, example

HERE = Path(__file__).resolve().parent
TARGET = HERE / ".env.example"

HEADER = """\
# KVisa bot settings: copy to deploy/.env (`cp .env.example .env`) and fill in.
# Written by deploy/env_example.py from kvisa/bot/settings.py: edit those, not this file.
#
# Every setting is listed, commented out: its default applies until you remove the `#` and set
# a value (the value shown is only an example). A blank value counts as unset. `kvisa config
# check` (`docker compose run --rm bot-1 config check`) prints what the bot will use, secrets
# masked, and names any bad value. Secrets are marked; keep .env readable by root only
# (`chmod 600 .env`). The minimum for deploy/compose.yaml: KVISA_PUBLIC_URL and a channel
# (Telegram: TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET; WeChat:
# WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_ENCODING_AES_KEY).
"""

# What a deployment with several replicas needs to know beyond the model's description.
NOTES = {
    "REDIS_URL": "compose.yaml: its own redis service (redis://redis:6379/0) unless set here.",
    "KVISA_PUBLIC_URL": (
        "compose.yaml: also Caddy's site address, so a bare https:// origin: no path, no "
        "trailing slash."
    ),
    "TELEGRAM_WEBHOOK_URL": (
        "Required with several replicas (two processes cannot both long-poll): "
        "KVISA_PUBLIC_URL followed by /telegram."
    ),
    "KVISA_ADMIN_TOKEN": "The admin API is served under /admin/ through the proxy.",
}


def compose_fixed() -> set[str]:
    """The variables deploy/compose.yaml sets for the bot itself (they win over .env)."""
    compose = yaml.safe_load((HERE / "compose.yaml").read_text(encoding="utf-8"))
    environment = compose["x-bot"]["environment"]
    # `REDIS_URL: ${REDIS_URL:-...}` takes .env's value when there is one: not fixed.
    return {name for name, value in environment.items() if "${" + name not in str(value)}


def shown_default(value: Any) -> str:
    if value is None or value == frozenset():
        return "unset"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render() -> str:
    fixed = compose_fixed()
    lines = [HEADER]
    for variable, field in FIELDS.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        annotation = field.annotation
        secret = annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())
        lines.append(f"# {variable}: {field.description}.")
        facts = [
            f"Expected: {extra.get('expected', 'a value')}.",
            f"Default: {shown_default(field.default)}.",
        ]
        if secret or field.repr is False:
            facts.append("Secret.")
        lines.append("# " + " ".join(facts))
        if variable in fixed:
            lines.append(
                "# compose.yaml sets this for the bot; setting it here has no effect there."
            )
        if variable in NOTES:
            lines.append(f"# {NOTES[variable]}")
        lines.append(f"#{variable}={example(variable)}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run `python deploy/env_example.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
