"""The pure conversions between Telegram's objects and the engine's, without a network."""

from __future__ import annotations

import re

from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendMessage,
    SendPhoto,
)
from aiogram.types import CallbackQuery, Update
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.channels.telegram import convert
from kvisa.bot.channels.telegram.convert import Press
from kvisa.bot.engine.engine import commands
from kvisa.bot.messages import Attachment, Outbound, UiOption
from kvisa.identity import UserKey
from tests.channels.telegram.fake_api import FakeBotApi, Sent
from tests.support import NOON_SHANGHAI, content

COMMANDS = commands()

USER = UserKey("telegram", "42")


def message_update(text: str, **kwargs: object) -> Update:
    return Update.model_validate(
        {"update_id": 1, **FakeBotApi().message_update(42, text, **kwargs)}
    )  # type: ignore[arg-type]


def press(
    data: str,
    text: str = "(1/12) What is your highest degree?",
    buttons: list[tuple[str, str]] | None = None,
) -> CallbackQuery:
    buttons = buttons if buttons is not None else [("Master's", data)]
    markup = (
        {"inline_keyboard": [[{"text": label, "callback_data": d}] for label, d in buttons]}
        if buttons
        else None
    )
    sent = Sent(42, 7, "text", text=text, reply_markup=markup)
    update = Update.model_validate(
        {"update_id": 2, **FakeBotApi().callback_update(sent, data, "zh-hans")}
    )
    assert update.callback_query is not None
    return update.callback_query


# --- in ---------------------------------------------------------------------------------------


def test_text_message_becomes_text_with_the_users_language() -> None:
    update = message_update("Germany", language_code="zh-hans")
    assert convert.update_user(update) == USER
    inbound = convert.inbound_from_message(update.message, NOON_SHANGHAI)  # type: ignore[arg-type]
    assert (inbound.user, inbound.text, inbound.command, inbound.lang_hint) == (
        USER,
        "Germany",
        None,
        "zh-hans",
    )
    assert inbound.at == NOON_SHANGHAI


def test_deep_link_start_keeps_its_argument() -> None:
    inbound = convert.inbound_from_message(message_update("/start lingang").message, NOON_SHANGHAI)  # type: ignore[arg-type]
    assert (inbound.command, inbound.args) == ("start", "lingang")


def test_command_addressed_to_the_bot_by_name_is_the_command() -> None:
    inbound = convert.inbound_from_message(
        message_update("/help@kvisa_test_bot").message, NOON_SHANGHAI
    )  # type: ignore[arg-type]
    assert inbound.command == "help"


def test_message_without_text_arrives_as_empty_text_so_the_engine_answers_it() -> None:
    update = Update.model_validate(
        {
            "update_id": 3,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 42, "type": "private"},
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "type": "regular",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                },
            },
        }
    )
    inbound = convert.inbound_from_message(update.message, NOON_SHANGHAI)  # type: ignore[arg-type]
    assert inbound.text == "" and inbound.command is None


def test_group_messages_are_ignored() -> None:
    assert convert.update_user(message_update("/start", chat_type="group")) is None


def test_button_press_carries_option_prompt_and_language() -> None:
    inbound = convert.inbound_from_callback(press("7:master"), NOON_SHANGHAI)
    assert inbound is not None
    assert (inbound.user, inbound.option, inbound.prompt, inbound.lang_hint) == (
        USER,
        "master",
        7,
        "zh-hans",
    )


def test_positional_button_press_carries_the_position() -> None:
    inbound = convert.inbound_from_callback(press("7:#3"), NOON_SHANGHAI)
    assert inbound is not None and (inbound.option, inbound.prompt) == ("#3", 7)


def test_callback_data_that_is_not_ours_has_no_prompt() -> None:
    assert convert.parse_callback_data("hello") == (None, "hello")
    assert convert.parse_callback_data("x1:agree") == (None, "x1:agree")
    assert convert.parse_callback_data(":agree") == (None, "agree")


# --- buttons ----------------------------------------------------------------------------------


@given(
    prompt=st.none() | st.integers(min_value=0, max_value=10**18),
    option_id=st.text(),
    position=st.integers(min_value=1, max_value=500),
)
def test_callback_data_fits_64_bytes_and_round_trips(
    prompt: int | None, option_id: str, position: int
) -> None:
    data = convert.callback_data(prompt, position, option_id)
    assert 1 <= len(data.encode()) <= convert.CALLBACK_DATA_LIMIT
    parsed_prompt, option = convert.parse_callback_data(data)
    assert parsed_prompt == prompt
    assert option == option_id or option == f"#{position}"


def test_long_option_ids_are_sent_by_position() -> None:
    long_id = "x" * 80
    assert convert.callback_data(12, 3, long_id) == "12:#3"
    assert convert.callback_data(12, 3, "degree") == "12:degree"
    assert convert.callback_data(12, 3, "#1") == "12:#3"  # an id that reads as a position


def test_keyboard_has_one_button_a_row_tied_to_the_prompt() -> None:
    outbound = Outbound(
        "Degree?", (UiOption("master", "Master's"), UiOption("none", "No degree")), prompt=4
    )
    markup = convert.keyboard(outbound)
    assert markup is not None
    assert [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard] == [
        [("Master's", "4:master")],
        [("No degree", "4:none")],
    ]
    assert convert.keyboard(Outbound("no options")) is None


# --- texts ------------------------------------------------------------------------------------


def squeeze(text: str) -> str:
    return re.sub(r"\s", "", text)


@given(
    st.lists(st.text(alphabet=st.sampled_from("ab 中😀\t"), max_size=120), max_size=30),
    st.integers(min_value=8, max_value=100),
)
def test_split_text_respects_the_limit_and_keeps_every_character(
    lines: list[str], limit: int
) -> None:
    text = "\n".join(lines)
    chunks = convert.split_text(text, limit)
    assert all(0 < convert.utf16_len(chunk) <= limit and chunk.strip() for chunk in chunks)
    assert squeeze("".join(chunks)) == squeeze(text)


def test_split_text_cuts_between_lines() -> None:
    lines = [f"{n:04d} " + "x" * 1500 for n in range(7)]
    chunks = convert.split_text("\n".join(lines))
    assert [len(chunk.split("\n")) for chunk in chunks] == [2, 2, 2, 1]  # 1505 characters a line
    assert [line for chunk in chunks for line in chunk.split("\n")] == lines


def test_split_text_counts_as_telegram_does() -> None:
    emoji = "😀" * 3000  # 6000 UTF-16 units on one line without spaces
    chunks = convert.split_text(emoji)
    assert [convert.utf16_len(c) for c in chunks] == [4096, 1904]


def test_short_text_is_one_message() -> None:
    assert convert.split_text("Hello\nworld") == ["Hello\nworld"]


# --- out --------------------------------------------------------------------------------------


def test_keyboard_hangs_under_the_last_part_of_a_long_prompt() -> None:
    text = "\n".join(["line " * 200] * 10)
    methods = convert.send_methods(42, Outbound(text, (UiOption("yes", "Yes"),), prompt=3))
    assert all(isinstance(m, SendMessage) for m in methods) and len(methods) > 1
    assert [m.reply_markup is not None for m in methods] == [False] * (len(methods) - 1) + [True]  # type: ignore[attr-defined]


def test_pictures_go_as_photos_and_calendars_as_documents() -> None:
    outbound = Outbound(
        "Your timeline",
        attachments=(
            Attachment("timeline.png", "image/png", b"\x89PNG", "Timeline"),
            Attachment("kvisa.ics", "text/calendar", b"BEGIN:VCALENDAR", "Deadlines"),
        ),
    )
    text, photo, document = convert.send_methods(42, outbound)
    assert (
        isinstance(text, SendMessage)
        and isinstance(photo, SendPhoto)
        and isinstance(document, SendDocument)
    )
    assert photo.caption == "Timeline" and document.document.filename == "kvisa.ics"  # type: ignore[union-attr]


def test_text_is_sent_without_parse_mode_so_user_text_is_never_markup() -> None:
    (method,) = convert.send_methods(42, Outbound("<b>not bold</b> *nor* _this_ [x](y)"))
    assert isinstance(method, SendMessage)
    assert method.text == "<b>not bold</b> *nor* _this_ [x](y)"
    assert method.entities is None and method.parse_mode != "HTML"


def test_caption_is_clipped_to_telegrams_limit() -> None:
    (method,) = convert.send_methods(
        42, Outbound("", attachments=(Attachment("t.png", "image/png", b"", "c" * 2000),))
    )
    assert (
        isinstance(method, SendPhoto)
        and convert.utf16_len(method.caption or "") == convert.CAPTION_LIMIT
    )


def test_command_menu_in_chinese_uses_the_catalog() -> None:
    _, catalogs = content()
    commands = convert.bot_commands(catalogs["zh"], COMMANDS)
    assert [c.command for c in commands] == [name for name, _ in COMMANDS]
    assert commands[0].description == catalogs["zh"](COMMANDS[0][1])


# --- after a press ----------------------------------------------------------------------------


def test_press_is_judged_by_the_prompt_that_follows() -> None:
    next_prompt = Outbound("Q2", (UiOption("a", "A"),), prompt=8)
    assert convert.judge_press(7, [Outbound("ok"), next_prompt]) is Press.ACCEPTED
    assert (
        convert.judge_press(
            5, [Outbound("That button belongs to an earlier question."), next_prompt]
        )
        is Press.STALE
    )
    assert convert.judge_press(7, [Outbound("Sorry, something went wrong")]) is Press.UNKNOWN
    assert convert.judge_press(None, [next_prompt]) is Press.UNKNOWN


def test_accepted_press_shows_the_choice_and_drops_the_keyboard() -> None:
    edit = convert.press_edit(press("7:master"), Press.ACCEPTED)
    assert isinstance(edit, EditMessageText)
    assert edit.text == "(1/12) What is your highest degree?\n\n✅ Master's"
    assert edit.reply_markup is None and (edit.chat_id, edit.message_id) == (42, 7)


def test_stale_press_only_drops_the_keyboard() -> None:
    edit = convert.press_edit(press("3:none"), Press.STALE)
    assert isinstance(edit, EditMessageReplyMarkup) and edit.reply_markup is None


def test_press_on_a_message_without_keyboard_changes_nothing() -> None:
    assert convert.press_edit(press("3:none", buttons=[]), Press.ACCEPTED) is None
    assert convert.press_edit(press("3:none"), Press.UNKNOWN) is None


def test_answered_text_stays_within_the_limit() -> None:
    text = convert.answered_text("q" * 5000, "Master's")
    assert convert.utf16_len(text) <= convert.TEXT_LIMIT and text.endswith("\n\n✅ Master's")
