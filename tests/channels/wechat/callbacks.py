"""What WeChat's servers send to our /wechat, built the way they build it: signed, and in safe
mode encrypted with wechatpy's own crypto; passive replies are opened the same way."""

from __future__ import annotations

import itertools
import re
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
import xmltodict  # type: ignore[import-untyped]
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.utils import WeChatSigner  # type: ignore[import-untyped]

from kvisa.bot.clock import Clock, SystemClock

TOKEN = "kvisa-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, like the console's
ACCOUNT = "gh_kvisa_test"
NUMBERED = re.compile(r"^(\d+)\. (.+)$")

_msg_ids = itertools.count(6_000_000_000_000_000_001)
_times = itertools.count(1_780_000_000)


def sign(*values: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*values)
    return str(signer.signature)


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(
    openid: str, msg_type: str, fields: dict[str, str | int], create_time: int | None = None
) -> str:
    body = "".join(f"<{k}>{cdata(v) if isinstance(v, str) else v}</{k}>" for k, v in fields.items())
    return (
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
        f"<CreateTime>{create_time or next(_times)}</CreateTime>"
        f"<MsgType>{cdata(msg_type)}</MsgType>"
        f"{body}</xml>"
    )


@dataclass
class Reply:
    """Our answer to one callback, opened as WeChat opens it."""

    status: int
    body: str
    fields: dict[str, Any] | None = None  # the passive reply's XML fields; None for "success"

    @property
    def text(self) -> str:
        assert self.fields is not None and self.fields["MsgType"] == "text", (
            f"no text reply: {self.body!r}"
        )
        return str(self.fields["Content"])

    @property
    def options(self) -> dict[str, str]:
        """The last list of numbered options: label -> number."""
        block: dict[str, str] = {}
        for line in self.text.splitlines():
            match = NUMBERED.match(line)
            if match:
                block[match.group(2)] = match.group(1)
            elif block and line.strip():
                block = {}  # a later paragraph: the list above it was not the last one
        return block

    def number_of(self, label: str) -> str:
        options = self.options
        assert label in options, f"{label!r} is not among the options {list(options)}"
        return options[label]


class WeChatServers:
    """Posts callbacks to the bot's /wechat and opens its replies."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        app_id: str,
        safe_mode: bool,
        clock: Clock | None = None,
    ) -> None:
        self.http, self.url, self.app_id = http, url, app_id
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, app_id) if safe_mode else None
        self.clock = clock or SystemClock()  # the bot's: WeChat's clock agrees with it

    def query(
        self, encrypted: str | None = None, token: str = TOKEN, skew: int = 0
    ) -> dict[str, str]:
        """A fresh signed query string: the time now (`skew` seconds off), a new nonce."""
        timestamp = str(int(self.clock.now().timestamp()) + skew)
        nonce = secrets.token_hex(5)
        query = {
            "signature": sign(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": "o-placeholder",
        }
        if encrypted is not None:
            query |= {
                "encrypt_type": "aes",
                "msg_signature": sign(token, timestamp, nonce, encrypted),
            }
        return query

    def envelope(self, xml: str, skew: int = 0) -> tuple[bytes, dict[str, str]]:
        """The body and query string WeChat would send for `xml`."""
        if self.crypto is None:
            return xml.encode(), self.query(skew=skew)
        sealed = xmltodict.parse(self.crypto.encrypt_message(xml, secrets.token_hex(5)))["xml"]
        encrypted = sealed["Encrypt"]
        body = (
            f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
            f"<Encrypt>{cdata(encrypted)}</Encrypt></xml>"
        )
        return body.encode(), self.query(encrypted, skew=skew)

    async def post(self, xml: str) -> Reply:
        body, query = self.envelope(xml)
        return await self.post_raw(body, query)

    async def post_raw(self, body: bytes, query: dict[str, str]) -> Reply:
        async with self.http.post(
            self.url, params=query, data=body, headers={"Content-Type": "text/xml"}
        ) as response:
            text = await response.text()
            return Reply(response.status, text, self.open(text) if response.status == 200 else None)

    def open(self, body: str) -> dict[str, Any] | None:
        if body in ("success", ""):
            return None
        if self.crypto is not None:
            sealed = xmltodict.parse(body)["xml"]
            body = self.crypto.decrypt_message(
                body, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
            )
        fields: dict[str, Any] = xmltodict.parse(body)["xml"]
        return fields


class WeChatUser:
    """One follower of the account, writing to it."""

    def __init__(self, servers: WeChatServers, openid: str) -> None:
        self.servers, self.openid = servers, openid
        self.last_xml = ""

    async def _post(self, xml: str) -> Reply:
        self.last_xml = xml
        return await self.servers.post(xml)

    async def say(self, text: str) -> Reply:
        return await self._post(
            message_xml(self.openid, "text", {"Content": text, "MsgId": next(_msg_ids)})
        )

    async def event(self, event: str, key: str | None = None) -> Reply:
        fields: dict[str, str | int] = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        return await self._post(message_xml(self.openid, "event", fields))

    async def voice(self) -> Reply:
        return await self._post(
            message_xml(
                self.openid,
                "voice",
                {"MediaId": "media-voice-1", "Format": "amr", "MsgId": next(_msg_ids)},
            )
        )

    async def retry(self, xml: str | None = None) -> Reply:
        """WeChat's retry: the very same message (the last one by default) again, under a
        fresh signature."""
        return await self.servers.post(xml or self.last_xml)
