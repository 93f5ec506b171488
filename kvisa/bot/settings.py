"""The bot's settings: one model, read from environment variables (and a .env file) at start.

Every field is one environment variable (its alias) with a description, a default or None
(off), and an example of a good value. A bad value anywhere raises SettingsError listing every
bad variable, one line each: the variable, what is wrong, and an example. Pydantic's errors are
translated into those lines here, once. Secrets are SecretStr: repr, logs and
`kvisa config check` never show them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from kvisa.errors import ConfigError, SettingsError
from kvisa.storage.urls import SENTINEL_FORM, is_sentinel, parse_sentinel

# Messages a second per platform: Telegram's documented bulk limit; WeChat's customer-service
# messages have a daily quota rather than a rate, 50 a second keeps a burst polite.
DEFAULT_RATES: Mapping[str, float] = {"telegram": 30.0, "wechat": 50.0}
DEFAULT_AGENCY: Mapping[str, str] = {"en": "the KVisa team", "zh": "KVisa 团队"}
ADMIN_CHANNELS = ("telegram", "wechat", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WECHAT = ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET")

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # surrogates: bytes that are not UTF-8
_HOST = re.compile(r"[A-Za-z0-9._:%\[\]-]+")
_TELEGRAM_TOKEN = re.compile(r"[0-9]+:\S+")  # aiogram's validate_token, without importing aiogram
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token
_ADMIN_TOKEN_LENGTH = 16
_OFFICE_HOURS = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")


def setting(variable: str, default: Any, description: str, expected: str, example: str) -> Any:
    """A field read from `variable`; `expected` and `example` make its error line."""
    return Field(
        default,
        validation_alias=variable,
        description=description,
        examples=[example],
        json_schema_extra={"expected": expected},
    )


class Settings(BaseSettings):
    """Everything the bot reads from its environment, validated."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",  # the environment holds much else
        frozen=True,
        enable_decoding=False,  # values are plain strings, never JSON
        env_file_encoding="utf-8",
    )

    # --- storage, content, logging, HTTP ---------------------------------------------------
    data_dir: Path = setting(
        "KVISA_DATA_DIR",
        Path("var"),
        "where the SQLite database and console attachments live",
        "a directory path",
        "/srv/kvisa/var",
    )
    redis_url: str | None = Field(
        None,
        validation_alias="REDIS_URL",
        description="use Redis instead of SQLite (several `kvisa serve` processes share it); "
        "a master managed by Redis Sentinel is " + SENTINEL_FORM,
        examples=["redis://127.0.0.1:6379/0"],
        json_schema_extra={"expected": "a redis://, rediss://, unix:// or redis+sentinel:// URL"},
        repr=False,  # may carry a password
    )
    flows_dir: Path | None = setting(
        "KVISA_FLOWS_DIR",
        None,
        "the agency's edited copy of the content (default: the shipped flows/)",
        "an existing directory",
        "/srv/kvisa/flows",
    )
    content_max_age_days: int = Field(
        180,
        validation_alias="KVISA_CONTENT_MAX_AGE_DAYS",
        description="`kvisa flows check` warns about a fact whose as_of date is older than this",
        examples=["180"],
        json_schema_extra={"expected": "a whole number of days from 1 to 3650"},
        ge=1,
        le=3650,
    )
    log_level: str = setting(
        "KVISA_LOG_LEVEL",
        "WARNING",
        "how much the bot logs (one JSON object a line on standard error; DEBUG adds tracebacks)",
        "one of " + ", ".join(LOG_LEVELS),
        "INFO",
    )
    log_key: SecretStr | None = setting(
        "KVISA_LOG_KEY",
        None,
        "the key of the pseudonyms that stand for users in the logs (HMAC-SHA256); default: "
        "derived from TELEGRAM_BOT_TOKEN or WECHAT_APP_SECRET, the same in every replica",
        f"a random string of at least {_ADMIN_TOKEN_LENGTH} characters",
        "9d1c0e7a5b3f42e8a6c4d2b0",
    )
    http_host: str = setting(
        "KVISA_HTTP_HOST",
        "127.0.0.1",
        "the address `kvisa serve`'s HTTP server (webhooks, /healthz) listens on",
        "a host name or IP address",
        "0.0.0.0",
    )
    http_port: int = Field(
        8080,
        validation_alias="KVISA_HTTP_PORT",
        description="the port of `kvisa serve`'s HTTP server",
        examples=["8080"],
        json_schema_extra={"expected": "a port number from 1 to 65535"},
        ge=1,
        le=65535,
    )
    shutdown_grace: float = Field(
        20.0,
        validation_alias="KVISA_SHUTDOWN_GRACE",
        description="seconds `kvisa serve` gives work in flight to finish after SIGTERM",
        examples=["20"],
        json_schema_extra={"expected": "a positive number of seconds"},
        gt=0,
        allow_inf_nan=False,
    )
    public_base_url: str | None = setting(
        "KVISA_PUBLIC_URL",
        None,
        "where users reach the HTTP server (signed calendar-file links); required with WeChat",
        "an http(s) URL",
        "https://bot.example.org",
    )

    # --- Telegram: on when the token is set; webhook mode when the URL is set ----------------
    telegram_token: SecretStr | None = setting(
        "TELEGRAM_BOT_TOKEN",
        None,
        "enables Telegram (the token from @BotFather)",
        "a bot token such as 123456789:AAE... (from @BotFather)",
        "123456789:AAEhBP0av28bbqNbOrqkbQWrGpRJWhUz5aA",
    )
    telegram_api_base: str = setting(
        "TELEGRAM_API_BASE",
        "https://api.telegram.org",
        "the Bot API server (a local one, or a test fake)",
        "an http(s) URL",
        "https://api.telegram.org",
    )
    telegram_webhook_url: str | None = setting(
        "TELEGRAM_WEBHOOK_URL",
        None,
        "webhook mode when set (Telegram posts to it), else long polling",
        "an http(s) URL",
        "https://bot.example.org/telegram",
    )
    telegram_webhook_secret: SecretStr | None = setting(
        "TELEGRAM_WEBHOOK_SECRET",
        None,
        "checked on every webhook request; required with TELEGRAM_WEBHOOK_URL",
        "1-256 characters: letters, digits, _ and -",
        "k3v9-webhook_secret",
    )

    # --- WeChat Official Account: on with token, app id and secret together ------------------
    wechat_token: SecretStr | None = setting(
        "WECHAT_TOKEN",
        None,
        "the callback token set in the account's console (with WECHAT_APP_ID, WECHAT_APP_SECRET)",
        "the token from the account's console",
        "kvisa-callback-token",
    )
    wechat_app_id: str | None = setting(
        "WECHAT_APP_ID",
        None,
        "the account's AppID",
        "the AppID from the account's console",
        "wx0123456789abcdef",
    )
    wechat_app_secret: SecretStr | None = setting(
        "WECHAT_APP_SECRET",
        None,
        "the account's AppSecret",
        "the AppSecret from the account's console",
        "0123456789abcdef0123456789abcdef",
    )
    wechat_encoding_aes_key: SecretStr | None = setting(
        "WECHAT_ENCODING_AES_KEY",
        None,
        "safe (encrypted) mode when set; use it in production",
        "the 43-character EncodingAESKey from the account's console",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    )
    wechat_api_base: str = setting(
        "WECHAT_API_BASE",
        "https://api.weixin.qq.com",
        "WeChat's API server (tests point it at a fake)",
        "an http(s) URL",
        "https://api.weixin.qq.com",
    )
    wechat_template_reminder: str | None = setting(
        "WECHAT_TEMPLATE_REMINDER",
        None,
        "template for pushes outside the 48-hour window (fields first, keyword1, keyword2, remark)",
        "a template id from the account's console",
        "tmpl-kvisa-reminder",
    )

    # --- broadcasts ----------------------------------------------------------------------------
    admins: frozenset[str] = setting(
        "KVISA_ADMINS",
        frozenset(),
        "who may broadcast: channel-qualified user ids, comma or space separated",
        "ids such as telegram:12345 (channels: " + ", ".join(ADMIN_CHANNELS) + ")",
        "telegram:12345,wechat:oAbC123",
    )
    admin_token: SecretStr | None = setting(
        "KVISA_ADMIN_TOKEN",
        None,
        "enables the HTTP admin API (Authorization: Bearer <token>)",
        f"a random string of at least {_ADMIN_TOKEN_LENGTH} characters",
        "3f9c2a7be41d08c6a5e2b7d1",
    )
    agency_name: str | None = setting(
        "KVISA_AGENCY_NAME",
        None,
        f"the sender named in broadcasts (default: {DEFAULT_AGENCY['en']})",
        "a name",
        "Shanghai K Agency",
    )
    agency_name_zh: str | None = setting(
        "KVISA_AGENCY_NAME_ZH",
        None,
        f"its Chinese name (default: KVISA_AGENCY_NAME, else {DEFAULT_AGENCY['zh']})",
        "a name",
        "上海K签代理",
    )

    # --- the agency's workspace (/agency/) ------------------------------------------------------
    office_hours: str = setting(
        "KVISA_OFFICE_HOURS",
        "09:00-18:00",
        "when the agency answers conversations handed to a person (/human): Shanghai time, "
        "on China's working days (holidays and make-up working days counted)",
        "HH:MM-HH:MM, opening before closing",
        "09:00-17:30",
    )
    handover_alert_minutes: int = Field(
        30,
        validation_alias="KVISA_HANDOVER_ALERT_MINUTES",
        description="a conversation handed to a person and unclaimed this many office-hours "
        "minutes is reported to the chat admins (KVISA_ADMINS)",
        examples=["30"],
        json_schema_extra={"expected": "a whole number of minutes from 1 to 1440"},
        ge=1,
        le=1440,
    )

    # --- retention ---------------------------------------------------------------------------
    retention_months: int = Field(
        18,
        validation_alias="KVISA_RETENTION_MONTHS",
        description="applicants silent this many months are told, then erased (kvisa purge)",
        examples=["18"],
        json_schema_extra={"expected": "a whole number of months from 1 to 120"},
        ge=1,
        le=120,
    )
    retention_notice_days: int = Field(
        30,
        validation_alias="KVISA_RETENTION_NOTICE_DAYS",
        description="days between telling an inactive applicant and erasing them",
        examples=["30"],
        json_schema_extra={"expected": "a whole number of days from 1 to 365"},
        ge=1,
        le=365,
    )
    link_attempts_per_hour: int = Field(
        60,
        validation_alias="KVISA_LINK_ATTEMPTS_PER_HOUR",
        description=(
            "link codes checked per hour in the whole deployment (past it every /link CODE "
            "waits for the next hour: a spray of guesses from many accounts gets nowhere)"
        ),
        examples=["60"],
        json_schema_extra={"expected": "a whole number from 1 to 10000"},
        ge=1,
        le=10000,
    )

    # --- pacing and reminders ------------------------------------------------------------------
    rate_telegram: float = Field(
        DEFAULT_RATES["telegram"],
        validation_alias="KVISA_RATE_TELEGRAM",
        description="messages a second the bot sends to Telegram (bulk yields to replies)",
        examples=["30"],
        json_schema_extra={"expected": "a positive number of messages a second"},
        gt=0,
        allow_inf_nan=False,
    )
    rate_wechat: float = Field(
        DEFAULT_RATES["wechat"],
        validation_alias="KVISA_RATE_WECHAT",
        description="messages a second the bot sends to WeChat (bulk yields to replies)",
        examples=["50"],
        json_schema_extra={"expected": "a positive number of messages a second"},
        gt=0,
        allow_inf_nan=False,
    )
    reminder_lease: float = Field(
        300.0,
        validation_alias="KVISA_REMINDER_LEASE",
        description="seconds one delivery may hold a reminder before another process retries it",
        examples=["300"],
        json_schema_extra={"expected": "a positive number of seconds"},
        gt=0,
        allow_inf_nan=False,
    )
    reminder_retry: float = Field(
        300.0,
        validation_alias="KVISA_REMINDER_RETRY",
        description="seconds before a job whose delivery did not confirm fires again",
        examples=["300"],
        json_schema_extra={"expected": "a positive number of seconds"},
        gt=0,
        allow_inf_nan=False,
    )
    reminder_leader_ttl: float = Field(
        15.0,
        validation_alias="KVISA_REMINDER_LEADER_TTL",
        description="seconds the scheduler's leader lock lives without renewal (Redis)",
        examples=["15"],
        json_schema_extra={"expected": "a positive number of seconds"},
        gt=0,
        allow_inf_nan=False,
    )
    reminder_drain_interval: float = Field(
        0.5,
        validation_alias="KVISA_REMINDER_DRAIN_INTERVAL",
        description="seconds between the leader's looks for reminders other processes changed",
        examples=["0.5"],
        json_schema_extra={"expected": "a positive number of seconds"},
        gt=0,
        allow_inf_nan=False,
    )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> Settings:
        """The settings in `env` only; without it, the process environment and then `env_file`
        (a variable set in the environment wins). SettingsError names every bad variable."""
        try:
            if env is not None:
                given: dict[str, Any] = dict(env)
                return _Given(**given)
            # mypy sees the __init__ pydantic derives from the fields, not BaseSettings' own.
            return cls(_env_file=env_file)  # type: ignore[call-arg]
        except (SourceError, OSError, UnicodeDecodeError) as exc:  # the .env file is unreadable
            source = str(env_file) if env_file else "environment"
            raise SettingsError([ConfigError(source, f"cannot be read ({exc})")]) from None

    # --- derived values ------------------------------------------------------------------------
    @property
    def storage_url(self) -> str:
        return self.redis_url or f"sqlite:///{self.data_dir / 'kvisa.db'}"

    @property
    def pseudonym_key(self) -> bytes:
        """The key of users' pseudonyms in the logs: KVISA_LOG_KEY, else one derived from a
        secret every replica of a deployment shares (never shown: a hash of it)."""
        if self.log_key is not None:
            return self.log_key.get_secret_value().encode()
        shared = self.telegram_token or self.wechat_app_secret
        seed = shared.get_secret_value() if shared is not None else ""
        return hashlib.sha256(b"kvisa log pseudonyms\0" + seed.encode()).digest()

    @property
    def rates(self) -> dict[str, float]:
        return {"telegram": self.rate_telegram, "wechat": self.rate_wechat}

    @property
    def agency(self) -> dict[str, str]:
        """The sender named in broadcasts, per language."""
        en = self.agency_name or DEFAULT_AGENCY["en"]
        zh = self.agency_name_zh or self.agency_name or DEFAULT_AGENCY["zh"]
        return {"en": en, "zh": zh}

    def effective(self) -> Iterator[tuple[str, str | None, bool]]:
        """(variable, value as shown, set?) for every setting; secrets masked, None if unset."""
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            yield str(field.validation_alias), _shown(value), name in self.model_fields_set

    # --- validation ----------------------------------------------------------------------------
    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        problems: list[ConfigError] = []
        if isinstance(data, Mapping):
            data, problems = _cleaned(data)
            problems += _companions(data)
        try:
            settings = handler(data)
        except ValidationError as exc:
            problems += [_problem(error) for error in exc.errors(include_url=False)]
            settings = None
        if problems:
            order = {variable: index for index, variable in enumerate(VARIABLES)}
            raise SettingsError(sorted(problems, key=lambda p: order.get(p.variable, len(order))))
        return settings

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and is_sentinel(value):
            try:
                parse_sentinel(value)
            except ValueError as exc:
                raise PydanticCustomError(
                    "setting",
                    "must be {form} ({why})",
                    {"form": SENTINEL_FORM, "why": str(exc), "got": without_password(value)},
                ) from None
        elif value is not None:
            url = _split(value)
            if url is None or url.scheme not in ("redis", "rediss", "unix"):
                raise ValueError("not a Redis URL")
            if url.scheme != "unix" and not url.hostname:
                raise ValueError("no host")
            if url.scheme == "unix" and not url.path:
                raise ValueError("no socket path")
            if url.scheme != "unix" and url.path.strip("/") and not url.path[1:].isdigit():
                raise ValueError("the database must be a number")
        return value

    @field_validator("flows_dir")
    @classmethod
    def _flows_dir(cls, value: Path | None) -> Path | None:
        try:
            if value is not None and not value.is_dir():
                raise PydanticCustomError("setting", "is not a directory")
        except OSError as exc:  # a name too long, a directory we may not read
            why = {"why": exc.strerror}
            raise PydanticCustomError("setting", "cannot be read ({why})", why) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if value not in LOG_LEVELS:
                raise ValueError("unknown level")
        return value

    @field_validator("office_hours")
    @classmethod
    def _office_hours(cls, value: str) -> str:
        match = _OFFICE_HOURS.fullmatch(value.replace(" ", ""))
        if match is None:
            raise ValueError("not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h2, m2) <= (h1, m1):
            raise ValueError("not two times of day, the opening first")
        return value

    @field_validator("http_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("not a host")
        return value

    @field_validator(
        "public_base_url", "telegram_api_base", "telegram_webhook_url", "wechat_api_base"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = _split(value)
            if url is None or url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError("not an http(s) URL")
            value = value.rstrip("/")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _telegram_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("not a bot token")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("not a webhook secret")
        return value

    @field_validator("wechat_encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not valid_aes_key(value.get_secret_value()):
            raise ValueError("not an EncodingAESKey")
        return value

    @field_validator("admins", mode="before")
    @classmethod
    def _admins(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        admins = set()
        for item in value.replace(",", " ").split():
            channel, sep, user_id = item.partition(":")
            if not sep or channel not in ADMIN_CHANNELS or not user_id:
                raise PydanticCustomError(
                    "setting",
                    "must be ids such as telegram:12345 (channels: {channels})",
                    {"channels": ", ".join(ADMIN_CHANNELS), "got": item},
                )
            admins.add(item)
        return frozenset(admins)

    @field_validator("admin_token", "log_key")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _ADMIN_TOKEN_LENGTH:
            raise PydanticCustomError(
                "setting",
                "must be at least {minimum} characters (a random string), not {length}",
                {"minimum": _ADMIN_TOKEN_LENGTH, "length": len(value.get_secret_value())},
            )
        return value


class _Given(Settings):
    """Settings from a mapping given in code (tests, benchmarks): no environment, no .env."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    def __repr_name__(self) -> str:
        return "Settings"


FIELDS: Mapping[str, FieldInfo] = {
    str(field.validation_alias): field for field in Settings.model_fields.values()
}
VARIABLES = tuple(FIELDS)


def valid_aes_key(key: str) -> bool:
    """WeChat's EncodingAESKey: 43 base64 characters that decode to a 32-byte key."""
    try:
        return len(key) == 43 and len(base64.b64decode(key + "=", validate=True)) == 32
    except binascii.Error:
        return False


def example(variable: str) -> str:
    """A good value of `variable`, for error lines and .env.example."""
    examples = FIELDS[variable].examples
    return str(examples[0]) if examples else ""


def _expected(variable: str) -> str:
    extra = FIELDS[variable].json_schema_extra
    return str(extra.get("expected", "")) if isinstance(extra, dict) else ""


def _secret(variable: str) -> bool:
    annotation = FIELDS[variable].annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _problem(error: ErrorDetails) -> ConfigError:
    """One pydantic error as our line: the variable, what is wrong, an example."""
    variable = str(error["loc"][0]) if error["loc"] else "settings"
    if variable not in FIELDS:  # pragma: no cover - every error is about one field
        return ConfigError(variable, error["msg"])
    # Our own validators say exactly what is wrong; pydantic's own errors get the field's words.
    own = error["type"] == "setting"
    problem = error["msg"] if own else f"must be {_expected(variable)}"
    if not _secret(variable):
        got = error.get("ctx", {}).get("got", error["input"])
        problem += f", got {_quoted(without_password(got) if isinstance(got, str) else got)}"
    return ConfigError(variable, f"{problem}; for example {variable}={example(variable)}")


def _cleaned(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConfigError]]:
    """Surrounding blanks dropped, an empty value unset (as in most .env readers), and values
    with control characters or undecodable bytes set aside as problems."""
    cleaned, problems = {}, []
    for variable, value in raw.items():
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
            if _CONTROL.search(value) and variable in FIELDS:
                problem = "contains control characters or bytes that are not UTF-8"
                if not _secret(variable):
                    problem += f", got {_quoted(value)}"
                problems.append(
                    ConfigError(variable, f"{problem}; for example {variable}={example(variable)}")
                )
                continue
        cleaned[variable] = value
    return cleaned, problems


def _companions(raw: Mapping[str, Any]) -> list[ConfigError]:
    """Settings that only make sense together, by which variables are set."""
    problems = []
    if any(variable in raw for variable in WECHAT):
        for variable in WECHAT:
            if variable not in raw:
                problems.append(
                    _missing(
                        variable, "WeChat needs WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET"
                    )
                )
        if "KVISA_PUBLIC_URL" not in raw:
            problems.append(
                _missing("KVISA_PUBLIC_URL", "WeChat sends calendar files as links to this server")
            )
    if "TELEGRAM_WEBHOOK_URL" in raw and "TELEGRAM_WEBHOOK_SECRET" not in raw:
        problems.append(_missing("TELEGRAM_WEBHOOK_SECRET", "required with TELEGRAM_WEBHOOK_URL"))
    return problems


def _missing(variable: str, why: str) -> ConfigError:
    return ConfigError(variable, f"is not set: {why}; for example {variable}={example(variable)}")


def _split(value: str) -> SplitResult | None:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return url


def _quoted(value: Any, limit: int = 60) -> str:
    """A value in an error line: quoted and escaped (one line), cut when long."""
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _shown(value: Any) -> str | None:
    """A setting as `kvisa config check` prints it: secrets masked, a Redis password too."""
    if value is None:
        return None
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return "****" + secret[-2:] if len(secret) >= 16 else "****"
    if isinstance(value, frozenset):
        return ",".join(sorted(value)) or None
    return without_password(str(value))


def without_password(text: str) -> str:
    """A URL as it may be printed: its password (a Redis URL's, say) masked."""
    if "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    netloc, slash, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    user, colon, _ = credentials.partition(":")
    if not at or not colon:  # no credentials, or a user name alone
        return text
    return f"{scheme}://{user}:****@{hosts}{slash}{path}"
