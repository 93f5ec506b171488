"""The pure conversions: WeChat messages to Inbound, Outbound to WeChat texts."""

from __future__ import annotations

import datetime as dt

import xmltodict  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.channels.wechat import convert, wire
from kvisa.bot.channels.wechat.convert import Picture, Unreadable, Unsubscribed
from kvisa.bot.messages import Attachment, Inbound, Outbound, UiOption
from kvisa.identity import UserKey
from tests.channels.wechat.callbacks import message_xml

AT = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
USER = UserKey("wechat", "o_alice")
PNG = Attachment("timeline.png", "image/png", b"\x89PNG", "Your timeline")
ICS = Attachment("deadlines.ics", "text/calendar", b"BEGIN:VCALENDAR", "Deadlines")


def event_of(msg_type: str, **fields: str | int) -> convert.Event:
    """The meaning of a message, read as the channel reads it."""
    return convert.event_of(wire.parse(message_xml("o_alice", msg_type, fields, create_time=1)), AT)


def test_a_text_is_the_users_text_for_the_engine() -> None:
    assert event_of("text", Content="2", MsgId=1) == Inbound(USER, AT, text="2")


def test_a_slash_text_is_a_command() -> None:
    assert event_of("text", Content="/lang zh", MsgId=1) == Inbound(
        USER, AT, command="lang", args="zh"
    )


def test_subscribing_starts_the_interview() -> None:
    assert event_of("event", Event="subscribe") == Inbound(USER, AT, command="start")


def test_subscribing_through_a_park_qr_code_starts_with_the_park() -> None:
    assert event_of("event", Event="subscribe", EventKey="qrscene_lingang") == Inbound(
        USER, AT, command="start", args="lingang"
    )


def test_a_menu_click_is_the_command_of_its_key() -> None:
    assert event_of("event", Event="CLICK", EventKey="checklist") == Inbound(
        USER, AT, command="checklist"
    )


def test_unsubscribing_is_no_message_for_the_engine() -> None:
    assert event_of("event", Event="unsubscribe") == Unsubscribed(USER)


def test_voice_pictures_and_locations_are_unreadable() -> None:
    assert event_of("voice", MediaId="m", Format="amr", MsgId=1) == Unreadable(USER, "voice")
    assert event_of("image", PicUrl="http://x", MediaId="m", MsgId=1) == Unreadable(USER, "image")
    assert event_of(
        "location", Location_X="31.2", Location_Y="121.5", Scale=15, Label="x", MsgId=1
    ) == Unreadable(USER, "location")


def test_events_nobody_wrote_need_no_answer() -> None:
    assert event_of("event", Event="VIEW", EventKey="https://example.com") is None
    assert (
        event_of("event", Event="LOCATION", Latitude="31.2", Longitude="121.5", Precision="50")
        is None
    )
    assert event_of("event", Event="some_future_event") is None


def test_retries_are_recognised_by_msgid_and_events_by_sender_and_time() -> None:
    text = wire.parse(message_xml("o_alice", "text", {"Content": "hi", "MsgId": 77}, create_time=5))
    event = wire.parse(message_xml("o_alice", "event", {"Event": "subscribe"}, create_time=5))
    unknown = wire.parse(message_xml("o_alice", "event", {"Event": "new_thing"}, create_time=5))

    assert convert.retry_key(text) == "msg:77"
    assert convert.retry_key(event) == "event:o_alice:5:subscribe"
    assert convert.retry_key(unknown) == "event:o_alice:5:unknown"  # as before wire.UnknownEvent


def test_options_become_numbered_lines() -> None:
    outbound = Outbound("Your degree?", (UiOption("master", "Master"), UiOption("phd", "PhD")))

    assert convert.text_of(outbound) == "Your degree?\n1. Master\n2. PhD"


def test_a_turns_texts_are_joined_and_a_picture_goes_between() -> None:
    outbounds = [
        Outbound("Language set."),
        Outbound("Timeline:", attachments=(PNG,)),
        Outbound("Which step?", (UiOption("entered", "I entered China"),)),
    ]

    parts = convert.parts_of(outbounds, lambda a: "link")

    assert parts == [
        "Language set.\n\nTimeline:\n\nYour timeline",
        Picture(PNG),
        "Which step?\n1. I entered China",
    ]


def test_a_file_becomes_its_link_text() -> None:
    parts = convert.parts_of(
        [Outbound("Your calendar:", attachments=(ICS,))], lambda a: f"{a.caption}\nhttps://x/1"
    )

    assert parts == ["Your calendar:\n\nDeadlines\nhttps://x/1"]


def test_a_long_option_list_is_split_between_lines() -> None:
    options = tuple(UiOption(str(n), f"选项 {n} " + "很长的标签" * 8) for n in range(60))

    parts = convert.parts_of([Outbound("请选择：", options)], lambda a: "")

    assert len(parts) > 1
    lines = [line for part in parts for line in str(part).splitlines()]
    assert lines == convert.text_of(Outbound("请选择：", options)).splitlines()


@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6000),
    st.integers(min_value=8, max_value=2048),
)
def test_split_pieces_fit_the_limit_and_keep_every_character(text: str, limit: int) -> None:
    pieces = convert.split(text, limit)

    assert all(0 < convert.utf8_len(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


@given(st.lists(st.text(max_size=900), max_size=8))
def test_packed_messages_fit_the_limit(texts: list[str]) -> None:
    assert all(convert.utf8_len(message) <= convert.TEXT_LIMIT for message in convert.pack(texts))


@given(st.text())
def test_any_text_survives_a_passive_reply_but_for_characters_xml_cannot_hold(text: str) -> None:
    xml = f"<xml><Content><![CDATA[{convert.xml_text(text)}]]></Content></xml>"

    parsed = xmltodict.parse(xml, strip_whitespace=False)["xml"]["Content"] or ""

    # XML reads every line break as \n.
    assert parsed == convert.XML_ILLEGAL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def test_template_fields_take_title_and_detail_lines_clipped_to_twenty_characters() -> None:
    data = convert.template_data(
        [Outbound("Reminder: apply for your work permit now\nDeadline: 4 December 2026")]
    )

    assert data["keyword1"]["value"] == "Reminder: apply for…"
    assert data["keyword2"]["value"] == "Deadline: 4 Decembe…"
    assert data["remark"]["value"] == "Deadline: 4 December 2026"
