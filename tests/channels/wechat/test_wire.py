"""The callback protocol's failures: whatever arrives, the answer is a message, 400 or 403,
never an exception escaping to aiohttp (a 500 that WeChat would retry)."""

from __future__ import annotations

import contextlib
import datetime as dt
from xml.parsers.expat import ExpatError
from xml.sax.saxutils import escape

import pytest
import xmltodict  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from wechatpy import parse_message  # type: ignore[import-untyped]
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.replies import TextReply  # type: ignore[import-untyped]

from kvisa.bot.channels.wechat import convert, wire
from tests.channels.wechat.callbacks import AES_KEY, TOKEN, message_xml, sign
from tests.channels.wechat.fake_api import APP_ID

CRYPTO = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
AT = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
TAGS = st.sampled_from(
    [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Content",
        "MsgId",
        "Event",
        "EventKey",
        "Encrypt",
        "xml",
    ]
)
VALUES = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
    st.integers().map(str),
    st.sampled_from(["text", "event", "voice", "subscribe", "CLICK", "SCAN", "o_x", "gh_y"]),
)


BODY_TAGS = st.sampled_from(
    ["Content", "MsgId", "Event", "EventKey", "Recognition", "MediaId", "Ticket"]
)


@st.composite
def wechat_like_xml(draw: st.DrawFn, tags: st.SearchStrategy[str] = TAGS) -> str:
    fields = draw(st.lists(st.tuples(tags, VALUES, st.booleans()), max_size=8))
    body = "".join(
        f"<{tag}><b>{escape(value)}</b></{tag}>"
        if nested
        else f"<{tag}><![CDATA[{value.replace(']]>', '')}]]></{tag}>"
        for tag, value, nested in fields
    )
    return f"<xml>{body}</xml>"


@st.composite
def messages_with_random_fields(draw: st.DrawFn) -> str:
    """A valid sender, account and time, any type, and random further fields."""
    msg_type = draw(
        st.sampled_from(["text", "event", "voice", "image", "location", "link", "unknown_type"])
    )
    extra = draw(wechat_like_xml(BODY_TAGS))[len("<xml>") : -len("</xml>")]
    return (
        f"<xml><ToUserName>gh_y</ToUserName><FromUserName>o_x</FromUserName>"
        f"<CreateTime>{draw(st.integers(0, 2**40))}</CreateTime>"
        f"<MsgType>{msg_type}</MsgType>{extra}</xml>"
    )


def parse_or_reject(text: str) -> None:
    try:
        message = wire.parse(text)
    except wire.Malformed:
        return
    # What parse lets through can be read, converted and answered without surprises.
    convert.event_of(message, AT)
    convert.retry_key(message)
    wire.text_reply(message, "ok", 0)


@given(st.text())
def test_any_text_is_parsed_or_rejected_as_malformed(text: str) -> None:
    parse_or_reject(text)


@given(wechat_like_xml())
def test_any_wechat_like_xml_is_parsed_or_rejected_as_malformed(xml: str) -> None:
    parse_or_reject(xml)


@given(messages_with_random_fields())
def test_any_message_with_random_fields_is_parsed_or_rejected_as_malformed(xml: str) -> None:
    parse_or_reject(xml)


@given(st.binary(max_size=300), st.text(max_size=60))
def test_any_safe_mode_body_is_opened_or_rejected(body: bytes, encrypted: str) -> None:
    query = {
        "timestamp": "1",
        "nonce": "n",
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, "1", "n", encrypted),
    }
    for candidate in (body, f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode()):
        with contextlib.suppress(wire.Rejected):
            wire.open_body(candidate, query, TOKEN, CRYPTO)


def test_a_message_encrypted_for_another_account_is_forged() -> None:
    other = WeChatCrypto(TOKEN, AES_KEY, "wx-another-account")
    sealed = other.encrypt_message(
        message_xml("o_x", "text", {"Content": "hi", "MsgId": 1}), "n", "1"
    )
    encrypted = sealed.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    query = {
        "timestamp": "1",
        "nonce": "n",
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, "1", "n", encrypted),
    }

    with pytest.raises(wire.Forged):
        wire.open_body(f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode(), query, TOKEN, CRYPTO)


def encrypt_as_xmltodict_read_it(text: str) -> str | None:
    """The envelope's Encrypt as the channel read it before ElementTree: None when refused."""
    try:
        root = xmltodict.parse(text).get("xml")
    except (ExpatError, ValueError, AttributeError):
        return None
    value = root.get("Encrypt") if isinstance(root, dict) else None
    return value if isinstance(value, str) and value else None


def envelope_encrypt_or_none(text: str) -> str | None:
    try:
        return wire.envelope_encrypt(text)
    except wire.Malformed:
        return None


@given(
    st.one_of(
        wechat_like_xml(),
        wechat_like_xml().map(lambda xml: f"<?xml version='1.0'?>\n{xml}  "),
        st.text(),
    )
)
def test_the_envelope_is_read_as_xmltodict_read_it(text: str) -> None:
    assert envelope_encrypt_or_none(text) == encrypt_as_xmltodict_read_it(text)


@pytest.mark.parametrize(
    "envelope",
    [
        "<xml><Encrypt>abc</Encrypt><Encrypt>def</Encrypt></xml>",
        '<xml><Encrypt kind="x">abc</Encrypt></xml>',
        "<xml><Encrypt><b>abc</b></Encrypt></xml>",
        "<xml><Encrypt>  </Encrypt></xml>",
        "<envelope><Encrypt>abc</Encrypt></envelope>",
        '<xml xmlns="urn:x"><Encrypt>abc</Encrypt></xml>',
        "<xml><Encrypt>abc</Encrypt>",
    ],
    ids=["twice", "attribute", "nested", "blank", "other-root", "namespace", "truncated"],
)
def test_an_envelope_wechat_would_not_send_is_malformed(envelope: str) -> None:
    with pytest.raises(wire.Malformed):
        wire.envelope_encrypt(envelope)


def test_the_encrypt_of_an_envelope_is_read_without_surrounding_blanks() -> None:
    assert (
        wire.envelope_encrypt(
            "<xml>\n <ToUserName>gh_x</ToUserName>\n <Encrypt>\n abc=\n </Encrypt>\n</xml>"
        )
        == "abc="
    )


@given(
    st.text(),
    st.from_regex(wire.ACCOUNT_ID, fullmatch=True),
    st.from_regex(wire.ACCOUNT_ID, fullmatch=True),
    st.integers(0, 2**40),
)
def test_the_passive_reply_is_what_wechatpy_renders(
    text: str, user: str, account: str, timestamp: int
) -> None:
    message = wire.parse(
        f"<xml><ToUserName>{account}</ToUserName><FromUserName>{user}</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>"
    )
    expected = TextReply(
        source=account, target=user, content=convert.xml_text(text), time=timestamp
    ).render()

    assert wire.text_reply(message, text, timestamp) == expected


@st.composite
def text_messages(draw: st.DrawFn) -> str:
    """Text messages as WeChat sends them and variations around them: blanks, CDATA or not,
    empty fields, a declaration, comments, a field twice, nested elements, attributes."""
    content = draw(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20))
    fields = [
        ("ToUserName", "gh_y"),
        ("FromUserName", "o_x"),
        ("CreateTime", str(draw(st.integers(0, 2**40)))),
        ("MsgType", draw(st.sampled_from(["text", "TEXT", " text ", "event", ""]))),
        ("Content", content),
        ("MsgId", str(draw(st.integers(0, 2**63)))),
    ]
    fields += draw(st.lists(st.tuples(BODY_TAGS, VALUES), max_size=2))
    fields = draw(st.permutations(fields))
    styles = ["cdata", "escaped", "blank", "empty", "comment"] + draw(
        st.sampled_from([[], ["nested", "attribute"]])
    )
    pieces = []
    for tag, value in fields:
        style = draw(st.sampled_from(styles))
        pieces.append(
            {
                "cdata": f"<{tag}><![CDATA[{value.replace(']]>', '')}]]></{tag}>",
                "escaped": f"<{tag}>{escape(value)}</{tag}>",
                "blank": f"<{tag}>\n  {escape(value)}  \n</{tag}>",
                "empty": f"<{tag}></{tag}>",
                "nested": f"<{tag}><b>{escape(value)}</b></{tag}>",
                "attribute": f'<{tag} kind="x">{escape(value)}</{tag}>',
                "comment": f"<{tag}>{escape(value)}<!-- c -->!</{tag}>",
            }[style]
        )
    declaration = draw(st.sampled_from(["", "<?xml version='1.0' encoding='utf-8'?>\n"]))
    separator = draw(st.sampled_from(["", "\n", " "]))
    return f"{declaration}<xml>{separator}{separator.join(pieces)}{separator}</xml>"


@given(st.one_of(text_messages(), messages_with_random_fields(), wechat_like_xml()))
def test_a_text_message_is_read_as_wechatpy_reads_it(text: str) -> None:
    """The fast path for text messages gives what wechatpy's parse_message gives, or steps aside."""
    fast = wire.text_message(wire.xml_root(text))
    if fast is None:
        return
    slow = parse_message(text)
    assert type(fast) is type(slow)
    assert fields_of(fast) == fields_of(slow)


FIELDS = ("source", "target", "time", "create_time", "id", "type", "content")


def fields_of(message: object) -> list[object]:
    """Every field of a text message, or the error reading it raises."""
    read = []
    for name in FIELDS:
        try:
            read.append(getattr(message, name, None))
        except (ValueError, TypeError) as exc:
            read.append(type(exc))
    return read


def read_as_before(text: str) -> list[object] | None:
    """What the channel read of a message before defusedxml: parse_message's message with its
    sender, account and time checked, and the fields convert reads as text found as text in
    xmltodict's reading; None where it refused the message."""
    try:
        data = xmltodict.parse(text)["xml"]
        message = parse_message(text)
        source, target, created, msg_id, _ = (
            message.source,
            message.target,
            message.time,
            message.id,
            message.type,
        )
    except (ExpatError, KeyError, TypeError, AttributeError, ValueError):
        return None
    if not all(
        isinstance(value, str) and wire.ACCOUNT_ID.fullmatch(value) for value in (source, target)
    ):
        return None
    if not isinstance(created, int):
        return None
    if not isinstance(msg_id, int):  # let through before (a retry key "msg:{...}"), now refused
        return None
    if any(not isinstance(data.get(name) or "", str) for name in wire.TEXT_FIELDS):
        return None
    return fields_of(message)


@given(st.one_of(text_messages(), messages_with_random_fields(), wechat_like_xml(), st.text()))
def test_a_message_is_accepted_and_read_as_before(text: str) -> None:
    """defusedxml in front of parse_message changes nothing for XML without a DOCTYPE."""
    try:
        now: list[object] | None = fields_of(wire.parse(text))
    except wire.Malformed:
        now = None
    assert now == read_as_before(text)


BOMBS = {
    "billion-laughs": (
        '<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
            for n in range(1, 10)
        )
        + "]>",
        "&lol9;",
    ),
    "external-entity": ('<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>', "&e;"),
    "external-dtd": ('<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">', "hello"),
    "parameter-entity": (
        '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
        "hello",
    ),
    "harmless-doctype": ("<!DOCTYPE xml>", "hello"),
}


@pytest.mark.parametrize(("doctype", "entity"), BOMBS.values(), ids=BOMBS.keys())
def test_a_doctype_in_the_envelope_or_the_message_is_malformed(doctype: str, entity: str) -> None:
    with pytest.raises(wire.DoctypeRefused):
        wire.envelope_encrypt(f"{doctype}<xml><Encrypt>{entity}</Encrypt></xml>")
    with pytest.raises(wire.DoctypeRefused):
        wire.parse(
            doctype
            + message_xml("o_x", "text", {"MsgId": 1}).replace(
                "</xml>", f"<Content>{entity}</Content></xml>"
            )
        )


def test_most_text_messages_take_the_fast_path() -> None:
    xml = message_xml("o_x", "text", {"Content": "  1  ", "MsgId": 7})
    message = wire.parse(xml)
    assert wire.text_message(wire.xml_root(xml)) is not None
    assert (message.type, message.content, message.id, message.source) == ("text", "1", 7, "o_x")
    event = message_xml("o_x", "event", {"Event": "subscribe"})
    assert wire.text_message(wire.xml_root(event)) is None
