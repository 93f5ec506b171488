"""Session <-> JSON: every field stored, the pending prompt and an edit in progress in the shape
stored by earlier releases, and no dict or list shared between a session and its JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.session import Edit, Kind, Outcome, Session, Waiting

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
    awaiting=st.none()
    | st.builds(
        Waiting,
        kind=st.sampled_from(Kind),
        subject=st.text(max_size=6),
        day=st.none() | st.dates(),
    ),
    edit=st.none()
    | st.builds(
        Edit,
        queue=st.lists(st.text(max_size=6), max_size=4),
        before=st.none()
        | st.builds(
            Outcome,
            eligible=st.booleans(),
            channels=st.tuples(st.text(max_size=6)),
            checklist=st.lists(st.text(max_size=6), max_size=3).map(tuple),
        ),
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
)


def containers(value: Any) -> list[int]:
    """The ids of every dict and list inside `value`, itself included."""
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in containers(v))]
    return []


@given(sessions)
def test_to_json_stores_every_field_as_json(session: Session) -> None:
    data = session.to_json()

    assert list(data) == [f.name for f in dataclasses.fields(Session)]
    assert json.loads(json.dumps(data)) == data  # storable as it is, nothing lost on the way


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


@pytest.mark.parametrize(
    ("stored", "waiting"),
    [
        ({"kind": "question", "id": "degree"}, Waiting(Kind.QUESTION, "degree")),
        ({"kind": "confirm", "action": "delete"}, Waiting(Kind.CONFIRM, "delete")),
        (
            {"kind": "event_confirm", "id": "entered", "date": "2026-11-20"},
            Waiting(Kind.EVENT_CONFIRM, "entered", dt.date(2026, 11, 20)),
        ),
        ({"kind": "menu"}, Waiting(Kind.MENU)),
    ],
)
def test_the_pending_prompt_reads_and_writes_the_shape_earlier_releases_stored(
    stored: dict[str, str], waiting: Waiting
) -> None:
    session = Session.from_json({"awaiting": stored, "schema": 1})

    assert session.awaiting == waiting
    assert session.to_json()["awaiting"] == stored


@pytest.mark.parametrize(
    "stored",
    [{"kind": "retired_kind"}, {"id": "degree"}, {"kind": "event_confirm", "date": "x"}, "menu"],
)
def test_a_pending_prompt_this_release_cannot_read_is_dropped(stored: object) -> None:
    assert Session.from_json({"awaiting": stored}).awaiting is None


def test_an_edit_in_progress_reads_the_shape_earlier_releases_stored() -> None:
    stored = {"queue": ["park"], "before": {"eligible": True, "channels": ["a"], "checklist": []}}

    session = Session.from_json({"edit": stored})

    assert session.edit == Edit(["park"], Outcome(True, ("a",), ()))
    assert session.to_json()["edit"] == stored
