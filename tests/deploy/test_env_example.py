"""deploy/.env.example lists every setting, and is what deploy/env_example.py writes."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from dotenv import dotenv_values

from kvisa.bot.settings import VARIABLES, example
from tests.deploy.files import DEPLOY

LINE = re.compile(r"^#([A-Z][A-Z0-9_]*)=(.*)$")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("env_example", DEPLOY / "env_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listed() -> list[tuple[str, str]]:
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in map(LINE.match, text.splitlines()) if m]


def test_env_example_is_what_the_generator_writes() -> None:
    expected = generator().render()
    actual = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    assert actual == expected, (
        "deploy/.env.example is out of date: run `python deploy/env_example.py`"
    )


def test_env_example_lists_every_setting_once_in_the_model_order() -> None:
    assert [variable for variable, _ in listed()] == list(VARIABLES)


def test_every_setting_is_commented_out_with_its_example() -> None:
    for variable, value in listed():
        assert value == example(variable)
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    assert all(not line or line.startswith("#") for line in text.splitlines())


def test_copied_unchanged_the_env_file_sets_nothing() -> None:
    # python-dotenv is the reader under pydantic-settings' .env support.
    assert dotenv_values(DEPLOY / ".env.example") == {}
