"""The project's own exceptions; third-party errors are translated into these where they enter.

BotError
 ├── ConfigError        a setting is missing or malformed (names the variable)
 │    └── SettingsError every bad setting at once (`problems`, one ConfigError each)
 ├── FlowError          flows/ content is invalid (names file and line)
 ├── InputError         a value given to the policy is not what the field expects
 ├── StorageError       the storage backend failed or stayed contended
 │    ├── ConflictError the record changed under us too often to commit a turn
 │    ├── ContentConflict a content version id to restore holds another version (`version_id`)
 │    └── ErasureIncomplete some of what is kept about a user could not be erased (`names`)
 └── ChannelError       a messaging platform refused or failed
      ├── RateLimited   told to wait `retry_after` seconds
      ├── Blocked       the user blocked the bot or unsubscribed
      └── Undeliverable the platform allows no such message to this user now (WeChat, 48 h)
"""

from __future__ import annotations

from collections.abc import Sequence


class BotError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class SettingsError(ConfigError):
    """Every bad setting found at start; `problems` holds one ConfigError each."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.variable, first.problem)
        self.args = ("\n".join(str(problem) for problem in problems),)
        self.problems = tuple(problems)


class FlowError(BotError):
    """Content in flows/ is invalid; carries where."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


class InputError(BotError):
    """A value does not fit its field: `field` and `expected` say what was wanted."""

    def __init__(self, field: str, expected: str, value: object = None) -> None:
        super().__init__(f"{field}: expected {expected}, got {value!r}")
        self.field = field
        self.expected = expected
        self.value = value


class StorageError(BotError):
    """The storage backend failed."""


class ConflictError(StorageError):
    """A record kept changing under a read-modify-write; the turn was not committed."""


class ContentConflict(StorageError):
    """`Storage.restore_content` found `version_id` taken by a different version; it wrote
    nothing."""

    def __init__(self, version_id: int) -> None:
        super().__init__(f"content version {version_id} is stored already with other contents")
        self.version_id = version_id


class ErasureIncomplete(StorageError):
    """Some holdings of a user (bot/erasure.py) could not be erased; erasing again retries."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"could not erase: {', '.join(names)}")
        self.names = list(names)


class ChannelError(BotError):
    """A messaging platform refused or failed a call."""


class RateLimited(ChannelError):
    """The platform asked us to wait before the next call."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after}s)")
        self.retry_after = retry_after


class Blocked(ChannelError):
    """The user blocked the bot (Telegram 403) or unsubscribed (WeChat)."""


class Undeliverable(ChannelError):
    """The platform allows no message of this kind to this user now: on WeChat, a broadcast to
    someone outside the 48-hour customer-service window (templates are for service notices)."""
