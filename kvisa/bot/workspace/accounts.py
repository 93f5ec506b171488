"""Staff accounts of the agency's workspace: a name, a role, an argon2id password hash.

Stored as storage values (`staff:<name>`, and `staff:index` listing the names), so every
replica sees the same accounts and `kvisa export` carries them. The chat admins of
KVISA_ADMINS are something else and stay as they are.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kvisa.bot.i18n import N_
from kvisa.errors import InputError, StorageError
from kvisa.storage.base import Storage

Role = Literal["viewer", "agent", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "agent", "admin")  # each may do what the one before may
ROLE_NAMES = {"viewer": N_("viewer"), "agent": N_("agent"), "admin": N_("admin")}
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
INDEX = "staff:index"
LOCK_TTL = 5.0
HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's second choice)
# Verified against when the name is unknown, so a wrong name costs what a wrong password does.
_DUMMY = HASHER.hash(secrets.token_hex(16))


def may(role: str, needed: Role) -> bool:
    """Whether `role` may do what `needed` may."""
    rank = {name: n for n, name in enumerate(ROLES)}
    return role in rank and rank[role] >= rank[needed]


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return N_("at least 12 characters")
    if len(password) > MAX_PASSWORD:
        return N_("at most 1024 characters")
    return None


@dataclass(frozen=True)
class Staff:
    name: str
    role: Role
    password_hash: str
    created_at: str
    disabled: bool = False
    # Changes with every new password: sessions opened before it end (see security.py).
    generation: str = ""


class StaffStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def value_name(name: str) -> str:
        return f"staff:{name}"

    async def get(self, name: str) -> Staff | None:
        if not NAME.fullmatch(name):
            return None
        raw = await self.storage.get_value(self.value_name(name))
        if raw is None:
            return None
        data = json.loads(raw)
        return Staff(**{k: v for k, v in data.items() if k in Staff.__dataclass_fields__})

    async def names(self) -> list[str]:
        raw = await self.storage.get_value(INDEX)
        return sorted(json.loads(raw)) if raw else []

    async def all(self) -> list[Staff]:
        found = [await self.get(name) for name in await self.names()]
        return [s for s in found if s is not None]

    async def _save(self, staff: Staff) -> None:
        await self.storage.set_value(
            self.value_name(staff.name), json.dumps(asdict(staff)).encode()
        )

    async def add(self, name: str, role: str, password: str, now: dt.datetime) -> Staff:
        """A new account; InputError for a taken or malformed name, a role or a password that
        will not do."""
        if not NAME.fullmatch(name):
            raise InputError(
                N_("name"), N_("2-32 lower-case letters, digits, '.', '_' or '-'"), name
            )
        if role not in ROLES:
            raise InputError(N_("role"), N_("admin, agent or viewer"), role)
        problem = password_problem(password)
        if problem:
            raise InputError(N_("password"), problem)
        hashed = await asyncio.to_thread(HASHER.hash, password)
        async with self._locked():
            if await self.get(name) is not None:
                raise InputError(N_("name"), N_("a name no other account has"), name)
            staff = Staff(
                name,
                role,
                hashed,
                now.isoformat(timespec="seconds"),
                generation=secrets.token_hex(8),
            )
            await self._save(staff)
            names = set(await self.names()) | {name}
            await self.storage.set_value(INDEX, json.dumps(sorted(names)).encode())
        return staff

    async def set_disabled(self, name: str, disabled: bool) -> Staff:
        staff = await self._existing(name)
        changed = Staff(**{**asdict(staff), "disabled": disabled})
        await self._save(changed)
        return changed

    async def reset(self, name: str, password: str) -> Staff:
        """A new password; the account's sessions end."""
        problem = password_problem(password)
        if problem:
            raise InputError(N_("password"), problem)
        staff = await self._existing(name)
        hashed = await asyncio.to_thread(HASHER.hash, password)
        changed = Staff(
            **{**asdict(staff), "password_hash": hashed, "generation": secrets.token_hex(8)}
        )
        await self._save(changed)
        return changed

    async def verify(self, name: str, password: str) -> Staff | None:
        """The account when the password is its own and it is not disabled, else None."""
        staff = await self.get(name.strip().lower())
        hashed = staff.password_hash if staff else _DUMMY
        try:
            await asyncio.to_thread(HASHER.verify, hashed, password)
        except (VerificationError, InvalidHashError):
            return None
        if staff is None or staff.disabled:
            return None
        if HASHER.check_needs_rehash(hashed):
            rehashed = await asyncio.to_thread(HASHER.hash, password)
            await self._save(Staff(**{**asdict(staff), "password_hash": rehashed}))
        return staff

    async def _existing(self, name: str) -> Staff:
        staff = await self.get(name)
        if staff is None:
            raise InputError(N_("name"), N_("the name of an account"), name)
        return staff

    def _locked(self) -> _IndexLock:
        return _IndexLock(self.storage)


class _IndexLock:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def __aenter__(self) -> None:
        for _ in range(250):
            if await self.storage.claim(f"{INDEX}:lock", LOCK_TTL):
                return
            await asyncio.sleep(0.02)
        raise StorageError("the staff list stayed locked")

    async def __aexit__(self, *exc: object) -> None:
        await self.storage.release(f"{INDEX}:lock")
