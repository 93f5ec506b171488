"""Whole conversations, as a user would have them, against the real flows, catalogs and SQLite."""

from __future__ import annotations

import datetime as dt

from kvisa.bot.engine.engine import Engine
from kvisa.bot.engine.turn import Turn
from kvisa.bot.policy.eligibility import assess
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.support import ACADEMIC, Chat, content, engine_on


def assessment_of(state: dict[str, object]) -> object:
    flows, catalogs = content()
    turn = Turn(flows, catalogs, state, _inbound())
    return turn.assessment()


def _inbound():  # type: ignore[no-untyped-def]
    from kvisa.bot.messages import Inbound
    from kvisa.identity import UserKey
    from tests.support import NOON_SHANGHAI

    return Inbound(UserKey("console", "x"), NOON_SHANGHAI, text="")


async def test_academic_channel_interview_ends_with_verdict_and_menu(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)
    state = await chat.state()
    assert state is not None and state["finished"]
    result = assessment_of(state)
    assert result.eligible and result.channels == ("academic",)  # type: ignore[attr-defined]
    assert state["answers"]["planned_application"] == "2026-11-25"
    assert state["answers"]["residence_country"] == "DE"
    assert (await chat.awaiting()) == {"kind": "menu"}
    assert "key_enterprise" not in state["answers"]  # asked only for Zhangjiang employees


async def test_work_channel_without_degree_needs_research_proof(chat: Chat) -> None:
    answers = {k: v for k, v in ACADEMIC.items() if not k.startswith("degree_")}
    await chat.interview(**{**answers, "degree": "none", "stem_work_at_recognized": "yes"})
    state = await chat.state()
    result = assessment_of(state)  # type: ignore[arg-type]
    assert result.channels == ("work",)  # type: ignore[attr-defined]
    ids = result.checklist_ids  # type: ignore[attr-defined]
    assert "research_proof" in ids and "degree_certificate" not in ids
    assert "degree_field_stem" not in state["answers"]  # type: ignore[index]


async def test_both_channels_are_named_when_both_apply(chat: Chat) -> None:
    await chat.interview(**{**ACADEMIC, "stem_work_at_recognized": "yes"})
    assert assessment_of(await chat.state()).channels == ("academic", "work")  # type: ignore[arg-type, attr-defined]


async def test_over_35_stays_eligible_with_achievements_proof(chat: Chat) -> None:
    await chat.interview(**{**ACADEMIC, "birth_date": "1985-06-01"})
    result = assessment_of(await chat.state())  # type: ignore[arg-type]
    assert result.eligible and result.needs_age_proof  # type: ignore[attr-defined]
    assert "achievements_proof" in result.checklist_ids  # type: ignore[attr-defined]
    assert "age_proof" in [w.id for w in result.warnings]  # type: ignore[attr-defined]


async def test_under_18_is_told_about_embassy_practice_not_refused(chat: Chat) -> None:
    # The guide sets no age limit (18-35 is embassy practice); under 18 used to get "❌".
    await chat.interview(**{**ACADEMIC, "birth_date": "2010-01-01"})
    flows, catalogs = content()
    result = assessment_of(await chat.state())  # type: ignore[arg-type]
    assert result.eligible and result.under_age  # type: ignore[attr-defined]
    assert "❌" not in chat.text
    assert catalogs["en"](flows.age.below_practice) in chat.text


async def test_zhangjiang_key_enterprise_gets_commitment_letter(chat: Chat) -> None:
    await chat.interview(
        **{**ACADEMIC, "plan": "employed", "park": "zhangjiang", "key_enterprise": "yes"}
    )
    result = assessment_of(await chat.state())  # type: ignore[arg-type]
    ids = result.checklist_ids  # type: ignore[attr-defined]
    assert {"commitment_letter", "employment_contract", "degree_certificate"} <= set(ids)
    assert "on_site_verification" in ids  # the employer's step, with the parks' green channels
    # The guide says nothing of "a copy is enough": the degree certificate reads the same.
    degree = next(e for e in result.checklist if e.item.id == "degree_certificate")  # type: ignore[attr-defined]
    assert degree.detail == degree.item.detail
    assert "copy" not in chat.text.lower()


async def test_verdict_shows_park_perks_only_to_whom_they_apply(engine: Engine) -> None:
    # Zhangjiang's commitment system is for talents of key enterprises (a researcher without an
    # employer was told about it); Lingang's subsidy is for those who start a business.
    flows, catalogs = content()
    perks = {p.title: catalogs["en"](p.detail) for park in flows.parks for p in park.perks}
    cases = [
        ({"park": "zhangjiang", "plan": "research"}, "Simpler documents", False),
        (
            {"park": "zhangjiang", "plan": "employed", "key_enterprise": "yes"},
            "Simpler documents",
            True,
        ),
        ({"park": "zhangjiang", "plan": "employed", "key_enterprise": "no"}, "Fast track", True),
        ({"park": "lingang", "plan": "employed"}, "Start-up subsidy", False),
        ({"park": "lingang", "plan": "startup"}, "Start-up subsidy", True),
        ({"park": "lingang", "plan": "research"}, "Incomplete files accepted", True),
    ]
    for n, (answers, perk, shown) in enumerate(cases):
        chat = Chat(engine, user=UserKey("console", f"perks-{n}"))
        await chat.interview(**{**ACADEMIC, **answers})
        assert (perks[perk] in chat.text) is shown, (answers, perk)


async def test_a_stored_nationality_answer_is_forgotten_and_its_question_not_asked(
    storage: SqliteStorage,
) -> None:
    # Nationality changed nothing the bot said: it is no longer asked. A session stored by the
    # release that asked it loads, drops the answer, and a reply to that pending question is
    # not taken for the answer to another one.
    old = Session(
        consent_at="2026-11-25T04:00:00+00:00",
        answers={"degree": "master", "nationality": "FR", "birth_date": "1998-04-27"},
        awaiting=Waiting(Kind.QUESTION, "nationality"),
        prompt=3,
    ).to_json()
    chat = Chat(engine_on(storage))
    await storage.put(chat.user, old, expected_version=0)
    await chat.send("France")
    state = await chat.state()
    assert state and "nationality" not in state["answers"]
    assert state["answers"] == {"degree": "master", "birth_date": "1998-04-27"}
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree_field_stem"}
    await chat.send("/mydata")
    assert "Nationality" not in chat.text and "France" not in chat.text


async def test_editing_an_answer_reasks_only_its_dependents_and_shows_the_change(
    chat: Chat,
) -> None:
    await chat.interview(**{**ACADEMIC, "stem_work_at_recognized": "yes"})
    await chat.send("/edit")
    await chat.choose("degree")
    await chat.choose("none")
    state = await chat.state()
    # degree_field_stem and degree_from_recognized no longer apply: dropped, not asked.
    assert state and "degree_field_stem" not in state["answers"]
    assert (await chat.awaiting()) == {"kind": "menu"}
    result = assessment_of(state)
    assert result.channels == ("work",)  # type: ignore[attr-defined]
    # The summary of the change comes before the verdict.
    assert chat.replies[0].text.splitlines()[0] != chat.replies[1].text.splitlines()[0]


async def test_editing_plan_asks_key_enterprise_only_when_it_becomes_relevant(chat: Chat) -> None:
    await chat.interview(**{**ACADEMIC, "park": "zhangjiang"})
    await chat.send("/edit")
    await chat.choose("plan")
    await chat.choose("employed")
    assert (await chat.awaiting()) == {"kind": "question", "id": "key_enterprise"}
    await chat.choose("yes")
    state = await chat.state()
    assert state and state["answers"]["key_enterprise"] is True and state["finished"]


async def test_changing_an_answer_without_dependents_asks_nothing_more(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("/edit")
    await chat.choose("passport_expiry")
    await chat.send("2032年1月1日")
    state = await chat.state()
    assert state and state["answers"]["passport_expiry"] == "2032-01-01"
    assert (await chat.awaiting()) == {"kind": "menu"}


async def test_back_reasks_the_previous_question_in_interview_order(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.choose("bachelor")
    await chat.choose("yes")
    await chat.send("/back")
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree_field_stem"}
    await chat.send("/back")
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}
    await chat.send("/back")  # nothing before the first question
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}


async def test_session_resumes_after_restart_exactly_where_it_stopped(
    storage: SqliteStorage, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    first = Chat(engine_on(storage))
    await first.send("/start")
    await first.choose("agree")
    await first.choose("doctorate")
    await first.choose("yes")
    before = await first.state()
    await storage.close()

    async with SqliteStorage(tmp_path / "kvisa.db") as reopened:
        again = Chat(engine_on(reopened))
        await again.send("/start")
        assert (await again.state())["answers"] == before["answers"]  # type: ignore[index]
        assert (await again.awaiting()) == {"kind": "question", "id": "degree_from_recognized"}
        assert again.last_prompt.options[0].id == "yes"


async def test_delete_erases_everything_after_confirmation(chat: Chat, engine: Engine) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("/delete")
    await chat.choose("no")
    assert await chat.state() is not None
    await chat.send("/delete")
    await chat.choose("yes")
    assert await chat.state() is None
    assert [k async for k in engine.storage.users()] == []


async def test_declining_consent_stores_nothing(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("decline")
    assert await chat.state() is None
    await chat.send("hello")  # starts over with the notice
    assert (await chat.awaiting()) == {"kind": "consent"}


async def test_no_answer_is_stored_before_consent(chat: Chat) -> None:
    await chat.send("/start")
    await chat.send("1998-04-27")  # not an option of the consent prompt
    state = await chat.state()
    assert state and state["answers"] == {} and state["consent_at"] is None


async def test_mydata_lists_every_stored_answer(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("/mydata")
    flows, catalogs = content()
    t = catalogs["en"]
    for qid in ("degree", "birth_date", "park"):
        assert t(flows.question(qid).short) in chat.replies[0].text


async def test_chinese_interview_accepts_chinese_labels_and_full_width_numbers(
    engine: Engine,
) -> None:
    chat = Chat(engine, lang_hint="zh-hans")
    await chat.send("/start")
    await chat.send("１")  # full-width 1: "I agree"
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}
    flows, catalogs = content()
    assert catalogs["zh"](flows.question("degree").text) in chat.text
    await chat.send(catalogs["zh"]("Master's"))
    await chat.send("是")
    state = await chat.state()
    assert state and state["lang"] == "zh" and state["answers"]["degree_field_stem"] is True


async def test_lang_command_switches_language_and_keeps_answers(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.choose("master")
    await chat.send("/lang")
    await chat.choose("zh")
    state = await chat.state()
    assert (
        state
        and state["lang"] == "zh"
        and state["lang_chosen"]
        and state["answers"] == {"degree": "master"}
    )
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree_field_stem"}


async def test_stale_button_changes_nothing(chat: Chat, engine: Engine) -> None:
    from kvisa.bot.messages import Inbound

    await chat.send("/start")
    await chat.choose("agree")
    old_prompt = chat.last_prompt.prompt
    await chat.choose("master")
    before = await chat.state()
    await engine.handle(Inbound(chat.user, chat.at, option="none", prompt=old_prompt))
    after = await chat.state()
    assert after["answers"] == before["answers"]  # type: ignore[index]
    assert after["awaiting"] == before["awaiting"]  # type: ignore[index]


async def test_deep_link_preselects_the_park(chat: Chat) -> None:
    await chat.send("/start lingang")
    await chat.choose("agree")
    state = await chat.state()
    assert state and state["answers"] == {"park": "lingang"}


async def test_checklist_items_tick_and_untick(chat: Chat) -> None:
    await chat.interview(**ACADEMIC)
    await chat.send("/checklist")
    assert "passport" in chat.option_ids
    await chat.choose("passport")
    await chat.choose("photo")
    await chat.choose("passport")
    assert (await chat.state())["ticked"] == ["photo"]  # type: ignore[index]
    await chat.choose("_done")
    assert (await chat.awaiting()) == {"kind": "menu"}


async def test_checklist_waits_for_the_interview(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.send("/checklist")
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}


async def test_why_explains_and_asks_again(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    await chat.choose("_why")
    flows, catalogs = content()
    assert catalogs["en"](flows.question("degree").why) in chat.text
    assert (await chat.awaiting()) == {"kind": "question", "id": "degree"}


async def test_faq_answers_the_guides_questions(chat: Chat) -> None:
    await chat.send("/faq")
    assert "work_permit_needed" in chat.option_ids
    await chat.choose("work_permit_needed")
    flows, catalogs = content()
    entry = next(e for e in flows.faq if e.id == "work_permit_needed")
    assert catalogs["en"](entry.answer) in chat.text


async def test_unknown_command_gets_help(chat: Chat) -> None:
    await chat.send("/start")
    await chat.send("/frobnicate")
    assert "/checklist" in chat.text and "/delete" in chat.text
    assert (await chat.awaiting()) == {"kind": "consent"}


async def test_progress_counts_questions_that_still_apply(chat: Chat) -> None:
    await chat.send("/start")
    await chat.choose("agree")
    assert chat.last_prompt.text.startswith(
        "(1/12)"
    )  # the time zone counts until the country is known
    await chat.choose("none")  # the two degree questions drop out
    assert chat.last_prompt.text.startswith("(2/10)")


def test_session_round_trips_through_json() -> None:
    session = Session(lang="zh", answers={"degree": "master"}, awaiting=Waiting(Kind.MENU))
    assert Session.from_json(session.to_json()) == session


def test_policy_matches_the_shipped_rules_for_a_plain_case() -> None:
    flows, _ = content()
    answers = {
        "degree": "bachelor",
        "degree_field_stem": True,
        "degree_from_recognized": False,
        "stem_work_at_recognized": False,
        "birth_date": dt.date(2000, 1, 1),
        "plan": "startup",
        "park": "other",
    }
    result = assess(flows, answers, dt.date(2026, 11, 25))
    assert not result.eligible
    academic = next(r for r in result.channel_results if r.id == "academic")
    assert len(academic.unmet) == 1  # only the recognised-institution rule fails


async def test_option_by_position_is_the_nth_option_of_the_current_prompt(
    chat: Chat, engine: Engine
) -> None:
    from kvisa.bot.messages import Inbound

    await chat.send("/start")
    await chat.choose("agree")
    prompt = chat.last_prompt.prompt
    await engine.handle(Inbound(chat.user, chat.at, option="#3", prompt=prompt))  # Master's
    assert (await chat.state())["answers"] == {"degree": "master"}  # type: ignore[index]
    await engine.handle(Inbound(chat.user, chat.at, option="#9", prompt=prompt + 1))  # out of range
    assert (await chat.state())["answers"] == {"degree": "master"}  # type: ignore[index]
