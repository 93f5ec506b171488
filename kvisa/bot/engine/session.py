"""A user's conversation state, stored as JSON by the storage backend."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

from kvisa.bot.i18n import Lang, lang_from_hint

# WeChat lets an account message a user for 48 hours after the user's last message (we stop a
# little early rather than be refused); `last_seen` is that message's time.
REPLY_WINDOW = dt.timedelta(hours=48) - dt.timedelta(minutes=5)


def within_reply_window(last_seen: str | None, now: dt.datetime) -> bool:
    return last_seen is not None and now - dt.datetime.fromisoformat(last_seen) < REPLY_WINDOW


SCHEMA = 1


@dataclass
class Session:
    """Everything kept about one user. `awaiting` says what the last prompt asked for:
    {"kind": "question", "id": ...}, {"kind": "consent"}, {"kind": "edit"}, {"kind": "lang"},
    {"kind": "confirm", "action": "delete" | "reset"}, {"kind": "checklist"}, {"kind": "faq"},
    {"kind": "report"}, {"kind": "event_date", "id": ...},
    {"kind": "event_confirm", "id": ..., "date": ...}, {"kind": "deficiency"}, {"kind": "reminders"},
    or None when nothing is pending."""

    lang: Lang = "en"
    lang_chosen: bool = False  # set by /lang; until then the channel's hint decides
    consent_at: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    awaiting: dict[str, Any] | None = None
    edit: dict[str, Any] | None = None  # {"queue": [...], "before": {...}} while editing
    prompt: int = 0  # sequence number of the last prompt with options
    finished: bool = False  # the verdict has been given
    ticked: list[str] = field(default_factory=list)
    events: dict[str, str] = field(default_factory=dict)  # reported steps: event id -> ISO date
    deficiency_tolerance: bool | None = None  # Lingang submission under deficiency tolerance
    prefill: dict[str, str] = field(default_factory=dict)  # from a deep link, before consent
    last_seen: str | None = None  # the user's last message (WeChat's 48-hour window)
    inactive: bool = False  # blocked the bot / unsubscribed: no pushes until they write again
    reminders_paused: bool = False  # /reminders: no reminders until resumed
    news_off: bool = False  # /news off: no agency broadcasts (reminders are a separate choice)
    snoozed: dict[str, str] = field(default_factory=dict)  # "remind me tomorrow": target -> ISO day
    reminders_dismissed: dict[str, str] = field(
        default_factory=dict
    )  # "done" without an event: target -> act-by day
    # The reminder ledger (exactly once): Reminder.key -> "<how> <ISO time sent>". Written by
    # the reminder service only, in the step that sends; kept and erased with the rest.
    reminders_sent: dict[str, str] = field(default_factory=dict)
    schema: int = SCHEMA

    @classmethod
    def new(cls, lang_hint: str | None) -> Session:
        return cls(lang=lang_from_hint(lang_hint))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        """The session stored as `data`, sharing no dict or list with it: a turn changes its
        session in place, and the stored state it started from must stay as it was."""
        return cls(**{k: copy_json(v) for k, v in data.items() if k in FIELDS})

    def to_json(self) -> dict[str, Any]:
        """What dataclasses.asdict gives (a deep copy of every field), in a fraction of its
        time: every turn does this, and asdict walks each value through generic type checks."""
        return {name: copy_json(getattr(self, name)) for name in FIELDS}

    @property
    def consented(self) -> bool:
        return self.consent_at is not None

    def awaiting_kind(self) -> str | None:
        return self.awaiting["kind"] if self.awaiting else None


FIELDS = tuple(f.name for f in fields(Session))
SCALARS = frozenset({str, int, float, bool, type(None)})


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value: dicts, lists and tuples (and their subclasses, as
    plain ones) are copied, anything else is shared (str, int, float, bool, None: immutable)."""
    if type(value) in SCALARS:  # most values: answered at once
        return value
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    if isinstance(value, tuple):
        return tuple(copy_json(v) for v in value)
    return value
