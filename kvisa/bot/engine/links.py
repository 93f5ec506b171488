"""What linking needs beyond a pure turn: one-time codes (issued, checked, limited), where a
channel identity's applicant is, and the notices to the other channel.

Codes: 6 digits from `secrets`, valid CODE_TTL, single use, stored only as an HMAC under a
deployment key (`link:code:<hmac>`), so a copy of the storage holds no usable code. Every try
counts first, atomically (`Storage.count`): ACCOUNT_TRIES wrong codes lock the account's
linking for ACCOUNT_LOCK, and at most `attempts` tries an hour are checked in the whole
deployment (a spray of guesses from many accounts); past that, every try is refused unread
until the hour is over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from kvisa.bot.applicants import LinkContext, identities, is_forward, target_of
from kvisa.bot.messages import Inbound, Outbound
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)

CODE_TTL = 600.0  # seconds a code stays valid
ACCOUNT_TRIES = 5  # wrong codes from one account before its linking is locked
ACCOUNT_LOCK = 3600.0  # seconds the lock lasts
ATTEMPTS_WINDOW = 3600.0  # the deployment-wide limit counts tries in windows this long
ATTEMPTS = 60  # tries checked per window, deployment-wide (KVISA_LINK_ATTEMPTS_PER_HOUR)
REMEMBERED = 4096  # identities whose applicant elsewhere this process remembers
CODE = re.compile(r"^\d{6}$")
START = "link-"  # /start link-123456 (Telegram deep link), WeChat QR scene link-123456

# Sends messages to a channel identity (the channels' pushes; None: none in this process).
Notify = Callable[[UserKey, Sequence[Outbound]], Awaitable[None]]
# Makes the WeChat account's QR code carrying a scene: PNG bytes, None when it may not.
QrMaker = Callable[[str, int], Awaitable[bytes | None]]


def redeemed_code(inbound: Inbound) -> str | None:
    """The code an inbound redeems: `/link 123 456`, `/start link-123456`; None otherwise."""
    if inbound.command == "link":
        code = re.sub(r"[\s-]", "", inbound.args)
        return code if code else None
    if inbound.command == "start" and inbound.args.lower().startswith(START):
        return inbound.args[len(START) :].strip()
    return None


class Links:
    """Link codes and the whereabouts of linked identities, for one process."""

    def __init__(
        self,
        storage: Storage,
        secret: bytes = b"",
        *,
        attempts: int = ATTEMPTS,
        account_lock: float = ACCOUNT_LOCK,
    ) -> None:
        self.storage = storage
        self.key = hmac.new(secret, b"kvisa link codes", hashlib.sha256).digest()
        self.attempts = attempts
        self.account_lock = account_lock
        self.telegram_bot = ""  # the bot's username, for https://t.me/<bot>?start=link-...
        self.qr: QrMaker | None = None  # set when WeChat runs here
        self.notify: Notify | None = None
        self._where: dict[UserKey, UserKey] = {}  # identity -> applicant, when not its own

    def configure(self, secret: bytes, attempts: int) -> None:
        """The deployment's key for code hashes (every replica derives the same) and the
        deployment-wide limit of tries an hour."""
        self.key = hmac.new(secret, b"kvisa link codes", hashlib.sha256).digest()
        self.attempts = attempts

    # --- where an identity's applicant is -----------------------------------------------------

    def applicant_of(self, identity: UserKey) -> UserKey:
        """Where this process last found `identity`'s applicant (its own key unless linked).
        Only a hint: the turn checks the record it reads lists the identity."""
        return self._where.get(identity, identity)

    def remember(self, identity: UserKey, key: UserKey) -> None:
        self._where.pop(identity, None)
        if key != identity:
            self._where[identity] = key
            if len(self._where) > REMEMBERED:
                del self._where[next(iter(self._where))]

    async def locate(self, identity: UserKey) -> tuple[UserKey, dict[str, Any] | None]:
        """The applicant of `identity` and its record, read now (for pushes and erasure)."""
        key = self.applicant_of(identity)
        for _ in range(3):
            record = await self.storage.get(key)
            data = record.data if record else None
            if is_forward(data):
                assert data is not None
                key = target_of(data)
                continue
            if key == identity or (data is not None and identity in identities(key, data)):
                self.remember(identity, key)
                return key, data
            key = identity  # a stale hint: start from the identity's own record
        return identity, None

    # --- codes --------------------------------------------------------------------------------

    def _name(self, code: str) -> str:
        return "link:code:" + hmac.new(self.key, code.encode(), hashlib.sha256).hexdigest()

    async def prepare(self, inbound: Inbound, key: UserKey) -> LinkContext | None:
        """What a /link turn needs to know (I/O done here); None for any other message."""
        if inbound.command not in ("link", "start"):
            return None
        code = redeemed_code(inbound)
        if code is not None:
            return await self.redeem(inbound.user, key, code, inbound.at)
        if inbound.command == "link":
            return await self.issue(inbound.user, key)
        return None

    async def issue(self, identity: UserKey, key: UserKey) -> LinkContext:
        """A new code for the applicant under `key`, asked for on `identity`'s channel; the
        identity's previous code stops working."""
        previous = await self.storage.get_value(f"link:issued:{identity}")
        if previous:
            await self.storage.delete_value(previous.decode())
        while True:
            code = f"{secrets.randbelow(1_000_000):06d}"
            name = self._name(code)
            if await self.storage.claim(name, CODE_TTL):  # unique among live codes
                break
        entry = {"applicant": str(key), "identity": str(identity)}
        await self.storage.set_value(name + ":for", json.dumps(entry).encode(), ttl=CODE_TTL)
        await self.storage.set_value(f"link:issued:{identity}", (name + ":for").encode(), CODE_TTL)
        qr, deep_link = None, ""
        if identity.channel != "wechat" and self.qr is not None:
            try:
                qr = await self.qr(START + code, int(CODE_TTL))
            except BotError as exc:  # the account may not create such codes: text only
                log.info("no WeChat QR code for a link code: %s", type(exc).__name__)
        if identity.channel != "telegram" and self.telegram_bot:
            deep_link = f"https://t.me/{self.telegram_bot}?start={START}{code}"
        return LinkContext("issued", code=code, qr=qr, deep_link=deep_link)

    async def redeem(
        self, identity: UserKey, key: UserKey, code: str, now: dt.datetime
    ) -> LinkContext:
        """Check a code typed (or scanned) on `identity`; the profile it leads to, or why not."""
        locked = await self.storage.get_value(f"link:locked:{identity}")
        if locked is not None:
            until = dt.datetime.fromisoformat(locked.decode())
            return LinkContext("refused", reason="locked", until=until)
        if await self.storage.count("link:tries", ATTEMPTS_WINDOW) > self.attempts:
            return LinkContext("refused", reason="busy")
        tries = await self.storage.count(f"link:tries:{identity}", self.account_lock)
        if tries > ACCOUNT_TRIES:  # tries sent at once, past the fifth
            return LinkContext("refused", reason="locked", until=now)
        name = self._name(code) if CODE.match(code) else ""
        raw = await self.storage.get_value(name + ":for") if name else None
        if raw is None or not await self.storage.claim(name + ":used", CODE_TTL):
            if tries >= ACCOUNT_TRIES:
                until = now + dt.timedelta(seconds=self.account_lock)
                lock = until.isoformat().encode()
                await self.storage.set_value(f"link:locked:{identity}", lock, self.account_lock)
                return LinkContext("refused", reason="locked", until=until)
            return LinkContext("refused", reason="wrong")
        await self.storage.delete_value(name + ":for")
        await self.storage.delete_value(f"link:tries:{identity}")
        entry = json.loads(raw)
        issuer = UserKey.parse(entry["identity"])
        target, data = await self.locate(issuer)
        if target == key:
            return LinkContext("refused", reason="own")
        if data is None:  # erased since, or never agreed and forgotten after a day
            return LinkContext("refused", reason="wrong")
        if identity.channel in {i.channel for i in identities(target, data)}:
            return LinkContext("refused", reason="channel_taken", target_channel=issuer.channel)
        return LinkContext(
            "offer",
            target=str(target),
            target_channel=issuer.channel,
            target_data=data,
        )

    async def forget_codes(self, identity: UserKey) -> None:
        """Erase `identity`'s live code (a holding of the erasure registry)."""
        issued = await self.storage.get_value(f"link:issued:{identity}")
        if issued:
            await self.storage.delete_value(issued.decode())
        await self.storage.delete_value(f"link:issued:{identity}")
        self._where.pop(identity, None)

    # --- notices ------------------------------------------------------------------------------

    async def tell(self, notices: Mapping[str, Sequence[Outbound]]) -> None:
        """Send the other channels' notices (linked, unlinked); a failure only logs."""
        if self.notify is None:
            return
        for identity, messages in notices.items():
            try:
                await self.notify(UserKey.parse(identity), messages)
            except BotError as exc:
                log.info("a linking notice was not delivered: %s", type(exc).__name__)
