"""Whole conversations through `kvisa serve`'s Telegram part, over real HTTP to the fake Bot API."""

from __future__ import annotations

from kvisa.bot.engine.engine import commands
from tests.channels.telegram.conftest import Serve, interview
from tests.support import ACADEMIC, content

COMMANDS = commands()

FLOWS, CATALOGS = content()
EN, ZH = CATALOGS["en"], CATALOGS["zh"]


async def test_full_interview_by_buttons_in_english(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1001, "en")
    await interview(user, **ACADEMIC)
    state = await user.state()
    assert state and state["finished"] and state["lang"] == "en"
    assert state["answers"]["degree"] == "master" and state["answers"]["park"] == "lingang"
    presses = tg.fake.calls_to("answerCallbackQuery")
    assert len(presses) == 8 and all(call.status == 200 for call in presses)  # every press answered
    answered = [m for m in user.messages if m.edits]
    assert len(answered) == 8 and all(m.reply_markup is None for m in answered)
    assert answered[1].text and answered[1].text.endswith("✅ " + EN("Master's"))
    assert user.messages[-1].option_ids[0] == "timeline"  # the menu after the verdict
    assert not any("parse_mode" in call.params for call in tg.fake.calls)


async def test_full_interview_by_buttons_in_chinese(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1002, "zh-hans")
    replies = await user.send("/start")
    assert [label for label, _ in replies[-1].buttons] == [ZH("I agree"), ZH("No, thanks")]
    await interview(user, **{**ACADEMIC, "residence_country": "德国"})
    state = await user.state()
    assert (
        state
        and state["finished"]
        and state["lang"] == "zh"
        and state["answers"]["residence_country"] == "DE"
    )
    degree_question = next(
        m for m in user.messages if m.text and ZH(FLOWS.question("degree").text) in m.text
    )
    assert degree_question.text and degree_question.text.endswith("✅ " + ZH("Master's"))
    assert user.messages[-1].buttons[0][0] == ZH("My timeline")


async def test_command_menu_is_set_in_english_and_chinese(serve: Serve) -> None:
    tg = await serve()
    english, chinese = tg.fake.commands[None], tg.fake.commands["zh"]
    assert (
        [c["command"] for c in english]
        == [c["command"] for c in chinese]
        == [name for name, _ in COMMANDS]
    )
    assert [c["description"] for c in chinese] == [ZH(summary) for _, summary in COMMANDS]
    assert tg.fake.calls_to("deleteWebhook") and tg.fake.webhook is None  # polling mode


async def test_deep_link_preselects_the_park(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1003)
    await user.send("/start zhangjiang")
    await user.press("agree")
    assert (await user.state() or {})["answers"] == {"park": "zhangjiang"}


async def test_edit_changes_one_answer_by_buttons(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1004)
    await interview(user, **ACADEMIC)
    await user.send("/edit")
    edit_menu = user.last_prompt
    await user.press("plan")
    assert (
        edit_menu.reply_markup is None and edit_menu.edits == 1
    )  # shows the choice, keyboard gone
    await user.press("employed")
    state = await user.state()
    assert state and state["finished"] and state["answers"]["plan"] == "employed"
    assert state["answers"]["degree"] == "master"  # the other answers stay


async def test_stale_button_gets_a_notice_and_changes_nothing(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1005)
    await user.send("/start")
    await user.press("agree")
    degree_question = user.last_prompt
    await user.send("/help")  # asks the degree question again: the first one's buttons are stale
    before = await user.state()
    replies = await user.press("doctorate", on=degree_question)
    assert replies[0].text == EN(
        "That button belongs to an earlier question. Here is the current one."
    )
    assert replies[-1].option_ids[:4] == ["none", "bachelor", "master", "doctorate"]  # asked again
    after = await user.state()
    assert after and before and after["answers"] == before["answers"] == {}
    assert degree_question.reply_markup is None and "✅" not in (
        degree_question.text or ""
    )  # no choice shown


async def test_a_double_press_answers_once(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1006)
    await user.send("/start")
    await user.press("agree")
    question = user.last_prompt
    data = next(d for _, d in question.buttons if d.endswith(":master"))
    first, second = (tg.fake.callback_update(question, data) for _ in range(2))
    tg.fake.push(first)
    await tg.submit(second)  # both in one batch, both with the keyboard still on
    state = await user.state()
    assert state and state["answers"] == {"degree": "master"}
    refused = [c for c in tg.fake.calls_to("editMessageReplyMarkup", 1006) if c.status == 400]
    assert len(refused) == 1  # "message is not modified": harmless
    assert len(tg.fake.calls_to("answerCallbackQuery")) == 3
    await user.press("yes")  # and the conversation goes on
    assert (await user.state() or {})["answers"]["degree_field_stem"] is True


async def test_one_users_messages_are_handled_in_the_order_sent(serve: Serve) -> None:
    tg = await serve()
    first, second = tg.user(1007), tg.user(1008)
    for user in (first, second):
        await user.send("/start")
        await user.press("agree")
    for text in ("Master's", "yes", "no"):  # typed quickly: one getUpdates batch for both users
        for user in (first, second):
            tg.fake.push(tg.fake.message_update(user.chat_id, text))
    await tg.submit(tg.fake.message_update(first.chat_id, "/mydata"))
    for user in (first, second):
        state = await user.state()
        assert state and state["answers"] == {
            "degree": "master",
            "degree_field_stem": True,
            "degree_from_recognized": False,
        }


async def test_timeline_comes_as_a_photo_and_the_calendar_as_a_document(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1009)
    await interview(user, **ACADEMIC)
    photos = [m for m in await user.send("/timeline") if m.kind == "photo"]
    assert len(photos) == 1 and photos[0].file and photos[0].file.data.startswith(b"\x89PNG")
    assert photos[0].caption == EN("Your K visa timeline")
    documents = [m for m in await user.send("/calendar") if m.kind == "document"]
    assert len(documents) == 1 and documents[0].file and documents[0].file.filename.endswith(".ics")
    assert documents[0].file.data.startswith(b"BEGIN:VCALENDAR")


async def test_a_sticker_gets_a_hint_not_silence(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(1010)
    await user.send("/start")
    await user.press("agree")
    update = tg.fake.message_update(user.chat_id, "")
    del update["message"]["text"]
    update["message"]["sticker"] = {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    await tg.submit(update)
    replies = user.messages[user.read :]
    assert replies[0].text == EN(
        "I received an empty message. Please type your answer, or choose an option."
    )
