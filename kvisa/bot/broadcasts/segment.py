"""Who a broadcast is for: a segment of applicants by their answers and state.

Written as `key=value,value key=value ...` (the same in the chat, the CLI and the HTTP API; the
API also takes the keys as a JSON object of lists). Values of one key are alternatives; keys
must all hold. An empty segment is everyone who may get updates.

    lang=zh                          Chinese-speaking applicants
    park=lingang,zhangjiang          either park
    plan=employed                    an answer of the `plan` question
    eligible=academic                eligible through that channel of flows/policy.yaml
    reached=entered not_reached=work_permit_granted
                                     entered China, work permit not granted yet
    channel=wechat                   on that platform
    active=any                       also users who blocked the bot (default: active only)

Nobody who has not agreed to the privacy notice, or who sent /news off, is ever selected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from kvisa.bot.applicants import identities
from kvisa.bot.content.model import Flows
from kvisa.bot.policy.answers import answer_values
from kvisa.bot.policy.eligibility import assess
from kvisa.errors import InputError
from kvisa.identity import UserKey

CHANNELS = ("telegram", "wechat")
LANGS = ("en", "zh")


@dataclass(frozen=True)
class Segment:
    lang: frozenset[str] = frozenset()
    park: frozenset[str] = frozenset()
    plan: frozenset[str] = frozenset()
    eligible: frozenset[str] = frozenset()
    reached: frozenset[str] = frozenset()
    not_reached: frozenset[str] = frozenset()
    channel: frozenset[str] = frozenset()
    active_only: bool = True

    # --- reading and writing ------------------------------------------------------------------

    @classmethod
    def parse(cls, flows: Flows, text: str) -> Segment:
        """From `key=a,b key=c`; raises InputError naming the key and what it accepts."""
        values: dict[str, set[str]] = {}
        for token in text.replace("，", ",").split():
            key, sep, raw = token.partition("=")
            key = key.strip().lower()
            if not sep or not raw.strip(","):
                raise InputError("segment", "key=value pairs such as park=lingang", token)
            values.setdefault(key, set()).update(
                v.strip().lower() for v in raw.split(",") if v.strip()
            )
        return cls.from_values(flows, values)

    @classmethod
    def from_json(cls, flows: Flows, data: Any) -> Segment:
        """From the API: a segment string, or an object of key -> list of values (or a value)."""
        if data is None:
            return cls()
        if isinstance(data, str):
            return cls.parse(flows, data)
        if not isinstance(data, Mapping):
            raise InputError("segment", "a string or an object", data)
        values: dict[str, set[str]] = {}
        for key, value in data.items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str | bool) for v in items):
                raise InputError(f"segment.{key}", "a string or a list of strings", value)
            values[str(key).lower()] = {str(v).lower() for v in items}
        return cls.from_values(flows, values)

    @classmethod
    def from_values(cls, flows: Flows, values: Mapping[str, set[str]]) -> Segment:
        allowed = choices(flows)
        chosen: dict[str, Any] = {}
        for key, wanted in values.items():
            if key == "active":
                if wanted - {"yes", "true", "any", "all"} or len(wanted) != 1:
                    raise InputError("active", "yes or any", ",".join(sorted(wanted)))
                chosen["active_only"] = wanted <= {"yes", "true"}
                continue
            if key not in allowed:
                raise InputError(
                    "segment", "one of the keys " + ", ".join([*allowed, "active"]), key
                )
            unknown = wanted - set(allowed[key])
            if unknown:
                raise InputError(
                    key, "one of " + ", ".join(allowed[key]), ",".join(sorted(unknown))
                )
            chosen[key] = frozenset(wanted)
        segment = cls(**chosen)
        if segment.reached & segment.not_reached:
            raise InputError(
                "reached",
                "steps other than those in not_reached",
                ",".join(sorted(segment.reached & segment.not_reached)),
            )
        return segment

    def __str__(self) -> str:
        """The canonical text form (parses back to the same segment); "" is everyone."""
        parts = [
            f"{f.name}={','.join(sorted(getattr(self, f.name)))}"
            for f in fields(self)
            if f.name != "active_only" and getattr(self, f.name)
        ]
        if not self.active_only:
            parts.append("active=any")
        return " ".join(parts)

    # --- selecting ----------------------------------------------------------------------------

    def matches(
        self, flows: Flows, user: UserKey, data: Mapping[str, Any] | None, today: dt.date
    ) -> bool:
        """Whether a stored user belongs (and may receive updates at all)."""
        if not may_receive(data):
            return False
        assert data is not None
        if self.active_only and data.get("inactive"):  # blocked on every channel
            return False
        # One applicant, whatever channels they have (bot/applicants.py); the console cannot
        # be reached outside a chat.
        reachable = {i.channel for i in identities(user, data)} & set(CHANNELS)
        if not reachable:
            return False
        if self.channel and not reachable & set(self.channel):
            return False
        if self.lang and data.get("lang", "en") not in self.lang:
            return False
        answers = data.get("answers") or {}
        if self.park and answers.get("park") not in self.park:
            return False
        if self.plan and answers.get("plan") not in self.plan:
            return False
        events = data.get("events") or {}
        if not self.reached <= events.keys() or self.not_reached & events.keys():
            return False
        return not self.eligible or bool(self.eligible & eligible_channels(flows, answers, today))


def may_receive(data: Mapping[str, Any] | None) -> bool:
    """Whether updates may go to this stored user at all: agreed to the privacy notice and did
    not send /news off (and was not erased)."""
    return bool(data and data.get("consent_at") and not data.get("news_off"))


def choices(flows: Flows) -> dict[str, tuple[str, ...]]:
    """What each key accepts, from flows/ (parks, plans, channels, steps may change there)."""

    def options(question_id: str) -> tuple[str, ...]:
        question = flows.find_question(question_id)
        return tuple(o.id for o in question.options) if question else ()

    events = tuple(e.id for e in flows.timeline.events)
    return {
        "lang": LANGS,
        "park": options("park"),
        "plan": options("plan"),
        "eligible": tuple(c.id for c in flows.channels),
        "reached": events,
        "not_reached": events,
        "channel": CHANNELS,
    }


def eligible_channels(flows: Flows, answers: Mapping[str, Any], today: dt.date) -> frozenset[str]:
    """The channels a finished interview qualifies for (none while answers are missing)."""
    try:
        return frozenset(assess(flows, answer_values(flows, answers), today).channels)
    except (KeyError, ValueError, TypeError, InputError):
        return frozenset()
