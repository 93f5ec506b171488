"""Timeline costs per request: computing deadlines, drawing the picture, writing the .ics.

Prints milliseconds per operation (median and p95 over repeated runs) for both languages.
Run: .venv/bin/python bench/timeline.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvisa.bot.attachments.calendar_file import timeline_ics
from kvisa.bot.attachments.picture import render_timeline_png
from kvisa.bot.content import load_content
from kvisa.bot.policy.timeline import build_timeline
from kvisa.bot.settings import Settings

RUNS = 40


def measure(name: str, action: Callable[[], object]) -> None:
    action()  # warm up (font loading, caches)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"{name:<34} median {statistics.median(times):7.2f} ms   "
        f"p95 {times[int(RUNS * 0.95) - 1]:7.2f} ms"
    )


def main() -> None:
    flows, catalogs = load_content(Settings.from_env({}))
    today = dt.date(2026, 11, 25)
    answers = {"park": "lingang", "plan": "startup", "planned_application": dt.date(2026, 9, 1)}
    events = {
        "visa_applied": dt.date(2026, 9, 1),
        "entered": dt.date(2026, 9, 16),
        "work_permit_submitted": dt.date(2026, 9, 29),
    }
    timeline = build_timeline(flows, answers, events, today, True)
    stamp = dt.datetime(2026, 11, 25, 4, tzinfo=dt.UTC)
    print(f"runs per figure: {RUNS}")
    measure("build_timeline", lambda: build_timeline(flows, answers, events, today, True))
    for lang in ("en", "zh"):
        t = catalogs[lang]  # type: ignore[index]
        measure(f"render_timeline_png ({lang})", lambda t=t: render_timeline_png(timeline, t))
        measure(
            f"timeline_ics ({lang})", lambda t=t: timeline_ics(timeline, t, "telegram:1", stamp)
        )
    size = len(render_timeline_png(timeline, catalogs["zh"]))
    print(f"picture size (zh): {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
