"""Files a WeChat chat cannot carry (the calendar), served by us behind signed, expiring links.

The file is stored under a random id for LINK_LIFETIME, listed as its user's (OwnedValues), so
erasing the user removes it before its time; the link carries its expiry and an
HMAC of id and expiry, keyed by a key derived from WECHAT_APP_SECRET. A link whose signature
does not match, or whose time is up, gets 403; a file no longer stored gets 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets

from aiohttp import web

from kvisa.bot.clock import Clock
from kvisa.bot.erasure import OwnedValues
from kvisa.bot.messages import Attachment
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

LINK_LIFETIME = dt.timedelta(days=7)
FILE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEY_PURPOSE = b"kvisa wechat file links v1"


def link_key(app_secret: str) -> bytes:
    """A key for links only, so the app secret itself never signs anything we publish."""
    return hmac.new(app_secret.encode(), KEY_PURPOSE, hashlib.sha256).digest()


def signature(key: bytes, file_id: str, expires: int) -> str:
    return hmac.new(key, f"{file_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def valid(key: bytes, file_id: str, expires: str, sig: str, now: dt.datetime) -> bool:
    if not expires.isdigit() or int(expires) < now.timestamp():
        return False
    return hmac.compare_digest(signature(key, file_id, int(expires)), sig)


def pack(attachment: Attachment) -> bytes:
    """A file as one stored value: a JSON header line, then the bytes."""
    header = json.dumps({"filename": attachment.filename, "content_type": attachment.content_type})
    return header.encode() + b"\n" + attachment.data


def unpack(value: bytes) -> Attachment:
    header, _, data = value.partition(b"\n")
    meta = json.loads(header)
    return Attachment(str(meta["filename"]), str(meta["content_type"]), data)


class FileLinks:
    """Publishes files under signed links and serves GET /wechat/files/{file_id}."""

    def __init__(self, storage: Storage, app_secret: str, base_url: str, clock: Clock) -> None:
        self.storage = storage
        self.owned = OwnedValues(storage)
        self.key = link_key(app_secret)
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    async def publish(self, user: UserKey, attachment: Attachment) -> str:
        """Store the file as one of `user`'s values and return its link."""
        file_id = secrets.token_urlsafe(18)
        expires = int((self.clock.now() + LINK_LIFETIME).timestamp())
        await self.owned.set(
            user, f"wechat:file:{file_id}", pack(attachment), LINK_LIFETIME.total_seconds()
        )
        sig = signature(self.key, file_id, expires)
        return f"{self.base_url}/wechat/files/{file_id}?exp={expires}&sig={sig}"

    async def serve(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if not FILE_ID.fullmatch(file_id) or not valid(
            self.key,
            file_id,
            request.query.get("exp", ""),
            request.query.get("sig", ""),
            self.clock.now(),
        ):
            return web.Response(status=403, text="this link is not valid or has expired")
        value = await self.storage.get_value(f"wechat:file:{file_id}")
        if value is None:
            return web.Response(status=404, text="this file is no longer available")
        attachment = unpack(value)
        return web.Response(
            body=attachment.data,
            content_type=attachment.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{attachment.filename}"',
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
