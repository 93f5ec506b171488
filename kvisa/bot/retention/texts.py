"""The notice an inactive applicant gets before erasure, in their language."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.i18n import Text


def notice(t: Text, months: int, day: dt.date) -> str:
    silent = t.plural(
        "You have not written to us for {n} month.",
        "You have not written to us for {n} months.",
        months,
    )
    return (
        silent
        + " "
        + t(
            "To protect your privacy we will erase everything we keep about you (your answers, "
            "dates and reminders) on {date}. To keep it, send us any message before then, "
            "for example /help.",
            date=t.date(day),
        )
    )
