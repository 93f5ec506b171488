"""One applicant on several channels: which stored record a channel identity's messages belong
to, and which channel a push goes out on.

An applicant's record is stored under the key of the identity that first wrote (its founder,
`telegram:1001`), and lists every identity linked to it (`identities`). Another identity
linked to it holds a *forward* under its own key: `{"linked_to": "telegram:1001", ...}`. So
an identity that was never linked finds its profile under its own key with no lookup at all,
and a linked one follows its forward once (the engine remembers where it leads; the listing
in the applicant's record tells a stale memory apart). The forward also keeps, for
KEEP_DAYS, the profile that identity had before it was linked, for /unlink to give back.

Below the engine, the reminders, the broadcasts and the retention pass, which all read it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kvisa.bot.session import within_reply_window
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)

FORWARD = "linked_to"  # the field that makes a record a forward
KEEP = dt.timedelta(days=7)  # how long the profile not chosen at linking is kept
SCHEMA = 2  # records of release 0 had none: one channel identity per record
CHANNEL_NAMES = {"telegram": "Telegram", "wechat": "WeChat", "console": "console"}


def is_forward(data: Mapping[str, Any] | None) -> bool:
    return data is not None and FORWARD in data


def target_of(data: Mapping[str, Any]) -> UserKey:
    """Where a forward leads."""
    return UserKey.parse(str(data[FORWARD]))


def identities(key: UserKey, data: Mapping[str, Any] | None) -> list[UserKey]:
    """Every channel identity of the applicant stored under `key`, the founder first."""
    listed = (data or {}).get("identities") or [str(key)]
    return [UserKey.parse(i) for i in listed]


def lists(data: Mapping[str, Any] | None, identity: UserKey) -> bool:
    """Whether an applicant's record counts `identity` among its own."""
    return data is not None and str(identity) in (data.get("identities") or ())


def blocked(key: UserKey, data: Mapping[str, Any]) -> set[str]:
    """Identities that blocked the bot or unfollowed the account (records of release 0 say
    so for their only identity with `inactive`)."""
    if "blocked" in data:
        return set(data["blocked"])
    return {str(key)} if data.get("inactive") else set()


def seen(data: Mapping[str, Any], identity: UserKey) -> str | None:
    """When `identity` last wrote (WeChat's window is per account, not per applicant)."""
    per_identity = data.get("seen")
    if isinstance(per_identity, dict) and per_identity:
        value = per_identity.get(str(identity))
        return value if isinstance(value, str) else None
    return data.get("last_seen")  # release 0: one identity, the record's last message


def route(
    key: UserKey, data: Mapping[str, Any], now: dt.datetime, channels: set[str] | None = None
) -> list[UserKey]:
    """The identities a push tries, in order: the channel the applicant chose (/channel), else
    WeChat first once they reported entering China, else the one they last wrote from; then the
    others, as fallbacks. Identities that blocked the bot are left out, and with `channels`
    those this process cannot send on."""
    gone = blocked(key, data)
    order = [i for i in identities(key, data) if str(i) not in gone]
    if channels is not None:
        order = [i for i in order if i.channel in channels]
    order.sort(key=lambda i: seen(data, i) or "", reverse=True)  # last used first
    if "entered" in (data.get("events") or {}):
        order.sort(key=lambda i: i.channel != "wechat")  # stable: the rest keep their order
    chosen = data.get("channel_choice")
    if chosen:
        order.sort(key=lambda i: i.channel != chosen)
    return order


def reachable_by_message(key: UserKey, data: Mapping[str, Any], now: dt.datetime) -> bool:
    """Whether some channel can carry a message that is not a service notice (a broadcast):
    Telegram always, WeChat inside its 48-hour window."""
    return any(
        i.channel != "wechat" or within_reply_window(seen(data, i), now)
        for i in route(key, data, now)
    )


def first_channel(key: UserKey, data: Mapping[str, Any], now: dt.datetime) -> str:
    """The channel a push goes out on first (the broadcast preview counts by it)."""
    order = route(key, data, now)
    return order[0].channel if order else key.channel


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


# --- records of the release before linking -----------------------------------------------------


def upgraded(key: UserKey, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """A record of release 0 in this release's shape (None: it has it already): the identity
    listed, its last message and its blocked state per identity. Forwards need nothing."""
    if is_forward(data) or data.get("schema") == SCHEMA:
        return None
    new = dict(data)
    new["schema"] = SCHEMA
    new["identities"] = [str(i) for i in identities(key, data)]
    new["seen"] = dict(data.get("seen") or {})
    if not new["seen"] and data.get("last_seen"):
        new["seen"] = {str(key): data["last_seen"]}
    new["blocked"] = sorted(blocked(key, data))
    return new


async def migrate(storage: Storage) -> int:
    """Bring every stored record to this release's shape; the number changed. Idempotent (a
    second run changes nothing), safe to run while others write (each record is changed by
    compare-and-set, and a record written meanwhile by this release needs nothing)."""
    changed = 0
    async for key, record in storage.records():
        if upgraded(key, record.data) is None:
            continue

        def change(data: dict[str, Any] | None, key: UserKey = key) -> tuple[Any, bool]:
            new = None if data is None else upgraded(key, data)
            return (data, False) if new is None else (new, True)

        # Keep each record's expiry: a record before consent still ends within its day.
        if await storage.update(key, change):
            changed += 1
    if changed:
        log.info("linking: %d records moved to the applicant format", changed)
    return changed


# --- what the engine hands a turn about linking ---------------------------------------------------

LinkKind = Literal["issued", "offer", "refused", "joined", "unlinked"]


@dataclass(frozen=True)
class LinkContext:
    """What the engine found out (with I/O) for a turn about linking: a code it issued, the
    profile a redeemed code leads to, why a code was refused, or the link just made."""

    kind: LinkKind
    code: str = ""
    qr: bytes | None = None  # the WeChat account's QR code carrying the code (Telegram only)
    deep_link: str = ""  # https://t.me/<bot>?start=link-<code> (WeChat only)
    reason: str = ""  # refused: wrong, locked, busy, own, linked, channel_taken
    until: dt.datetime | None = None  # refused as locked: until when
    target: str = ""  # offer: the applicant the code leads to
    target_channel: str = ""  # offer: the channel the code was asked for on
    target_data: dict[str, Any] | None = field(default=None, compare=False)
    other_channel: str = ""  # joined or unlinked: the other channel


# --- joining and separating (pure: the engine writes what these return) -------------------------

# What a profile is, as opposed to where it is reached: taken over whole when the applicant
# keeps the other profile, given back whole by /unlink.
PROFILE = (
    "lang",
    "lang_chosen",
    "consent_at",
    "answers",
    "awaiting",
    "edit",
    "prompt",
    "finished",
    "ticked",
    "events",
    "deficiency_tolerance",
    "prefill",
    "reminders_paused",
    "news_off",
    "snoozed",
    "reminders_dismissed",
    "reminders_sent",
)


def has_profile(data: Mapping[str, Any] | None) -> bool:
    """Whether there is anything to lose: answers or reported steps."""
    return bool(data and (data.get("answers") or data.get("events")))


def ledger_for(ledger: Mapping[str, str], old: UserKey, new: UserKey) -> dict[str, str]:
    """The reminder ledger's keys name the record's key (Reminder.key): moved with a profile,
    they must name the new one, or its reminders would go out again."""
    prefix = f"{old}|"
    return {
        (f"{new}|{k[len(prefix) :]}" if k.startswith(prefix) else k): v for k, v in ledger.items()
    }


def profile_of(data: Mapping[str, Any], owner: UserKey, key: UserKey) -> dict[str, Any]:
    """The profile fields of `data` (stored under `owner`), as they read under `key`."""
    profile = {k: data[k] for k in PROFILE if k in data}
    profile["reminders_sent"] = ledger_for(data.get("reminders_sent") or {}, owner, key)
    return profile


def forward(
    target: UserKey, keep: str, link_id: str, kept: Mapping[str, Any] | None, at: dt.datetime
) -> dict[str, Any]:
    """What an identity's own record becomes once it is linked to `target`'s applicant."""
    return {
        FORWARD: str(target),
        "keep": keep,  # "mine": this identity's profile replaces the applicant's
        "link_id": link_id,
        "kept": dict(kept) if kept is not None else None,
        "at": at.isoformat(),
    }


def joined(
    key: UserKey,
    data: Mapping[str, Any],
    identity: UserKey,
    fwd: Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """The applicant under `key` with `identity` (which `fwd` forwards here) joined to it; the
    profile not chosen is kept KEEP for /unlink."""
    new = dict(data)
    mine = fwd.get("kept") or {}
    until = (now + KEEP).isoformat()
    if fwd.get("keep") == "mine" and has_profile(mine):
        new.update(profile_of(mine, identity, key))
        new["link_kept"] = {"from": str(key), "data": profile_of(data, key, key), "until": until}
    elif has_profile(mine):
        new["link_kept"] = {"from": str(identity), "data": dict(mine), "until": until}
    new["consent_at"] = data.get("consent_at") or mine.get("consent_at")
    new["identities"] = [str(i) for i in identities(key, data)] + [str(identity)]
    theirs = mine.get("seen") or {}
    new["seen"] = {
        **(data.get("seen") or {}),
        **({str(identity): theirs[str(identity)]} if str(identity) in theirs else {}),
    }
    new["blocked"] = sorted(blocked(key, data) - {str(identity)})
    new["link_ids"] = {**(data.get("link_ids") or {}), str(identity): fwd.get("link_id", "")}
    return new


def separated(
    key: UserKey, data: Mapping[str, Any], leaving: UserKey, now: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The applicant under `key` without `leaving`, and the record `leaving` gets back under its
    own key. Each keeps a copy of the profile; within KEEP of the link, the side whose profile
    was not chosen gets that one back instead."""
    current = profile_of(data, key, key)
    stay, back = dict(current), profile_of(data, key, leaving)
    kept = data.get("link_kept")
    if isinstance(kept, dict) and str(kept.get("until", "")) > now.isoformat():
        if kept.get("from") == str(leaving):
            back = profile_of(kept.get("data") or {}, leaving, leaving)
        else:
            stay = profile_of(kept.get("data") or {}, key, key)
    for side in (stay, back):  # consent is the person's: given once, it holds on both
        side["consent_at"] = side.get("consent_at") or data.get("consent_at")
    link_id = (data.get("link_ids") or {}).get(str(leaving), "")
    remaining = dict(data)
    remaining.update(stay)
    remaining["identities"] = [str(i) for i in identities(key, data) if i != leaving]
    remaining["seen"] = {k: v for k, v in (data.get("seen") or {}).items() if k != str(leaving)}
    remaining["blocked"] = sorted(blocked(key, data) - {str(leaving)})
    remaining["link_ids"] = {
        k: v for k, v in (data.get("link_ids") or {}).items() if k != str(leaving)
    }
    remaining["unlinked"] = [*(data.get("unlinked") or [])[-9:], link_id]
    remaining["link_kept"] = None
    if remaining.get("channel_choice") == leaving.channel:
        remaining["channel_choice"] = None
    own = dict(back)
    own.update(
        {
            "schema": SCHEMA,
            "identities": [str(leaving)],
            "seen": {str(leaving): s} if (s := seen(data, leaving)) else {},
            "blocked": [str(leaving)] if str(leaving) in blocked(key, data) else [],
            "last_seen": seen(data, leaving),
        }
    )
    return remaining, own
