"""Whole conversations through /wechat, answered by number like a WeChat user would."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from icalendar import Calendar
from PIL import Image

from kvisa.bot.channels.wechat.channel import PLEASE_TYPE
from kvisa.bot.i18n import Lang
from tests.channels.wechat.callbacks import Reply, WeChatUser
from tests.channels.wechat.conftest import Bot, StartBot
from tests.support import ACADEMIC, content

CUSTOM = "/cgi-bin/message/custom/send"


def options_in(text: str) -> dict[str, str]:
    return Reply(200, "", {"MsgType": "text", "Content": text}).options


async def interview_by_numbers(bot: Bot, user: WeChatUser, reply: Reply, lang: Lang) -> Reply:
    """From the consent question to the verdict, choosing every option by its number."""
    flows, catalogs = content()
    t = catalogs[lang]
    reply = await user.say(reply.number_of(t("I agree")))
    for _ in range(len(flows.questions) + 1):
        state = await bot.state(user)
        assert state is not None
        awaiting = state["awaiting"]
        if awaiting["kind"] != "question":
            return reply
        question = flows.question(awaiting["id"])
        value = ACADEMIC[question.id]
        option = question.option(value)
        if option is not None:
            reply = await user.say(reply.number_of(t(option.label)))
        elif value == "_today":
            reply = await user.say(reply.number_of(t("Today")))
        else:
            reply = await user.say(value)
        assert reply.status == 200
    raise AssertionError("the interview did not end")


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
async def test_a_full_interview_by_numbers_in_english(start_bot: StartBot, safe_mode: bool) -> None:
    bot = await start_bot(safe_mode=safe_mode)
    user = bot.user()

    await interview_by_numbers(bot, user, await user.say("/start"), "en")

    state = await bot.state(user)
    assert state is not None
    assert state["finished"] and state["lang"] == "en"
    assert state["answers"]["park"] == "lingang"
    assert state["awaiting"] == {"kind": "menu"}


async def test_a_full_interview_by_numbers_in_chinese_chosen_from_the_language_prompt(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(safe_mode=True)
    user = bot.user()
    await user.say("/start")
    languages = await user.say("/lang")

    consent = await user.say(languages.number_of("中文"))

    await interview_by_numbers(bot, user, consent, "zh")
    state = await bot.state(user)
    assert state is not None
    assert state["finished"] and state["lang"] == "zh"


async def test_lang_zh_turns_the_numbered_options_chinese(bot: Bot) -> None:
    _, catalogs = content()
    user = bot.user()
    await user.say("/start")

    reply = await user.say("/lang zh")

    assert catalogs["zh"]("I agree") in reply.options


async def test_subscribing_through_a_park_qr_code_prefills_the_park(bot: Bot) -> None:
    _, catalogs = content()
    user = bot.user()

    welcome = await user.event("subscribe", "qrscene_lingang")
    await user.say(welcome.number_of(catalogs["en"]("I agree")))

    state = await bot.state(user)
    assert state is not None
    assert state["answers"]["park"] == "lingang"
    assert state["awaiting"]["kind"] == "question"


async def test_scanning_a_park_qr_code_as_a_follower_works_like_a_deep_link(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")
    await user.say("1")

    await user.event("SCAN", "zhangjiang")

    state = await bot.state(user)
    assert state is not None and state["answers"]["park"] == "zhangjiang"


async def test_a_menu_click_runs_its_command(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")

    clicked = await user.event("CLICK", "help")

    assert clicked.text == (await user.say("/help")).text


async def test_unsubscribing_marks_the_user_inactive_and_gets_no_reply(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")
    await user.say("1")

    reply = await user.event("unsubscribe")

    assert reply.status == 200 and reply.fields is None  # "success": nobody to answer
    state = await bot.state(user)
    assert state is not None and state["inactive"]


async def test_a_voice_message_gets_a_please_type_answer_in_the_users_language(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")
    await user.say("/lang zh")
    before = await bot.state(user)

    reply = await user.voice()

    assert reply.status == 200
    assert reply.text == content()[1]["zh"](PLEASE_TYPE)
    assert await bot.state(user) == before
    assert bot.api.calls == []


async def test_the_timeline_picture_follows_the_passive_reply_as_an_image_message(bot: Bot) -> None:
    user = bot.user()
    await interview_by_numbers(bot, user, await user.say("/start"), "en")

    reply = await user.say("/timeline")

    assert reply.text
    await bot.api.wait_for(lambda: len(bot.api.texts_to(user.openid)) >= 1)
    upload = bot.api.sent("/cgi-bin/media/upload")[0]
    assert upload.query["type"] == "image" and upload.upload is not None
    filename, content_type, data = upload.upload
    assert (filename, content_type) == ("timeline.png", "image/png")
    assert Image.open(io.BytesIO(data)).format == "PNG"
    image, prompt = bot.api.sent(CUSTOM, user.openid)
    assert image.json["msgtype"] == "image" and image.json["image"]["media_id"].startswith("MEDIA-")
    assert options_in(prompt.json["text"]["content"])  # then the steps to report, numbered


async def test_the_calendar_comes_as_a_signed_link_that_expires(bot: Bot) -> None:
    _, catalogs = content()
    t = catalogs["en"]
    user = bot.user()
    await interview_by_numbers(bot, user, await user.say("/start"), "en")
    await user.say("/timeline")
    await bot.api.wait_for(lambda: len(bot.api.texts_to(user.openid)) >= 1)
    steps = options_in(bot.api.texts_to(user.openid)[-1])
    await user.say(steps[t("I entered China")])
    await user.say("2026-11-20")

    reply = await user.say("/calendar")

    link = next(line for line in reply.text.splitlines() if line.startswith(bot.base_url))
    async with bot.http.get(link) as response:
        assert response.status == 200
        assert response.content_type == "text/calendar"
        assert Calendar.from_ical(await response.read()).walk("VEVENT")
    async with bot.http.get(link.replace("sig=", "sig=0")) as response:
        assert response.status == 403
    bot.clock.advance(dt.timedelta(days=8))
    async with bot.http.get(link) as response:
        assert response.status == 403
