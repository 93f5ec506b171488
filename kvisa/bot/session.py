"""A user's conversation state, stored as JSON by the storage backend.

Below the engine, the reminder service and the broadcasts, which all read it: the engine
writes it, the others read what they need (answers, reported steps, opt-outs, last message).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from kvisa.bot.i18n import Lang, lang_from_hint
from kvisa.storage.base import FOREVER

# WeChat lets an account message a user for 48 hours after the user's last message (we stop a
# little early rather than be refused); `last_seen` is that message's time.
REPLY_WINDOW = dt.timedelta(hours=48) - dt.timedelta(minutes=5)


# Before consent a record holds only what asking for it needs (the pending consent prompt, the
# language, a deep link's park) and expires this long after it was last written.
PRE_CONSENT = dt.timedelta(hours=24)


def lifetime(data: dict[str, Any]) -> float:
    """How long a stored session lasts (Storage.update's ttl): until erased once consent is
    given, else PRE_CONSENT."""
    lasting = data.get("consent_at") or data.get("linked_to")  # forwards: see bot/applicants.py
    return FOREVER if lasting else PRE_CONSENT.total_seconds()


def within_reply_window(last_seen: str | None, now: dt.datetime) -> bool:
    return last_seen is not None and now - dt.datetime.fromisoformat(last_seen) < REPLY_WINDOW


class Kind(StrEnum):
    """What the last prompt asked for; each kind has one handler in the engine's registry."""

    QUESTION = "question"  # an interview question (subject: its id)
    CONSENT = "consent"
    EDIT = "edit"  # which answer to change
    LANG = "lang"
    CONFIRM = "confirm"  # yes or no to erasing (subject: "delete" or "reset")
    CHECKLIST = "checklist"
    FAQ = "faq"
    MENU = "menu"
    REPORT = "report"  # which step to report
    EVENT_DATE = "event_date"  # the date of a step (subject: the event)
    EVENT_CONFIRM = "event_confirm"  # replace a reported date (subject: the event; day: new date)
    DEFICIENCY = "deficiency"  # submitted under Lingang's deficiency tolerance?
    REMINDERS = "reminders"
    LINK_CHOICE = "link_choice"  # which profile to keep when linking (both have answers)
    UNLINK = "unlink"  # yes or no to separating the linked channels
    CHANNEL = "channel"  # which linked channel pushes go to first
    ASKED = "asked"  # "did you mean …?" after a typed question (subject: the entries offered)


@dataclass(frozen=True)
class Waiting:
    """The pending prompt: its kind and what it is about. Stored as it always was:
    {"kind": "question", "id": ...}, {"kind": "confirm", "action": ...}, and "date" for a day."""

    kind: Kind
    subject: str = ""
    day: dt.date | None = None

    def to_json(self) -> dict[str, str]:
        data = {"kind": self.kind.value}
        if self.subject:
            data["action" if self.kind is Kind.CONFIRM else "id"] = self.subject
        if self.day is not None:
            data["date"] = self.day.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Any) -> Waiting | None:
        """The stored value read back; None for anything unreadable (a kind this release does
        not know), so the conversation restarts from where the answers stand."""
        if not isinstance(data, dict):
            return None
        try:
            kind = Kind(str(data.get("kind")))
            subject = data.get("action" if kind is Kind.CONFIRM else "id", "")
            day = dt.date.fromisoformat(data["date"]) if data.get("date") else None
        except (ValueError, TypeError):
            return None
        return cls(kind, subject if isinstance(subject, str) else "", day)


@dataclass(frozen=True)
class Outcome:
    """The verdict in brief, kept while an answer is changed to say afterwards what changed."""

    eligible: bool
    channels: tuple[str, ...]
    checklist: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "channels": list(self.channels),
            "checklist": list(self.checklist),
        }

    @classmethod
    def from_json(cls, data: Any) -> Outcome | None:
        if not isinstance(data, dict):
            return None
        return cls(
            bool(data.get("eligible")),
            tuple(data.get("channels", ())),
            tuple(data.get("checklist", ())),
        )


@dataclass
class Edit:
    """An answer being changed: the questions still to ask again, and the outcome before."""

    queue: list[str] = field(default_factory=list)
    before: Outcome | None = None

    def to_json(self) -> dict[str, Any]:
        return {"queue": list(self.queue), "before": self.before and self.before.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> Edit | None:
        if not isinstance(data, dict):
            return None
        queue = data.get("queue", [])
        return cls([q for q in queue if isinstance(q, str)], Outcome.from_json(data.get("before")))


HANDOVER_KEPT = 50  # messages of a handed-over conversation kept (the oldest go first)
HANDOVER_TEXT = 2000  # characters kept of one message


@dataclass
class Handover:
    """The conversation is with a person at the agency (/human), not the bot: `queued` until a
    staff member claims it, then `held` by them. While it lasts the bot stays quiet (except
    /bot, which hands it back) and the messages both ways are kept here, erased with the rest."""

    status: str = "queued"  # queued | held
    since: str = ""  # ISO time of the /human
    reason: str = ""
    held_by: str | None = None  # the staff member's name while held
    at_prompt: str = ""  # what the bot had last asked ("question:degree"), for the staff
    messages: list[dict[str, str]] = field(default_factory=list)  # {from, at, text[, by]}

    def add(self, sender: str, at: str, text: str, by: str | None = None) -> None:
        entry = {"from": sender, "at": at, "text": text[:HANDOVER_TEXT]}
        if by is not None:
            entry["by"] = by
        self.messages = [*self.messages, entry][-HANDOVER_KEPT:]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "since": self.since,
            "reason": self.reason,
            "held_by": self.held_by,
            "at_prompt": self.at_prompt,
            "messages": copy_json(self.messages),
        }

    @classmethod
    def from_json(cls, data: Any) -> Handover | None:
        if not isinstance(data, dict) or data.get("status") not in ("queued", "held"):
            return None
        messages = [
            {str(k): str(v) for k, v in m.items()}
            for m in data.get("messages") or []
            if isinstance(m, dict)
        ]
        held_by = data.get("held_by")
        return cls(
            str(data["status"]),
            str(data.get("since") or ""),
            str(data.get("reason") or ""),
            held_by if isinstance(held_by, str) else None,
            str(data.get("at_prompt") or ""),
            messages,
        )


@dataclass
class Session:
    """Everything kept about one user."""

    lang: Lang = "en"
    lang_chosen: bool = False  # set by /lang; until then the channel's hint decides
    consent_at: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    awaiting: Waiting | None = None  # None when nothing is pending
    edit: Edit | None = None  # while an answer is being changed
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
    snoozed: dict[str, str] = field(default_factory=dict)  # "tomorrow": target -> ISO day
    # "Done" without an event: target -> the act-by day it was dismissed for.
    reminders_dismissed: dict[str, str] = field(default_factory=dict)
    # The reminder ledger (exactly once): Reminder.key -> "<how> <ISO time sent>". Written by
    # the reminder service only, in the step that sends; kept and erased with the rest.
    reminders_sent: dict[str, str] = field(default_factory=dict)
    # When the user was told their data would be erased for inactivity (see bot/retention);
    # any message of theirs clears it.
    retention_notice_at: str | None = None
    # One applicant, several channels (see bot/applicants.py). The record's format: 2 since
    # linking (release 0 had none).
    schema: int = 2
    identities: list[str] = field(default_factory=list)  # "telegram:1001", the founder first
    seen: dict[str, str] = field(default_factory=dict)  # identity -> its last message
    blocked: list[str] = field(default_factory=list)  # identities that blocked or unfollowed
    channel_choice: str | None = None  # /channel: where pushes go first
    # A redeemed code waiting for a choice or for consent: {"to", "channel", "keep", "until"}.
    link_offer: dict[str, Any] | None = None
    # The profile not chosen at linking, for /unlink to give back: {"from", "data", "until"}.
    link_kept: dict[str, Any] | None = None
    link_ids: dict[str, str] = field(default_factory=dict)  # linked identity -> link id
    unlinked: list[str] = field(default_factory=list)  # ids of links undone (the last few)
    # With a person at the agency (/human) rather than the bot; None: with the bot.
    handover: Handover | None = None
    # A question typed that the bot could not answer for sure, kept only until the next message
    # so that /human can take it to a person (at most 500 characters).
    asked: str | None = None
    # The content version the last turn's verdict and timeline were worked out under (None:
    # the unpublished flows directory); a re-check after a publish moves it on.
    content_version: int | None = None

    @classmethod
    def new(cls, lang_hint: str | None) -> Session:
        return cls(lang=lang_from_hint(lang_hint))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        """The session stored as `data`, sharing no dict or list with it: a turn changes its
        session in place, and the stored state it started from must stay as it was."""
        values = {k: copy_json(v) for k, v in data.items() if k in FIELDS}
        values["awaiting"] = Waiting.from_json(data.get("awaiting"))
        values["edit"] = Edit.from_json(data.get("edit"))
        values["handover"] = Handover.from_json(data.get("handover"))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON, sharing nothing with the session. Written out rather than with
        dataclasses.asdict, in a fraction of its time: every turn does this."""
        data = {name: copy_json(getattr(self, name)) for name in FIELDS}
        data["awaiting"] = self.awaiting and self.awaiting.to_json()
        data["edit"] = self.edit and self.edit.to_json()
        data["handover"] = self.handover and self.handover.to_json()
        return data

    @property
    def consented(self) -> bool:
        return self.consent_at is not None

    @property
    def waiting_kind(self) -> Kind | None:
        return self.awaiting.kind if self.awaiting else None


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
