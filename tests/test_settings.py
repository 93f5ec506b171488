"""The settings: read once, checked at start, every bad one named on its own line (exit 2)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.cli import main
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.settings import FIELDS, VARIABLES, Settings, example
from kvisa.errors import ConfigError, SettingsError
from kvisa.identity import UserKey

ROOT = Path(__file__).resolve().parent.parent
KVISA = Path(sys.executable).with_name("kvisa")  # the installed console script

# The bad values of issue 13, each with the variable its error line must name.
BAD = {
    "KVISA_HTTP_PORT": "abc",
    "KVISA_ADMIN_TOKEN": "short",
    "KVISA_ADMINS": "bob",
    "KVISA_RATE_TELEGRAM": "fast",
    "KVISA_LOG_LEVEL": "LOUD",
    "REDIS_URL": "notaurl",
}
SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:hush-telegram-token-xyz",
    "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
    "TELEGRAM_WEBHOOK_SECRET": "hush-webhook",
    "WECHAT_TOKEN": "hush-wechat-token",
    "WECHAT_APP_ID": "wx0123456789abcdef",
    "WECHAT_APP_SECRET": "hush-app-secret-0123456789",
    "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "KVISA_PUBLIC_URL": "https://bot.example.org",
    "KVISA_ADMIN_TOKEN": "hush-admin-token-0123456789",
    "REDIS_URL": "redis://kvisa:hush-redis@127.0.0.1:6379/15",
}
LINE = re.compile(r"kvisa: (?P<variable>[A-Z_]+): (?P<problem>.+); for example (?P=variable)=.+")


def problems(env: dict[str, str]) -> dict[str, str]:
    """Variable -> problem of every bad setting in `env`."""
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    return {problem.variable: problem.problem for problem in error.value.problems}


def kvisa(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command, with only `env` for settings (no KVISA_* of whoever runs the tests)."""
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run(
        [str(KVISA), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, "KVISA_DATA_DIR": str(cwd / "var"), **env},
        stdin=subprocess.DEVNULL,
    )


def run_main(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv, env)
    return code, out.getvalue(), err.getvalue()


# --- the model ----------------------------------------------------------------------------------


def test_every_setting_has_a_safe_default() -> None:
    s = Settings.from_env({})

    assert s.storage_url == "sqlite:///var/kvisa.db"
    assert (s.http_host, s.http_port, s.log_level) == ("127.0.0.1", 8080, "WARNING")
    assert s.telegram_token is None and s.wechat_app_id is None  # both channels off
    assert s.admins == frozenset() and s.admin_token is None  # no admins, no admin API
    assert s.rates == {"telegram": 30.0, "wechat": 50.0}


def test_every_setting_has_a_description_and_an_example_that_is_valid() -> None:
    for variable, field in FIELDS.items():
        assert field.description, variable
        assert example(variable), variable
    examples = {variable: example(variable) for variable in VARIABLES}
    examples["KVISA_FLOWS_DIR"] = str(ROOT / "flows")  # must exist

    s = Settings.from_env(examples)

    assert s.http_port == 8080 and s.telegram_webhook_secret is not None


@pytest.mark.parametrize(("variable", "value"), BAD.items())
def test_a_bad_value_is_named_with_its_problem_and_an_example(variable: str, value: str) -> None:
    found = problems({variable: value})

    assert list(found) == [variable]
    assert "for example " + variable + "=" in found[variable]
    if variable != "KVISA_ADMIN_TOKEN":  # a secret is never repeated, even a bad one
        assert repr(value) in found[variable]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KVISA_HTTP_PORT": "0"}, "KVISA_HTTP_PORT"),
        ({"KVISA_HTTP_PORT": "65536"}, "KVISA_HTTP_PORT"),
        ({"KVISA_HTTP_HOST": "local host"}, "KVISA_HTTP_HOST"),
        ({"KVISA_RATE_WECHAT": "-1"}, "KVISA_RATE_WECHAT"),
        ({"KVISA_RATE_WECHAT": "nan"}, "KVISA_RATE_WECHAT"),
        ({"KVISA_REMINDER_LEASE": "0"}, "KVISA_REMINDER_LEASE"),
        ({"KVISA_REMINDER_DRAIN_INTERVAL": "soon"}, "KVISA_REMINDER_DRAIN_INTERVAL"),
        ({"KVISA_ADMINS": "telegram:1,slack:2"}, "KVISA_ADMINS"),
        ({"KVISA_FLOWS_DIR": "/nonexistent/flows"}, "KVISA_FLOWS_DIR"),
        ({"KVISA_FLOWS_DIR": "x" * 5000}, "KVISA_FLOWS_DIR"),
        ({"KVISA_PUBLIC_URL": "bot.example.org"}, "KVISA_PUBLIC_URL"),
        ({"REDIS_URL": "redis://"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://host:port/0"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://host/zero"}, "REDIS_URL"),
        ({"KVISA_AGENCY_NAME": "Agency\x00"}, "KVISA_AGENCY_NAME"),
        ({"KVISA_AGENCY_NAME": "Agency \udcff"}, "KVISA_AGENCY_NAME"),  # not UTF-8 in environ
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_API_BASE": "api.telegram.org"}, "TELEGRAM_API_BASE"),
        ({"WECHAT_ENCODING_AES_KEY": "too-short"}, "WECHAT_ENCODING_AES_KEY"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    assert list(problems(env)) == [variable]


def test_settings_that_belong_together_are_named_when_one_is_missing() -> None:
    found = problems(
        {"WECHAT_TOKEN": "token", "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram"}
    )

    assert set(found) == {
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "KVISA_PUBLIC_URL",
        "TELEGRAM_WEBHOOK_SECRET",
    }


def test_every_bad_setting_is_reported_at_once_in_declaration_order() -> None:
    found = problems(BAD | {"WECHAT_APP_ID": "wx1", "TELEGRAM_WEBHOOK_SECRET": "has spaces"})

    assert set(found) == set(BAD) | {
        "WECHAT_TOKEN",
        "WECHAT_APP_SECRET",
        "KVISA_PUBLIC_URL",
        "TELEGRAM_WEBHOOK_SECRET",
    }
    assert list(found) == sorted(found, key=VARIABLES.index)


def test_a_settings_error_is_a_config_error_naming_the_first_variable() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"KVISA_LOG_LEVEL": "LOUD", "KVISA_HTTP_PORT": "abc"})

    assert error.value.variable == "KVISA_LOG_LEVEL"
    assert len(str(error.value).splitlines()) == 2


def test_values_are_trimmed_and_an_empty_value_means_unset() -> None:
    s = Settings.from_env(
        {
            "KVISA_HTTP_PORT": " 9090 ",
            "KVISA_LOG_LEVEL": "debug",
            "KVISA_PUBLIC_URL": "https://bot.example.org/",
            "TELEGRAM_API_BASE": "http://127.0.0.1:8081/",
            "TELEGRAM_BOT_TOKEN": "",
            "KVISA_ADMINS": "telegram:1, wechat:oAbC  console:me",
        }
    )

    assert (s.http_port, s.log_level) == (9090, "DEBUG")
    assert s.public_base_url == "https://bot.example.org"
    assert s.telegram_api_base == "http://127.0.0.1:8081"
    assert s.telegram_token is None
    assert s.admins == {"telegram:1", "wechat:oAbC", "console:me"}


def test_the_agency_chinese_name_falls_back_to_the_english_one_then_the_default() -> None:
    assert Settings.from_env({}).agency == {"en": "the KVisa team", "zh": "KVisa 团队"}
    assert Settings.from_env({"KVISA_AGENCY_NAME": "K Agency"}).agency == {
        "en": "K Agency",
        "zh": "K Agency",
    }
    both = {"KVISA_AGENCY_NAME": "K Agency", "KVISA_AGENCY_NAME_ZH": "K签代理"}
    assert Settings.from_env(both).agency == {"en": "K Agency", "zh": "K签代理"}


def test_secrets_are_never_shown() -> None:
    s = Settings.from_env(SECRETS)
    shown = repr(s) + str(s) + repr(list(s.effective()))

    assert "hush" not in shown
    assert SECRETS["WECHAT_ENCODING_AES_KEY"] not in shown
    assert s.telegram_token is not None
    assert s.telegram_token.get_secret_value() == SECRETS["TELEGRAM_BOT_TOKEN"]
    assert dict((v, shown) for v, shown, _ in s.effective())["REDIS_URL"] == (
        "redis://kvisa:****@127.0.0.1:6379/15"
    )


def test_a_bad_secret_is_named_without_its_value() -> None:
    found = problems({"TELEGRAM_BOT_TOKEN": "hush without colon", "KVISA_ADMIN_TOKEN": "hush"})

    assert set(found) == {"TELEGRAM_BOT_TOKEN", "KVISA_ADMIN_TOKEN"}
    assert "hush" not in " ".join(found.values())


def test_broadcast_and_reminder_settings_come_from_the_one_model() -> None:
    s = Settings.from_env(
        {
            "KVISA_ADMINS": "telegram:1,wechat:oAbC",
            "KVISA_ADMIN_TOKEN": "admin-token-0123456789",
            "KVISA_AGENCY_NAME": "K Agency",
            "KVISA_RATE_TELEGRAM": "12.5",
            "KVISA_REMINDER_LEASE": "8",
            "KVISA_REMINDER_RETRY": "0.5",
            "KVISA_REMINDER_LEADER_TTL": "1",
            "KVISA_REMINDER_DRAIN_INTERVAL": "0.05",
        }
    )

    broadcasts = BroadcastSettings.from_settings(s)
    reminders = ReminderSettings.from_settings(s)

    assert broadcasts.admins == {UserKey("telegram", "1"), UserKey("wechat", "oAbC")}
    assert broadcasts.admin_token is not None
    assert broadcasts.admin_token.get_secret_value() == "admin-token-0123456789"
    assert broadcasts.agency == {"en": "K Agency", "zh": "K Agency"}
    assert (reminders.lease, reminders.retry, reminders.leader_ttl) == (8.0, 0.5, 1.0)
    assert reminders.drain_interval == 0.05
    assert reminders.rates == {"telegram": 12.5, "wechat": 50.0}


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]

    assert [v for v in VARIABLES if f"`{v}`" not in table] == []


# --- `kvisa config check` and every other command --------------------------------------------


def test_config_check_prints_the_effective_settings_with_secrets_masked() -> None:
    code, out, err = run_main(["config", "check"], SECRETS | {"KVISA_HTTP_PORT": "9000"})

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split("=", 1)[0] for line in lines[:-1]] == list(VARIABLES)
    assert "KVISA_HTTP_PORT=9000" in lines
    assert "KVISA_LOG_LEVEL=WARNING  # default" in lines
    assert "WECHAT_TEMPLATE_REMINDER=  # unset" in lines
    assert "hush" not in out


@pytest.mark.parametrize(("variable", "value"), BAD.items())
def test_config_check_names_a_bad_setting_and_exits_2(
    variable: str, value: str, tmp_path: Path
) -> None:
    run = kvisa("config", "check", cwd=tmp_path, env={variable: value})

    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    match = LINE.fullmatch(line)
    assert match is not None and match["variable"] == variable, line


@pytest.mark.parametrize(
    "command",
    [
        ["chat"],
        ["serve"],
        ["assess", "profile.json"],
        ["flows", "check"],
        ["config", "check"],
        ["wechat", "menu"],
        ["broadcast", "--status", "b1"],
        ["broadcasts"],
    ],
    ids=" ".join,
)
def test_every_command_names_every_bad_setting_and_exits_2(
    command: list[str], tmp_path: Path
) -> None:
    run = kvisa(*command, cwd=tmp_path, env=BAD)

    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert [LINE.fullmatch(line) is not None for line in lines] == [True] * len(BAD), lines
    assert {line.split(":")[1].strip() for line in lines} == set(BAD)


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "KVISA_HTTP_PORT=9001\nexport KVISA_LOG_LEVEL=info\nKVISA_AGENCY_NAME='K Agency'\n",
        encoding="utf-8",
    )

    run = kvisa("config", "check", cwd=tmp_path, env={"KVISA_LOG_LEVEL": "error"})

    assert run.returncode == 0, run.stderr
    assert {"KVISA_HTTP_PORT=9001", "KVISA_LOG_LEVEL=ERROR", "KVISA_AGENCY_NAME=K Agency"} <= set(
        run.stdout.splitlines()
    )


def test_a_bad_value_in_the_dotenv_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("KVISA_RATE_WECHAT=quick\n", encoding="utf-8")

    run = kvisa("flows", "check", cwd=tmp_path, env={})

    assert run.returncode == 2
    assert run.stderr.startswith("kvisa: KVISA_RATE_WECHAT: ")


# Anything an operator might type, including control characters and bytes that are not UTF-8
# (os.environ holds those as surrogates), plus values near the valid ones.
values = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from([example(v) for v in VARIABLES] + ["0", "-1", "1e309", " ", "a:b", "://"]),
    st.from_regex(r"[a-z]+://[^\s]{0,20}", fullmatch=True),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=st.dictionaries(st.sampled_from(VARIABLES), values))
def test_any_values_give_the_settings_or_one_line_per_bad_one(env: dict[str, str]) -> None:
    code, out, err = run_main(["config", "check"], env)

    assert code in (0, 2)
    if code == 0:
        assert out.endswith("settings OK\n") and err == ""
    else:
        lines = err.splitlines()
        assert lines and out == ""
        for line in lines:
            match = LINE.fullmatch(line)
            assert match is not None and match["variable"] in VARIABLES, line
