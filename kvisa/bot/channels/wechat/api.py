"""WeChat's HTTP API through wechatpy's synchronous client, run in worker threads.

The client never fetches or caches a token itself: each call gets the shared one from
AccessTokens (see tokens.py), and a call WeChat refuses for its token is retried once with a
fresh one. wechatpy's and requests' errors become the bot's own here, and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from wechatpy.client import WeChatClient  # type: ignore[import-untyped]
from wechatpy.client.api.qrcode import WeChatQRCode  # type: ignore[import-untyped]
from wechatpy.exceptions import WeChatClientException  # type: ignore[import-untyped]

from kvisa import metrics
from kvisa.bot.channels.wechat.tokens import FETCH_TIMEOUT, AccessTokens
from kvisa.bot.messages import Attachment
from kvisa.errors import Blocked, ChannelError, RateLimited
from kvisa.storage.base import Storage

T = TypeVar("T")

TOKEN_REFUSED = frozenset({40001, 40014, 42001})  # invalid / malformed / expired access token
NOT_FOLLOWING = frozenset({43004, 40003})  # the user unfollowed / is no user of this account
# 45015: the user's last message is over 48 hours old; 45047: the customer-service messages
# allowed after it are used up. A template message may still reach them.
OUTSIDE_WINDOW = frozenset({45015, 45047})
# 45009 daily quota, 45011 per-minute quota, -1 "system busy, try again later".
RATE_LIMITS: dict[int, float] = {45009: 3600.0, 45011: 60.0, -1: 5.0}
API_TIMEOUT = 10.0
API_BASE = "https://api.weixin.qq.com"
SHOW_BASE = "https://mp.weixin.qq.com"  # where a QR code's picture is fetched by its ticket


class OutsideWindow(ChannelError):
    """WeChat accepts no customer-service message for this user now (48-hour rule or quota)."""


def translate(exc: WeChatClientException | requests.RequestException) -> ChannelError:
    """A wechatpy or requests error as the bot's own."""
    if isinstance(exc, requests.RequestException):
        # requests puts the URL in its messages, and ours carry the access token: name the
        # path only (and callers raise this `from None`, so the original is not logged).
        url = getattr(exc.request, "path_url", "") or ""
        return ChannelError(
            f"wechat: {type(exc).__name__} calling {url.split('?')[0] or 'the API'}"
        )
    code = exc.errcode
    message = f"wechat {code}: {exc.errmsg}"
    if code in NOT_FOLLOWING:
        return Blocked(message)
    if code in OUTSIDE_WINDOW:
        return OutsideWindow(message)
    if code in RATE_LIMITS:
        metrics.rate_limited.labels("wechat").inc()
        return RateLimited(RATE_LIMITS[code], message)
    return ChannelError(message)


class ThreadClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client against `api_base`, using the token handed to each call.

    wechatpy's endpoints (`client.message`, `client.media`, ...) build each call and hand it to
    the client's public `get` and `post`; here those send it on our own requests session (the
    one wechatpy makes for itself is never used, and it offers no public way to close it), so
    `close` closes every connection the client opened. What wechatpy does with the answer is
    done here too: JSON decoded, an `errcode` other than 0 raised as WeChatClientException.
    """

    def __init__(self, app_id: str, secret: str, api_base: str) -> None:
        super().__init__(app_id, secret, timeout=API_TIMEOUT, auto_retry=False)
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.http = requests.Session()
        self.current = threading.local()  # the token of the call running in this thread

    @property
    def access_token(self) -> str:
        token: str | None = getattr(self.current, "token", None)
        if token is None:
            raise RuntimeError("a WeChat API call ran without a token")
        return token

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.send("POST", url, **kwargs)

    def send(
        self,
        method: str,
        url: str,
        *,
        with_token: bool = True,
        api_base_url: str | None = None,
        params: dict[str, Any] | None = None,
        data: Any = None,
        result_processor: Callable[[Any], Any] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call as wechatpy's client makes it (JSON bodies as UTF-8, the access token
        as a query parameter), on our session."""
        if not url.startswith(("http://", "https://")):
            url = f"{api_base_url or self.API_BASE_URL}{url}"
        params = dict(params or {})
        if with_token:
            params.setdefault("access_token", self.access_token)
        if isinstance(data, dict):
            data = json.dumps(data, ensure_ascii=False).encode("utf-8")
        response = self.http.request(
            method, url, params=params, data=data, timeout=timeout or self.timeout, **kwargs
        )
        response.raise_for_status()
        result = response.json()  # not JSON: requests.JSONDecodeError, a RequestException
        if isinstance(result, dict) and int(result.get("errcode") or 0) != 0:
            raise WeChatClientException(
                int(result["errcode"]),
                result.get("errmsg", ""),
                client=self,
                request=response.request,
                response=response,
            )
        return result_processor(result) if result_processor else result

    def fetch_access_token(self) -> dict[str, Any]:
        result = self.send(
            "GET",
            "token",
            with_token=False,
            timeout=FETCH_TIMEOUT,
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        if not isinstance(result, dict) or not result.get("access_token"):
            raise ChannelError("wechat: the token endpoint answered without a token")
        return result

    def call(self, token: str, action: Callable[[WeChatClient], T]) -> T:
        self.current.token = token
        try:
            return action(self)
        finally:
            self.current.token = None


class WeChatApi:
    """The calls the channel makes, as coroutines; each runs in a worker thread."""

    def __init__(self, storage: Storage, app_id: str, secret: str, api_base: str) -> None:
        self.client = ThreadClient(app_id, secret, api_base)
        # QR pictures come from mp.weixin.qq.com, not the API's host (a fake serves both).
        self.show_base = SHOW_BASE if api_base == API_BASE else api_base
        self.tokens = AccessTokens(storage, app_id, self._fetch_token)

    async def _fetch_token(self) -> tuple[str, float]:
        try:
            result = await asyncio.to_thread(self.client.fetch_access_token)
        except WeChatClientException as exc:
            raise translate(exc) from exc
        except requests.RequestException as exc:
            raise translate(exc) from None
        return str(result["access_token"]), float(result.get("expires_in", 7200))

    async def _call(self, action: Callable[[WeChatClient], T]) -> T:
        token = await self.tokens.get()
        for attempt in (1, 2):
            try:
                return await asyncio.to_thread(self.client.call, token, action)
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_REFUSED and attempt == 1:
                    metrics.retries.labels("wechat").inc()
                    token = await self.tokens.refresh(refused=token)
                    continue
                raise translate(exc) from exc
            except requests.RequestException as exc:
                raise translate(exc) from None
        raise AssertionError("unreachable")

    async def send_text(self, openid: str, text: str) -> None:
        await self._call(lambda c: c.message.send_text(openid, text))

    async def send_image(self, openid: str, media_id: str) -> None:
        await self._call(lambda c: c.message.send_image(openid, media_id))

    async def upload_image(self, picture: Attachment) -> str:
        """Upload as temporary media (kept 3 days by WeChat); its media_id."""
        media = (picture.filename, picture.data, picture.content_type)
        result = await self._call(lambda c: c.media.upload("image", media))
        return str(result["media_id"])

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, dict[str, str]]
    ) -> None:
        await self._call(lambda c: c.message.send_template(openid, template_id, data))

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self._call(lambda c: c.menu.create(menu))

    async def link_qr(self, scene: str, seconds: int) -> bytes:
        """A temporary QR code of the account carrying `scene` (scanning it follows the
        account and sends the scene, as a park's code does), as PNG bytes. ChannelError when
        the account may not create parametric codes (unverified accounts)."""
        request = {
            "expire_seconds": seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
        ticket = await self._call(lambda c: c.qrcode.create(request))
        url = WeChatQRCode.get_url(str(ticket["ticket"]))
        if self.show_base != SHOW_BASE:  # a test's fake answers the picture too
            url = url.replace(SHOW_BASE, self.show_base, 1)

        def fetch() -> bytes:
            response = self.client.http.get(url, timeout=API_TIMEOUT)
            response.raise_for_status()
            return bytes(response.content)

        try:
            return await asyncio.to_thread(fetch)
        except requests.RequestException as exc:
            raise translate(exc) from None

    def close(self) -> None:
        self.client.http.close()
