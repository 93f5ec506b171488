"""Questions typed in the applicant's own words, in a real engine on a real store: answered from
flows/faq.yaml in the session's language whatever language they were typed in, mid-interview
too; "did you mean …?" when unsure; a person otherwise, with the question."""

from __future__ import annotations

from kvisa.bot.content.model import FaqEntry
from tests.support import ACADEMIC, Chat, content


def entry(entry_id: str) -> FaqEntry:
    return next(e for e in content()[0].faq if e.id == entry_id)


def zh(msgid: str) -> str:
    return content()[1]["zh"](msgid)


async def test_a_question_typed_mid_interview_is_answered_and_the_question_asked_again(
    chat: Chat,
) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    before = await chat.awaiting()
    assert before == {"kind": "question", "id": "degree"}
    await chat.send("Is a work permit needed if I have a K visa?")
    assert entry("work_permit_needed").answer in chat.text
    assert "Source:" in chat.text and "as of" in chat.text
    assert await chat.awaiting() == before  # the interview question again, nothing recorded
    assert chat.last_prompt.text.startswith("(1/")
    await chat.choose("master")  # and the interview goes on
    assert (await chat.state() or {})["answers"]["degree"] == "master"


async def test_an_answer_that_fits_the_question_is_still_taken_as_the_answer(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.send("Master")  # an option's label typed: the answer, not a question
    assert (await chat.state() or {})["answers"]["degree"] == "master"


async def test_a_chinese_question_in_an_english_session_gets_the_english_answer(
    chat: Chat,
) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("我已经37岁了，还能申请K签吗")
    over_35 = entry("over_35")
    assert over_35.answer in chat.text
    assert zh(over_35.answer) not in chat.text


async def test_an_english_question_in_a_chinese_session_gets_the_chinese_answer(
    chat: Chat,
) -> None:
    chat.lang_hint = "zh"
    await chat.interview(**ACADEMIC)
    await chat.send("When must I apply for the work permit after I arrive?")
    deadline = entry("work_permit_deadline")
    assert zh(deadline.answer) in chat.text and deadline.answer not in chat.text
    assert "来源" in chat.text


async def test_a_topic_no_source_covers_is_not_answered_and_human_takes_it_to_a_person(
    chat: Chat,
) -> None:
    await chat.interview(**ACADEMIC)
    question = "Can my wife and our two kids come to Shanghai with me?"
    await chat.send(question)
    assert "does not cover" in chat.text and "/human" in chat.text
    assert not any(e.answer in chat.text for e in content()[0].faq)
    await chat.send("/human")
    handover = (await chat.state() or {})["handover"]
    assert handover["status"] == "queued" and handover["reason"] == question
    assert handover["messages"][0]["text"] == question


async def test_nonsense_is_not_answered_and_the_question_is_forgotten_after_one_message(
    chat: Chat,
) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("What is the best dumpling place near People's Square?")
    assert "I don't know this one" in chat.text
    assert (await chat.state() or {})["asked"] is not None
    await chat.send("/timeline")
    assert (await chat.state() or {})["asked"] is None  # kept for /human only, one message


async def test_a_mistyped_answer_still_gets_the_questions_own_hint(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.choose("master")
    await chat.choose("yes")
    await chat.choose("yes")
    await chat.choose("no")
    assert (await chat.awaiting() or {}).get("id") == "birth_date"
    await chat.send("27th of Aprill")
    assert "1998-04-27" in chat.text  # how to type a date, not "I don't know"
    assert "I don't know" not in chat.text


async def test_did_you_mean_offers_entries_a_person_and_back(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("how long")
    assert (await chat.awaiting() or {})["kind"] == "asked", chat.text
    offered = [o for o in chat.option_ids if not o.startswith("_")]
    assert 1 <= len(offered) <= 3 and chat.option_ids[-2:] == ["_person", "_back"]
    await chat.choose(offered[0])
    assert entry(offered[0]).answer in chat.text
    assert (await chat.awaiting() or {})["kind"] == "menu"  # back where the applicant was
    await chat.send("how long")
    await chat.choose("_person")
    handover = (await chat.state() or {})["handover"]
    assert handover["status"] == "queued" and handover["reason"] == "how long"
