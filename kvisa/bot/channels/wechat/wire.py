"""WeChat's callback protocol: signatures, safe-mode encryption, parsing and passive replies.

Every request WeChat sends to /wechat carries `signature` = sha1(sorted token, timestamp,
nonce); in safe mode the body is an envelope whose `Encrypt` is AES-encrypted and signed by
`msg_signature` = sha1(sorted token, timestamp, nonce, Encrypt). wechatpy does the hashing,
the AES and the message model; every XML that comes from outside (the envelope, the message)
is read by defusedxml first. The timestamp and nonce are signed in both modes, so a request
whose timestamp is more than REPLAY_WINDOW from our clock is refused (Stale), and the channel
remembers each signed pair for as long as it could pass that check (a replay). This module
only decides what a failure means: Forged (403) or Malformed (400).
"""

from __future__ import annotations

import binascii
import hmac
import re
import struct
from collections.abc import Mapping
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml import ElementTree as DefusedElementTree
from wechatpy import parse_message  # type: ignore[import-untyped]
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.events import BaseEvent  # type: ignore[import-untyped]
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException  # type: ignore[import-untyped]
from wechatpy.messages import BaseMessage, TextMessage, UnknownMessage  # type: ignore[import-untyped]
from wechatpy.utils import WeChatSigner  # type: ignore[import-untyped]

from kvisa.bot.channels.wechat.convert import xml_text

# OpenIDs and account ids are short URL-safe strings; anything else is not from WeChat.
ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUCCESS = "success"  # the reply that tells WeChat "received, nothing to show"
REPLAY_WINDOW = 300  # seconds a signed timestamp may be from our clock, either way
TEXT_FIELDS = ("Content", "EventKey", "Event", "MsgType")  # what convert reads as text
TEXT_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
    "<FromUserName><![CDATA[{source}]]></FromUserName>\n<ToUserName><![CDATA[{target}]]></ToUserName>\n"
    "<CreateTime>{time}</CreateTime>\n</xml>"
)


class Rejected(Exception):
    """A request that must not be processed; `status` is the HTTP answer."""

    status = 400


class Forged(Rejected):
    status = 403


class Stale(Forged):
    """A signed timestamp too far from our clock: an old request sent again, or a wrong clock
    (ours or the sender's)."""


class Malformed(Rejected):
    status = 400


class DoctypeRefused(Malformed):
    """XML with a DOCTYPE, the door to entity bombs and external entities; WeChat sends none."""


def sign(*values: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*values)
    return str(signer.signature)


def check_signature(token: str, query: Mapping[str, str]) -> None:
    """Raise Forged unless `signature` matches token, timestamp and nonce."""
    expected = sign(token, query.get("timestamp", ""), query.get("nonce", ""))
    if not hmac.compare_digest(expected, query.get("signature", "")):
        raise Forged("bad signature")


def check_fresh(query: Mapping[str, str], now: float, window: int = REPLAY_WINDOW) -> None:
    """Raise Stale unless the (signed) `timestamp` is within `window` seconds of `now`."""
    stamp = query.get("timestamp", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise Stale("no timestamp")
    skew = int(stamp) - int(now)
    if abs(skew) > window:
        where = "ahead of" if skew > 0 else "behind"
        raise Stale(f"timestamp {abs(skew)} s {where} our clock (at most {window} s)")


def replay_key(query: Mapping[str, str]) -> str:
    """What a replay has in common with the request it copies: the signed timestamp and nonce,
    named by their signature (checked already; a fixed length whatever the nonce)."""
    return query.get("signature", "")


def open_body(
    body: bytes, query: Mapping[str, str], token: str, crypto: WeChatCrypto | None
) -> str:
    """The message XML: the body itself in plain mode, the decrypted envelope in safe mode."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("body is not UTF-8") from exc
    if crypto is None:
        return text
    # Safe mode accepts encrypted messages only: a plain body is signed by nothing but the
    # query string, so anyone who saw one signed URL could post anything with it.
    if query.get("encrypt_type") != "aes":
        raise Forged("safe mode expects an encrypted message")
    encrypted = envelope_encrypt(text)
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if not hmac.compare_digest(
        sign(token, timestamp, nonce, encrypted), query.get("msg_signature", "")
    ):
        raise Forged("bad msg_signature")
    try:
        return str(
            crypto.decrypt_message({"Encrypt": encrypted}, query["msg_signature"], timestamp, nonce)
        )
    except (InvalidAppIdException, InvalidSignatureException) as exc:
        raise Forged("encrypted for another account") from exc
    except (ValueError, TypeError, IndexError, struct.error, binascii.Error) as exc:
        raise Malformed("cannot decrypt") from exc


class UnknownEvent(BaseEvent):  # type: ignore[misc]
    """An event wechatpy has no class of its own for (parse_message makes it an
    UnknownMessage, like a message of an unknown type): kept an event, so it is answered with
    nothing rather than with "please type". Its type and event read "unknown", as wechatpy's
    UnknownMessage reads, so its retry key is what it was."""

    type = "unknown"
    event = "unknown"


def xml_root(text: str) -> Element:
    """The `<xml>` root of XML from outside (the safe-mode envelope, the message), read by
    defusedxml: a DOCTYPE, and with it every entity declaration (a billion laughs) and external
    entity, stops the parser where it stands, before anything is expanded or fetched; WeChat
    sends none. Malformed for that, for what is not XML, and for another root (one in an XML
    namespace too)."""
    try:
        root: Element = DefusedElementTree.fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:  # before ValueError: it is one
        raise DoctypeRefused("DOCTYPE refused") from exc
    except (ParseError, ValueError) as exc:
        raise Malformed("not XML") from exc
    if root.tag != "xml":
        raise Malformed("not a WeChat <xml> document")
    return root


def envelope_encrypt(text: str) -> str:
    """The `Encrypt` text of a safe-mode envelope `<xml>...<Encrypt>...</Encrypt></xml>`.

    What xmltodict refused is refused here too (see xml_root), and an Encrypt that is
    missing, repeated, empty, or has attributes or elements inside; a root in an XML
    namespace, which xmltodict let through, is refused as well.
    """
    root = xml_root(text)
    found = root.findall("Encrypt")
    if len(found) != 1 or len(found[0]) or found[0].attrib:
        raise Malformed("no Encrypt element")
    encrypted = (found[0].text or "").strip()  # xmltodict stripped it too
    if not encrypted:
        raise Malformed("no Encrypt element")
    return encrypted


def text_message(root: Element) -> BaseMessage | None:
    """A text message (most of what users send) as wechatpy's TextMessage, built from the
    fields already read by xml_root, as parse_message would build it; None for anything else
    (events, other types, XML that is not one level of plain fields), which parse_message reads.

    parse_message reads the XML again, with xmltodict: after the turn, the largest cost of a
    message that is ours. Like xmltodict, values are stripped of surrounding blanks and an
    empty one is None (a test compares the two)."""
    if root.attrib or (root.text or "").strip():
        return None
    data: dict[str, str | None] = {}
    for element in root:
        if (
            len(element)
            or element.attrib
            or element.tag in data
            or element.tag.startswith("{")  # in a namespace: xmltodict names it otherwise
            or (element.tail or "").strip()
        ):
            return None
        data[element.tag] = (element.text or "").strip() or None
    message_type = data.get("MsgType")
    if not (isinstance(message_type, str) and message_type.lower() == "text"):
        return None
    return TextMessage(data)


def check_text_fields(root: Element) -> None:
    """Malformed unless each of TEXT_FIELDS is at most once, in no namespace and with nothing
    but text inside: what xmltodict would read as a dict or a list where convert expects
    text."""
    seen: set[str] = set()
    for element in root:
        name = element.tag.rpartition("}")[2]
        if name not in TEXT_FIELDS:
            continue
        if name in seen or element.tag != name or len(element) or element.attrib:
            raise Malformed("nested XML where text belongs")
        seen.add(name)


def parse(text: str) -> BaseMessage:
    """A wechatpy message whose fields have been checked, so reading them cannot fail later."""
    root = xml_root(text)
    message = text_message(root)
    try:
        if message is None:
            check_text_fields(root)
            message = parse_message(text)  # a second, safe reading: root showed no DOCTYPE
        checks = (message.source, message.target, message.time, message.id, message.type)
    except (ExpatError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Malformed("not a WeChat message") from exc
    source, target, created = checks[0], checks[1], checks[2]
    if not (isinstance(source, str) and ACCOUNT_ID.fullmatch(source)):
        raise Malformed("bad FromUserName")
    if not (isinstance(target, str) and ACCOUNT_ID.fullmatch(target)):
        raise Malformed("bad ToUserName")
    if not isinstance(created, int):
        raise Malformed("no CreateTime")
    if not isinstance(checks[3], int):  # wechatpy hands an element with elements inside as is
        raise Malformed("bad MsgId")
    if (
        isinstance(message, UnknownMessage)
        and (root.findtext("MsgType") or "").strip().lower() == "event"
    ):
        # Its fields as XML gives them (as text), for wechatpy's fields to read as they did.
        fields = {"ToUserName": target, "FromUserName": source, "CreateTime": str(created)}
        return UnknownEvent(fields | {"MsgType": "event", "MsgId": str(checks[3])})
    return message


def text_reply(message: BaseMessage, text: str, timestamp: int) -> str:
    """The passive reply XML answering `message` with one text: what wechatpy's TextReply
    renders, byte for byte (a test compares them), from a template at a tenth of the cost.
    The account ids were checked by `parse` and `xml_text` makes the text safe in CDATA."""
    return TEXT_REPLY.format(
        source=message.target, target=message.source, time=int(timestamp), content=xml_text(text)
    )


def seal(reply: str, query: Mapping[str, str], crypto: WeChatCrypto | None, timestamp: int) -> str:
    """The reply as sent back: as is in plain mode, in an encrypted envelope in safe mode."""
    if crypto is None or reply == SUCCESS:
        return reply
    return str(crypto.encrypt_message(reply, query.get("nonce", ""), str(timestamp)))
