"""A wheel built from the project carries flows/ and compiled catalogs and runs from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_flows_and_compiled_locales_and_runs_outside_the_checkout(
    tmp_path: Path,
) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("kvisa_bot-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "kvisa/_data/flows/interview.yaml" in names
    assert "kvisa/_data/locales/zh_Hans/LC_MESSAGES/kvisa.mo" in names
    assert "kvisa/storage/redis.py" in names
    # Only `kvisa` at the top: nothing that could clash with another project's `bot` or `storage`.
    assert {name.split("/")[0] for name in names if not name.startswith("kvisa_bot-")} == {"kvisa"}

    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys; from kvisa.bot.paths import flows_dir; from kvisa.bot.cli import main; "
        "print(flows_dir()); sys.exit(main(['flows', 'check']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout  # the wheel's own data, not the checkout's
