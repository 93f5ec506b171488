"""Sessions, CSRF tokens and sign-in lockout of the workspace.

- A session is a random id kept server-side (`ws:session:<hash of id>`, expiring after 8 idle
  hours) and sent as a cookie signed with the workspace key: `<id>.<HMAC>`; HttpOnly,
  SameSite=Strict, Secure when the public URL is https. It holds the staff name, the
  account's password generation (a reset or a disabled account ends it), the CSRF token and
  the language.
- Every state-changing request carries the session's CSRF token (a form field `csrf` or the
  header `X-CSRF-Token`); the sign-in form, before any session, carries a token signed into a
  short-lived cookie of its own (double submit).
- 10 failed sign-ins within 15 minutes for one account, or from one address, lock that
  account or address for 15 minutes (a correct password is refused meanwhile).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass

from aiohttp import web

from kvisa.errors import StorageError
from kvisa.storage.base import Storage

SESSION_COOKIE = "kvisa_ws"
PRE_COOKIE = "kvisa_ws_pre"  # the sign-in form's CSRF token, before a session exists
IDLE = dt.timedelta(hours=8)
TOUCH_EVERY = 60.0  # seconds: a session's expiry is pushed back at most this often
FAILURES_ALLOWED = 10
LOCK_FOR = dt.timedelta(minutes=15)
LOCK_TTL = 5.0


def sign(key: bytes, value: str) -> str:
    return value + "." + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def unsign(key: bytes, signed: str | None) -> str | None:
    if not signed or "." not in signed:
        return None
    value, _, _ = signed.rpartition(".")
    return value if hmac.compare_digest(sign(key, value), signed) else None


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass
class StaffSession:
    id: str
    name: str
    generation: str
    csrf: str
    lang: str
    touched: float  # epoch seconds of the last push of the expiry

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("id")
        return json.dumps(data).encode()


class Sessions:
    def __init__(self, storage: Storage, key: bytes, secure: bool) -> None:
        self.storage = storage
        self.key = key
        self.secure = secure

    @staticmethod
    def _name(session_id: str) -> str:
        return "ws:session:" + hashlib.sha256(session_id.encode()).hexdigest()

    async def open(self, name: str, generation: str, lang: str, now: float) -> StaffSession:
        session = StaffSession(
            secrets.token_urlsafe(32), name, generation, secrets.token_urlsafe(32), lang, now
        )
        await self.save(session)
        return session

    async def save(self, session: StaffSession) -> None:
        await self.storage.set_value(
            self._name(session.id), session.to_json(), IDLE.total_seconds()
        )

    async def read(self, request: web.Request, now: float) -> StaffSession | None:
        session_id = unsign(self.key, request.cookies.get(SESSION_COOKIE))
        if session_id is None:
            return None
        raw = await self.storage.get_value(self._name(session_id))
        if raw is None:
            return None
        try:
            session = StaffSession(id=session_id, **json.loads(raw))
        except (ValueError, TypeError):
            return None
        if now - session.touched > TOUCH_EVERY:  # idle timeout counts from the last request
            session.touched = now
            await self.save(session)
        return session

    async def close(self, session: StaffSession) -> None:
        await self.storage.delete_value(self._name(session.id))

    def set_cookie(self, response: web.StreamResponse, session: StaffSession) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            sign(self.key, session.id),
            path="/agency/",
            httponly=True,
            secure=self.secure,
            samesite="Strict",
            max_age=int(IDLE.total_seconds()),
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/agency/")

    # --- the sign-in form's token -------------------------------------------------------------

    def pre_token(self, request: web.Request) -> str | None:
        return unsign(self.key, request.cookies.get(PRE_COOKIE))

    def set_pre_token(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            PRE_COOKIE,
            sign(self.key, token),
            path="/agency/",
            httponly=True,
            secure=self.secure,
            samesite="Strict",
            max_age=3600,
        )


def client_address(request: web.Request) -> str:
    """Who signs in: the peer, or, when the peer is the proxy in front (loopback or a private
    network: Caddy, the Ingress), the address it appended last to X-Forwarded-For."""
    peer = request.remote or ""
    try:
        behind_proxy = ipaddress.ip_address(peer).is_private
    except ValueError:
        behind_proxy = False
    forwarded = request.headers.get("X-Forwarded-For", "")
    if behind_proxy and forwarded:
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


class Lockout:
    """Failed sign-ins per account and per address (values `ws:fail:<kind>:<hash>`)."""

    def __init__(self, storage: Storage, key: bytes) -> None:
        self.storage = storage
        self.key = key

    def _name(self, kind: str, who: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{who}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"ws:fail:{kind}:{digest}"

    async def _state(self, name: str, now: float) -> tuple[list[float], float]:
        """Failures within the last 15 minutes, and until when it is locked (epoch s)."""
        raw = await self.storage.get_value(name)
        try:
            data = json.loads(raw) if raw else {}
            times = [float(t) for t in data.get("times", [])]
            until = float(data.get("until", 0))
        except (ValueError, TypeError, AttributeError):
            times, until = [], 0.0
        return [t for t in times if now - t < LOCK_FOR.total_seconds()], until

    async def locked(self, account: str, address: str, now: float) -> bool:
        for kind, who in (("account", account), ("address", address)):
            _, until = await self._state(self._name(kind, who), now)
            if until > now:
                return True
        return False

    async def failed(self, account: str, address: str, now: float) -> None:
        """Count a failure; the 10th within 15 minutes locks for 15 minutes from now."""
        for kind, who in (("account", account), ("address", address)):
            name = self._name(kind, who)
            lock = name + ":lock"
            for _ in range(250):
                if await self.storage.claim(lock, LOCK_TTL):
                    break
                await asyncio.sleep(0.02)
            else:
                raise StorageError("a sign-in counter stayed locked")
            try:
                times, until = await self._state(name, now)
                times.append(now)
                if len(times) >= FAILURES_ALLOWED and until <= now:
                    times, until = [], now + LOCK_FOR.total_seconds()
                lasts = max(LOCK_FOR.total_seconds(), until - now)
                data = {"times": times, "until": until}
                await self.storage.set_value(name, json.dumps(data).encode(), lasts)
            finally:
                await self.storage.release(lock)

    async def succeeded(self, account: str) -> None:
        await self.storage.delete_value(self._name("account", account))
