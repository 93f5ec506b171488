"""Logging for every command, set up once by `kvisa`'s main: one JSON object a line
(python-json-logger under the stdlib's logging, which the code uses as `logging.getLogger`),
or plain text for the console chat.

Each line has `time`, `level`, `logger`, `message`, and when known `request_id` (the HTTP
request or platform update being handled, from a context variable that tasks inherit) and
`user`: a pseudonym, the channel and a keyed hash of the id (HMAC-SHA256, 12 hex digits), so
one applicant's lines can be followed without the log naming them. Code passes the UserKey
as `extra={"user": key}` and never puts an id or a message's text in the message itself.
An exception is one field, `error`: its type, its message cut short and the last frames; the
whole traceback only at DEBUG.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import sys
import traceback
from contextvars import ContextVar
from types import TracebackType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from kvisa.identity import UserKey

request_id: ContextVar[str | None] = ContextVar("kvisa_request_id", default=None)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
ERROR_MESSAGE_LIMIT = 200  # characters of an exception's message kept in `error`
FRAMES = 3  # innermost frames named in `error` above DEBUG
PSEUDONYM_HEX = 12
REQUEST_ID_LIMIT = 64
_FIELDS = ("time", "level", "logger", "message")


def new_request_id() -> str:
    # 64 random bits: unique enough to find one request's lines, cheaper than a UUID.
    return secrets.token_hex(8)


def clean_request_id(given: str | None) -> str | None:
    """A request id from outside (a proxy's X-Request-Id) if it is short and plain, else None."""
    plain = given and len(given) <= REQUEST_ID_LIMIT and given.isascii()
    if plain and all(c.isalnum() or c in "-_.:" for c in given or ""):
        return given
    return None


def pseudonym(user: UserKey | str, key: bytes) -> str:
    """`telegram:3fa94c0d12ab`: the channel, and the id hashed with the deployment's key."""
    text = str(user)
    channel, _, ident = text.partition(":")
    digest = hmac.new(key, ident.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
    return f"{channel}:{digest}"


def short_error(exc_info: ExcInfo) -> str:
    """`KeyError: 'x' (at engine.py:80 in handle < turn.py:40 in run)`: one short line."""
    kind, exc, tb = exc_info
    if kind is None:
        return ""
    text = " ".join(str(exc).split())
    if len(text) > ERROR_MESSAGE_LIMIT:
        text = text[: ERROR_MESSAGE_LIMIT - 3] + "..."
    frames = traceback.extract_tb(tb)[-FRAMES:]
    where = " < ".join(
        f"{frame.filename.rpartition('/')[2]}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
    return f"{kind.__name__}: {text}" + (f" (at {where})" if where else "")


class JsonLines(JsonFormatter):
    """One JSON object a line, with the request id and the user's pseudonym."""

    def __init__(self, key: bytes, full_tracebacks: bool = False) -> None:
        super().__init__(json_ensure_ascii=False)
        self.key = key
        self.full_tracebacks = full_tracebacks

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return str(super().formatException(ei)) if self.full_tracebacks else short_error(ei)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = self.formatTime(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        current = request_id.get()
        if current is not None:
            log_data["request_id"] = current
        error = message_dict.pop("exc_info", None)
        super().add_fields(log_data, record, message_dict)
        user = log_data.get("user")
        if isinstance(user, UserKey | str):
            log_data["user"] = pseudonym(user, self.key)
        if error:
            log_data["error"] = error

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        at = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Text(logging.Formatter):
    """Human-readable lines (the console chat), with the pseudonym when a user is given."""

    def __init__(self, key: bytes) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.key = key

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        user = getattr(record, "user", None)
        if isinstance(user, UserKey | str):
            line += f" [user {pseudonym(user, self.key)}]"
        return line


def configure(
    level: str,
    key: bytes,
    *,
    json: bool = True,
    stream: IO[str] | None = None,
    force: bool = False,
) -> None:
    """Send every logger's records to standard error (or `stream`), formatted once, at
    `level`. Like logging.basicConfig, it leaves a root logger that has handlers already
    (a test runner's) alone, unless `force`."""
    root = logging.getLogger()
    if root.handlers and not force:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines(key, full_tracebacks=level == "DEBUG") if json else Text(key))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
