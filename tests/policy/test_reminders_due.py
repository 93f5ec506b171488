"""What is due at a moment: on time, late (one message for several missed), the deadline
passed, the user's night, and the bilingual text. Pure functions, no service."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.i18n import SEPARATOR
from kvisa.bot.policy.reminders import outlook, plan_answers, plan_inputs, planned
from kvisa.bot.reminders import texts
from tests.reminders.conftest import MORNING, session
from tests.support import content

USER = "telegram:42"
SUBMITTED = dt.date(2026, 11, 5)  # work permit decision expected by 19 Nov: nudge on 20 Nov


def test_the_reminder_goes_out_on_time_at_9_in_shanghai() -> None:
    flows, _ = content()
    look = outlook(flows, USER, session(), MORNING[7])
    (delivery,) = look.deliveries
    assert (delivery.how, delivery.reminder.offset) == ("on_time", 7)
    assert look.next_at == MORNING[3]


def test_reminders_missed_while_down_become_one_late_message() -> None:
    flows, _ = content()
    back = MORNING[1] + dt.timedelta(
        hours=5
    )  # down from before the 7-day reminder until 14:00 the day before
    (delivery,) = outlook(flows, USER, session(), back).deliveries
    assert delivery.how == "late" and delivery.reminder.offset == 1
    assert len(delivery.covers) == 3  # the 7-, 3- and 1-day reminders are settled by it


def test_a_passed_deadline_gets_one_message_then_nothing() -> None:
    flows, _ = content()
    after = MORNING[0] + dt.timedelta(days=3)
    (delivery,) = outlook(flows, USER, session(), after).deliveries
    assert (
        delivery.how == "passed" and delivery.key == f"{USER}|passed|work_permit_apply|2026-12-04"
    )
    sent = {delivery.key: "passed", **{key: "covered" for key in delivery.covers}}
    assert outlook(flows, USER, session(reminders_sent=sent), after).deliveries == ()


def test_no_passed_message_when_a_reminder_of_that_date_got_through() -> None:
    flows, _ = content()
    sent = {f"{USER}|deadline|work_permit_apply|2026-12-04|7": "on_time"}
    assert (
        outlook(
            flows, USER, session(reminders_sent=sent), MORNING[0] + dt.timedelta(days=3)
        ).deliveries
        == ()
    )


def test_a_late_reminder_waits_for_the_morning_of_a_user_in_utc_minus_8() -> None:
    flows, _ = content()
    la = ZoneInfo("America/Los_Angeles")
    user = session(
        events={"work_permit_submitted": SUBMITTED},
        answers={"residence_country": "US", "time_zone": "America/Los_Angeles"},
    )
    night = dt.datetime(
        2026, 11, 20, 23, 30, tzinfo=la
    )  # the nudge was due at 09:00, the service was down
    look = outlook(flows, USER, user, night.astimezone(dt.UTC))
    assert look.deliveries == ()
    assert look.next_at is not None and look.next_at.astimezone(la) == dt.datetime(
        2026, 11, 21, 9, tzinfo=la
    )
    morning = outlook(flows, USER, user, look.next_at)
    assert [(d.how, d.reminder.kind) for d in morning.deliveries] == [("late", "nudge")]


def test_a_user_in_utc_plus_14_is_reminded_at_their_9_am() -> None:
    flows, _ = content()
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    user = session(
        events={"work_permit_submitted": SUBMITTED},
        answers={"residence_country": "KI", "time_zone": "Pacific/Kiritimati"},
    )
    look = outlook(flows, USER, user, dt.datetime(2026, 11, 19, tzinfo=dt.UTC))
    assert look.next_at == dt.datetime(2026, 11, 20, 9, tzinfo=kiritimati)  # 19:00 UTC on the 19th
    assert look.next_reminder is not None and look.next_reminder.kind == "nudge"


def test_a_reminder_due_long_before_the_user_last_wrote_is_not_caught_up() -> None:
    flows, _ = content()
    now = MORNING[1] + dt.timedelta(hours=4)
    chatted = (MORNING[1] + dt.timedelta(hours=3)).isoformat()  # e.g. reported the entry only then
    look = outlook(flows, USER, session(last_seen=chatted), now)
    assert look.deliveries == () and look.next_at == MORNING[0]
    just_before = (
        MORNING[1] + dt.timedelta(minutes=30)
    ).isoformat()  # the service was down meanwhile
    (delivery,) = outlook(flows, USER, session(last_seen=just_before), now).deliveries
    assert delivery.how == "late" and delivery.reminder.offset == 1


def test_paused_blocked_and_unconsented_users_get_nothing() -> None:
    flows, _ = content()
    for state in (
        session(reminders_paused=True),
        session(inactive=True),
        session(consent_at=None),
        None,
    ):
        look = outlook(flows, USER, state, MORNING[7])
        assert look.deliveries == () and look.next_at is None


def test_the_message_has_the_users_language_first_and_the_other_below() -> None:
    flows, catalogs = content()
    look = outlook(flows, USER, session(lang="zh"), MORNING[7])
    message = texts.message(
        flows, catalogs, "zh", look.deliveries[0], look.timeline, look.zone, MORNING[7]
    )
    chinese, english = message.text.split(SEPARATOR)
    assert "2026年12月4日" in chinese and "December 4, 2026" in english
    assert [o.label for o in message.options] == [
        catalogs["zh"]("Done"),
        catalogs["zh"]("Remind me tomorrow"),
    ]


def test_a_passed_deadline_sends_the_applicant_to_the_agency_not_to_unnamed_offices() -> None:
    # The guide names no office to turn to after a missed deadline; the message used to send
    # the applicant to "the Exit-Entry Administration or your employer's HR".
    flows, catalogs = content()
    after = MORNING[0] + dt.timedelta(days=3)
    look = outlook(flows, USER, session(), after)
    message = texts.message(
        flows, catalogs, "en", look.deliveries[0], look.timeline, look.zone, after
    )
    english, chinese = message.text.split(SEPARATOR)
    assert "the agency" in english and "Exit-Entry" not in english and "HR" not in english
    assert "本机构" in chinese and "出入境" not in chinese


# --- what a turn must change for the reminders to move ----------------------------------------

FLOWS, _ = content()
READ = plan_answers(FLOWS)
SAMPLES = {
    "date": ["1998-04-27", "2026-10-01", "2026-11-20"],
    "country": ["DE", "US", "CN", "Germany"],
    "text": ["x"],
    "zone": ["America/Los_Angeles", "America/New_York"],
}


def values_of(question_id: str) -> list[str]:
    question = FLOWS.question(question_id)
    return [o.id for o in question.options] or SAMPLES[question.kind]


answers_strategy = st.fixed_dictionaries(
    {}, optional={q.id: st.sampled_from(values_of(q.id)) for q in FLOWS.questions}
)
events_strategy = st.dictionaries(
    st.sampled_from([e.id for e in FLOWS.timeline.events]),
    st.dates(dt.date(2026, 9, 1), dt.date(2026, 11, 24)),
    max_size=4,
)


def test_the_plan_reads_the_answers_its_rules_name() -> None:
    # passport_expiry: the passport condition is counted back from it (never reminded).
    assert {
        "planned_application",
        "park",
        "residence_country",
        "time_zone",
        "passport_expiry",
    } == READ


@given(
    answers_strategy,
    events_strategy,
    st.sampled_from(sorted(q.id for q in FLOWS.questions if q.id not in READ)),
    st.data(),
)
def test_an_answer_the_plan_does_not_read_never_moves_a_reminder(
    answers: dict[str, str], events: dict[str, dt.date], question_id: str, data: st.DataObject
) -> None:
    """What lets a turn skip planning: any other answer, given or changed, leaves the reminders
    (and the user's clock) exactly as they were, and plan_inputs() sees no change either."""
    state = session(events=events, answers=answers)
    changed = session(
        events=events,
        answers={**answers, question_id: data.draw(st.sampled_from(values_of(question_id)))},
    )
    assert plan_inputs(state, READ) == plan_inputs(changed, READ)
    today = dt.date(2026, 11, 25)
    try:
        expected = planned(FLOWS, state, today)
    except (
        KeyError,
        ValueError,
        TypeError,
    ):  # answers the plan cannot read yet: neither may the changed
        with pytest.raises((KeyError, ValueError, TypeError)):
            planned(FLOWS, changed, today)
        return
    zone, timeline, reminders = planned(FLOWS, changed, today)
    assert (zone, timeline.deadlines, timeline.estimates, reminders) == (
        expected[0],
        expected[1].deadlines,
        expected[1].estimates,
        expected[2],
    )
