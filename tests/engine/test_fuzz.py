"""Random sequences of messages, buttons and commands: every input gets a reply, the state
stays valid, and no control character or terminal escape that was typed is echoed or stored."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvisa.bot.content.model import Flows
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.policy.answers import answer_value
from kvisa.bot.policy.eligibility import facts_of
from kvisa.bot.policy.zones import zone_choices
from kvisa.bot.session import Kind, Session
from kvisa.identity import UserKey
from tests.support import NOON_SHANGHAI, content

USER = UserKey("console", "fuzz")
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

commands = st.sampled_from(
    [
        "/start",
        "/start lingang",
        "/start zhangjiang",
        "/help",
        "/back",
        "/edit",
        "/checklist",
        "/lang",
        "/lang zh",
        "/reset",
        "/mydata",
        "/delete",
        "/faq",
        "/parks",
        "/bogus",
        "/",
        "/START@KVisaBot",
        "/reminders",
    ]
)
texts = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "2",
            "3",
            "12",
            "99",
            "0",
            "-1",
            "１",
            "yes",
            "No",
            "是",
            "否",
            "today",
            "1998-04-27",
            "1990-02-31",
            "0199-01-01",
            "2099-01-01",
            "2027-06-30",
            "1998年4月27日",
            "27.04.1998",
            "Germany",
            "德国",
            "DE",
            "usa",
            "Atlantis",
            "😀😀",
            "🇨🇳",
            "x" * 10_000,
            "Master's",
            "硕士",
            "lingang",
            "\u200b",
            "\n\n",
            "United States",
            "美国",
            "RU",
            "Kiribati",
            "rem:pause",
            "rem:done:work_permit_apply",
            "rem:later:nowhere",
            "rem:",
        ]
    ),
    st.text(max_size=40),
)
# Any character, controls and lone surrogates included, with terminal escape sequences mixed in.
escapes = st.sampled_from(
    ["\x1b[31m", "\x1b[0m", "\x1b]0;title\x07", "\x1b[2J", "\x9b1m", "\x1bP1;2|x\x1b\\", "\x1b"]
)
hostile = st.lists(
    st.one_of(escapes, st.text(st.characters(exclude_categories=()), max_size=8), texts), max_size=6
).map("".join)
# ("pick", n): press the n-th button of the last prompt; ("stale", id): a button from long ago.
actions = st.one_of(
    commands.map(lambda c: ("text", c)),
    texts.map(lambda t: ("text", t)),
    hostile.map(lambda t: ("text", t)),
    hostile.map(lambda t: ("text", "/" + t)),  # an unknown command's name is echoed
    commands.flatmap(lambda c: hostile.map(lambda t: ("text", f"{c} {t}"))),
    st.integers(0, 15).map(lambda n: ("pick", n)),
    st.sampled_from(
        [
            "agree",
            "none",
            "yes",
            "_today",
            "passport",
            "zh",
            "America/Chicago",
            "rem:resume",
            "rem:later:work_permit_apply",
            "rem:bogus",
        ]
    ).map(lambda o: ("stale", o)),
)


def clean_everywhere(data: dict[str, Any] | None, replies: list[Outbound]) -> None:
    """Nothing stored or shown holds a control character but the newline, nor a lone surrogate
    (which no storage can encode)."""
    shown = [o.text for o in replies] + [option.label for o in replies for option in o.options]
    for text in [json.dumps(data, ensure_ascii=False), *shown]:
        assert not UNSAFE.search(text), (text, replies)


def check_state(flows: Flows, data: dict[str, Any] | None) -> None:
    if data is None:
        return
    json.dumps(data)  # storable
    session = Session.from_json(data)
    question_ids = {q.id for q in flows.questions}
    assert set(session.answers) <= question_ids
    if not session.consented:
        assert session.answers == {}
    values = {}
    for question in flows.questions:
        if question.id not in session.answers:
            continue
        value = session.answers[question.id]
        if question.options:
            assert value in {o.value for o in question.options}
        elif question.kind == "date":
            dt.date.fromisoformat(value)
        elif question.kind == "country":
            assert len(value) == 2 and value.isupper()
        elif question.kind == "zone":  # one of the clocks of the country of residence
            assert value in {c.zone for c in zone_choices(session.answers["residence_country"])}
        # every kept answer still applies given the answers before it
        assert question.when is None or question.when.holds(facts_of(flows, values)), question.id
        values[question.id] = answer_value(question, value)
    if session.awaiting is not None and session.awaiting.kind is Kind.QUESTION:
        assert session.awaiting.subject in question_ids
    assert Session.from_json(data).to_json() == data  # the pending prompt reads back as stored
    assert set(session.ticked) <= {i.id for i in flows.items}
    assert session.lang in ("en", "zh")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=40), st.sampled_from([None, "en", "zh-hans"]))
def test_every_input_gets_a_reply_and_state_stays_valid(
    steps: list[tuple[str, Any]], hint: str | None
) -> None:
    flows, catalogs = content()
    engine = Engine(flows, catalogs, storage=None)  # type: ignore[arg-type]  # pure turns only
    data: dict[str, Any] | None = None
    last: list[Outbound] = []
    at = NOON_SHANGHAI
    for kind, value in steps:
        at += dt.timedelta(minutes=1)
        if kind == "text":
            inbound = Inbound.from_text(USER, value, at, hint)
        elif kind == "pick":
            prompts = [o for o in last if o.options]
            if not prompts or value >= len(prompts[-1].options):
                continue
            prompt = prompts[-1]
            inbound = Inbound(
                USER, at, option=prompt.options[value].id, prompt=prompt.prompt, lang_hint=hint
            )
        else:
            inbound = Inbound(USER, at, option=value, prompt=0, lang_hint=hint)
        before = data
        data, last = engine.turn(data, inbound)
        assert last and all(o.text.strip() for o in last), (inbound, last)
        check_state(flows, data)
        clean_everywhere(data, last)
        if kind == "stale" and before is not None and data is not None:
            assert data["answers"] == before["answers"]


@settings(max_examples=100, deadline=None)
@given(st.one_of(texts, hostile))
def test_bad_input_to_a_question_leaves_answers_unchanged_or_records_a_valid_one(text: str) -> None:
    flows, catalogs = content()
    engine = Engine(flows, catalogs, storage=None)  # type: ignore[arg-type]
    data, _ = engine.turn(None, Inbound.from_text(USER, "/start", NOON_SHANGHAI))
    data, _ = engine.turn(data, Inbound(USER, NOON_SHANGHAI, option="agree"))
    for option in ("master", "yes", "yes", "no"):  # degree, STEM, recognised, STEM work
        data, _ = engine.turn(data, Inbound(USER, NOON_SHANGHAI, option=option))
    assert data and data["awaiting"] == {"kind": "question", "id": "birth_date"}
    after, replies = engine.turn(data, Inbound.from_text(USER, text, NOON_SHANGHAI))
    assert replies
    check_state(flows, after)
    clean_everywhere(after, replies)
    assert after is not None
    if "birth_date" in after["answers"]:
        born = dt.date.fromisoformat(after["answers"]["birth_date"])
        assert dt.date(1926, 11, 25) <= born <= dt.date(2026, 11, 25)
    else:
        assert after["answers"] == data["answers"]
