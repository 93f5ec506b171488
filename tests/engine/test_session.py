"""Session <-> JSON: the hand-written copy must give exactly what dataclasses.asdict gave, for
every field, and never share a dict or list between a session and its JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.engine.session import Session

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)
iso_texts = st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=4)
optional_text = st.none() | st.text(max_size=12)

sessions = st.builds(
    Session,
    lang=st.sampled_from(["en", "zh"]),
    lang_chosen=st.booleans(),
    consent_at=optional_text,
    answers=json_objects,
    awaiting=st.none() | json_objects,
    edit=st.none()
    | st.fixed_dictionaries(
        {"queue": st.lists(st.text(max_size=6), max_size=4), "before": st.none() | json_objects}
    ),
    prompt=st.integers(0, 10_000),
    finished=st.booleans(),
    ticked=st.lists(st.text(max_size=6), max_size=5),
    events=iso_texts,
    deficiency_tolerance=st.none() | st.booleans(),
    prefill=iso_texts,
    last_seen=optional_text,
    inactive=st.booleans(),
    reminders_paused=st.booleans(),
    snoozed=iso_texts,
    reminders_dismissed=iso_texts,
    reminders_sent=iso_texts,
    schema=st.integers(0, 3),
)


def containers(value: Any) -> list[int]:
    """The ids of every dict and list inside `value`, itself included."""
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in containers(v))]
    return []


@given(sessions)
def test_to_json_is_what_asdict_gives_for_every_field(session: Session) -> None:
    data = session.to_json()

    assert data == dataclasses.asdict(session)
    assert list(data) == [f.name for f in dataclasses.fields(Session)]
    json.dumps(data)  # storable as it is


@given(sessions)
def test_a_session_round_trips_through_json(session: Session) -> None:
    assert Session.from_json(session.to_json()) == session


@given(sessions)
def test_to_json_shares_no_dict_or_list_with_the_session(session: Session) -> None:
    data = session.to_json()

    assert not set(containers(data)) & set(containers(vars(session)))


@given(sessions)
def test_from_json_shares_no_dict_or_list_with_the_stored_data(session: Session) -> None:
    data = session.to_json()

    restored = Session.from_json(data)

    assert not set(containers(data)) & set(containers(vars(restored)))


def test_a_turn_changing_its_session_in_place_leaves_the_stored_data_alone() -> None:
    stored = Session(answers={"degree": "master"}, ticked=["passport"]).to_json()
    before = json.loads(json.dumps(stored))

    session = Session.from_json(stored)
    session.answers["park"] = "lingang"
    session.ticked.append("diploma")

    assert stored == before


def test_from_json_ignores_fields_it_does_not_know() -> None:
    assert Session.from_json({"lang": "zh", "retired_field": [1, 2]}) == Session(lang="zh")
