"""What broadcasts say: the message an applicant gets, the admin's preview and progress. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kvisa.bot.broadcasts.store import Broadcast
from kvisa.bot.i18n import Catalogs, Lang, Text, bilingual

MAX_TEXT = 1500  # characters per language: both texts and the footer fit one Telegram message
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def message(catalogs: Catalogs, lang: Lang, en: str, zh: str, agency: Mapping[str, str]) -> str:
    """The user's language first, the other below; the agency's name and how to opt out."""
    texts = {"en": en.strip(), "zh": zh.strip()}
    return bilingual(
        catalogs,
        lang,
        lambda t: "\n\n".join(
            [
                t("📢 Policy update from {agency}", agency=agency[t.lang]),
                texts[t.lang],
                t("Send /news off to stop these updates (your deadline reminders continue)."),
            ]
        ),
    )


def text_problem(t: Text, lang: Lang, text: str) -> str | None:
    """Why a broadcast text cannot be used, or None."""
    text = text.strip()
    if not text:
        return t("The text is empty.")
    if len(text) > MAX_TEXT:
        return t(
            "The text has {n} characters; the limit is {limit} per language.",
            n=len(text),
            limit=MAX_TEXT,
        )
    if lang == "zh" and not CJK.search(text):
        return t(
            "This does not look like Chinese. Both languages are required: send the Chinese text."
        )
    return None


def duration(t: Text, seconds: float | None) -> str:
    if seconds is None:
        return t("unknown")
    seconds = round(seconds)
    if seconds < 60:
        return t("{s} s", s=seconds)
    if seconds < 3600:
        return t("{m} min {s} s", m=seconds // 60, s=seconds % 60)
    return t("{h} h {m} min", h=seconds // 3600, m=seconds % 3600 // 60)


def bar(done: int, total: int, width: int = 20) -> str:
    filled = width if total == 0 else round(width * done / total)
    return "▓" * filled + "░" * (width - filled)


def status_name(t: Text, broadcast: Broadcast) -> str:
    names = {
        "queued": t("queued"),
        "running": t("sending"),
        "done": t("finished"),
        "cancelled": t("cancelled"),
    }
    return names[broadcast.status]


def progress(t: Text, broadcast: Broadcast) -> str:
    """Figures of one broadcast, for the admin's chat (updated in place where possible)."""
    c = broadcast.counts
    done = broadcast.total - broadcast.remaining
    lines = [
        t("Broadcast {id}: {status}", id=broadcast.id, status=status_name(t, broadcast)),
        f"{bar(done, broadcast.total)} {done}/{broadcast.total}",
        t(
            "Sent {sent} · failed {failed} · blocked {blocked} · remaining {remaining}",
            sent=c.get("sent", 0),
            failed=c.get("failed", 0),
            blocked=c.get("blocked", 0),
            remaining=broadcast.remaining,
        ),
    ]
    if c.get("undeliverable"):
        lines.append(
            t(
                "Not deliverable by message (WeChat, outside the 48-hour window): {n}",
                n=c["undeliverable"],
            )
        )
    if c.get("skipped"):
        lines.append(t("Skipped (opted out or erased since): {n}", n=c["skipped"]))
    if c.get("uncertain"):
        lines.append(
            t(
                "Uncertain (the service stopped while sending; not sent again): {n}",
                n=c["uncertain"],
            )
        )
    if broadcast.status in ("queued", "running"):
        lines.append(t("Time left: {time}", time=duration(t, broadcast.seconds_left)))
    return "\n".join(lines)


def audience(t: Text, per_channel: dict[str, int], outside_window: int) -> str:
    lines = [
        t(
            "Recipients: {total} (Telegram {telegram}, WeChat {wechat}).",
            total=sum(per_channel.values()),
            telegram=per_channel.get("telegram", 0),
            wechat=per_channel.get("wechat", 0),
        )
    ]
    if outside_window:
        lines.append(
            t.plural(
                "{n} WeChat user is outside the 48-hour window "
                "and cannot be reached by message now.",
                "{n} WeChat users are outside the 48-hour window "
                "and cannot be reached by message now.",
                outside_window,
            )
        )
    return "\n".join(lines)
