"""Deadlines and decision windows, pinned on the 2026 official calendar (worked out by hand)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.policy.timeline import build_timeline, event_problem
from tests.support import content

TODAY = dt.date(2026, 11, 25)
ANSWERS: dict[str, Any] = {
    "park": "other",
    "plan": "employed",
    "planned_application": dt.date(2026, 12, 1),
}


def timeline(events: dict[str, dt.date], answers: dict[str, Any] = ANSWERS, **kw: Any):  # type: ignore[no-untyped-def]
    flows, _ = content()
    return build_timeline(flows, answers, events, TODAY, **kw)


def deadline(tl, name):  # type: ignore[no-untyped-def]
    return next(d for d in tl.deadlines if d.id == name)


def estimate(tl, name):  # type: ignore[no-untyped-def]
    return next(e for e in tl.estimates if e.id == name)


def test_deadline_on_national_day_moves_to_the_last_working_day_before() -> None:
    tl = timeline({"visa_applied": dt.date(2026, 9, 1), "entered": dt.date(2026, 9, 16)})
    apply = deadline(tl, "work_permit_apply")
    assert apply.date == dt.date(2026, 10, 1) and apply.act_by == dt.date(2026, 9, 30)
    assert apply.office_closed and apply.closed_on_date and apply.holiday_zh
    assert not apply.estimated


def test_work_permit_decision_counts_the_october_make_up_saturday() -> None:
    # Submitted Tue 29 Sep: 30 Sep, 8, 9, 10 (Saturday worked), 12, 13, 14 -> 7th;
    # 15, 16, 19 -> 10th.
    tl = timeline({"entered": dt.date(2026, 9, 20), "work_permit_submitted": dt.date(2026, 9, 29)})
    window = estimate(tl, "work_permit_decision")
    assert (window.earliest, window.latest) == (dt.date(2026, 10, 14), dt.date(2026, 10, 19))


def test_visa_decision_abroad_does_not_count_chinas_make_up_saturday() -> None:
    # The consulate abroad works Monday to Friday. Applied Fri 9 Oct 2026: China's calendar
    # would count Saturday 10 Oct (worked for National Day) and give 13-15 Oct; abroad it is
    # 12, 13, 14 -> 3rd, 16 -> 5th.
    tl = timeline({"visa_applied": dt.date(2026, 10, 9)})
    window = estimate(tl, "visa_decision")
    assert (window.earliest, window.latest) == (dt.date(2026, 10, 14), dt.date(2026, 10, 16))
    assert window.note and "estimate" in window.note


def test_visa_decision_abroad_ignores_chinas_holidays_and_unpublished_years() -> None:
    # Applied Thu 12 Feb 2026, just before the Spring Festival: Monday to Friday all the same.
    spring = estimate(timeline({"visa_applied": dt.date(2026, 2, 12)}), "visa_decision")
    assert (spring.earliest, spring.latest) == (dt.date(2026, 2, 17), dt.date(2026, 2, 19))
    # A window in 2027 depends on no Chinese schedule: not marked with ≈.
    late = timeline({}, {**ANSWERS, "planned_application": dt.date(2027, 3, 1)})
    assert not estimate(late, "visa_decision").estimated and not late.estimated


def test_deadline_in_the_spring_festival_falls_back_to_the_make_up_saturday() -> None:
    tl = timeline({"visa_applied": dt.date(2026, 1, 20), "entered": dt.date(2026, 2, 1)})
    apply = deadline(tl, "work_permit_apply")
    assert apply.date == dt.date(2026, 2, 16) and apply.act_by == dt.date(2026, 2, 14)


def test_calendar_day_counts_into_an_unpublished_year_are_exact() -> None:
    # 15 and 180 calendar days need no holiday schedule: both fall on weekdays of 2027.
    tl = timeline({"visa_applied": dt.date(2026, 12, 1), "entered": dt.date(2026, 12, 20)})
    apply, stay = deadline(tl, "work_permit_apply"), deadline(tl, "stay_limit")
    assert apply.date == apply.act_by == dt.date(2027, 1, 4) and not apply.estimated
    assert stay.date == stay.act_by == dt.date(2027, 6, 18) and not stay.estimated
    assert not tl.estimated


def test_moving_an_act_by_day_through_an_unpublished_year_is_estimated() -> None:
    # Entered 19 Dec 2026: day 15 is Sunday 3 Jan 2027, and which days around New Year 2027 are
    # off is not published yet, so "act by 31 Dec" is an estimate.
    tl = timeline({"visa_applied": dt.date(2026, 12, 1), "entered": dt.date(2026, 12, 19)})
    apply = deadline(tl, "work_permit_apply")
    assert apply.date == dt.date(2027, 1, 3) and apply.act_by == dt.date(2026, 12, 31)
    assert apply.estimated and tl.estimated


def test_working_day_counts_into_an_unpublished_year_are_estimated() -> None:
    events = {"entered": dt.date(2026, 12, 20), "work_permit_submitted": dt.date(2026, 12, 28)}
    window = estimate(timeline(events), "work_permit_decision")
    assert window.latest.year == 2027 and window.estimated


def test_zhangjiang_work_permit_is_faster() -> None:
    events = {"entered": dt.date(2026, 11, 2), "work_permit_submitted": dt.date(2026, 11, 2)}
    normal = estimate(timeline(events), "work_permit_decision")
    fast = estimate(timeline(events, {**ANSWERS, "park": "zhangjiang"}), "work_permit_decision")
    assert (fast.earliest, fast.latest) == (dt.date(2026, 11, 5), dt.date(2026, 11, 9))
    assert (normal.earliest, normal.latest) == (dt.date(2026, 11, 11), dt.date(2026, 11, 16))


def test_lingang_supplement_needs_lingang_and_deficiency_tolerance() -> None:
    events = {"entered": dt.date(2026, 9, 28), "work_permit_submitted": dt.date(2026, 9, 30)}
    lingang = {**ANSWERS, "park": "lingang"}
    ids = lambda tl: {d.id for d in tl.deadlines}  # noqa: E731
    assert "lingang_supplement" not in ids(timeline(events, lingang))
    assert "lingang_supplement" not in ids(timeline(events, deficiency_tolerance=True))
    supplement = deadline(
        timeline(events, lingang, deficiency_tolerance=True), "lingang_supplement"
    )
    # 30 Sep + 3 working days: 8 Oct, 9 Oct, 10 Oct (make-up Saturday).
    assert supplement.date == dt.date(2026, 10, 10) == supplement.act_by


def test_stay_limit_ends_with_the_residence_permit_and_work_permit_deadline_is_met() -> None:
    events = {
        "entered": dt.date(2026, 9, 1),
        "work_permit_submitted": dt.date(2026, 9, 10),
        "work_permit_granted": dt.date(2026, 9, 20),
        "residence_permit_submitted": dt.date(2026, 9, 22),
        "residence_permit_granted": dt.date(2026, 9, 29),
    }
    tl = timeline(events)
    assert "stay_limit" not in {d.id for d in tl.deadlines}
    assert deadline(tl, "work_permit_apply").met
    assert [s.status for s in tl.steps] == ["done", "done", "done"]


def test_unknown_events_leave_their_deadlines_out() -> None:
    tl = timeline({})
    assert [d.id for d in tl.deadlines] == []
    assert [e.id for e in tl.estimates] == ["visa_decision"]


def test_passport_condition_is_the_last_application_date_before_the_application() -> None:
    # Valid for at least 6 months when applying: a passport expiring on 1 June 2027 allows
    # applying until 1 December 2026, a condition (no act-by, no reminder), exact.
    answers = {**ANSWERS, "passport_expiry": dt.date(2027, 6, 1)}
    passport = deadline(timeline({}, answers), "passport_apply_by")
    assert passport.kind == "condition" and not passport.estimated
    assert passport.date == passport.act_by == dt.date(2026, 12, 1) and passport.met
    later = {**answers, "planned_application": dt.date(2026, 12, 2)}
    assert not deadline(timeline({}, later), "passport_apply_by").met
    # Checked when applying: gone once the application (or the entry it implies) is reported.
    for reported in ({"visa_applied": dt.date(2026, 11, 20)}, {"entered": dt.date(2026, 11, 20)}):
        assert "passport_apply_by" not in {d.id for d in timeline(reported, answers).deadlines}


def test_an_estimate_for_a_step_already_passed_disappears() -> None:
    # Seen on the console: after reporting entry on 3 December, "Visa decision expected
    # Dec 8-10" was still listed after "Entered China Dec 3".
    answers = {**ANSWERS, "planned_application": dt.date(2026, 12, 3)}
    assert [e.id for e in timeline({}, answers).estimates] == ["visa_decision"]
    entered = timeline({"entered": dt.date(2026, 12, 3)}, answers)
    assert entered.estimates == ()
    events = {"entered": dt.date(2026, 9, 1), "work_permit_submitted": dt.date(2026, 9, 2)}
    assert [e.id for e in timeline(events).estimates] == ["work_permit_decision"]
    granted = timeline({**events, "residence_permit_submitted": dt.date(2026, 9, 20)})
    assert [e.id for e in granted.estimates] == ["residence_permit_decision"]


def test_reported_steps_must_keep_their_order_and_not_lie_in_the_future() -> None:
    flows, _ = content()
    applied = {"visa_applied": dt.date(2026, 10, 1)}
    assert event_problem(
        flows, applied, "entered", dt.date(2026, 9, 30), TODAY
    )  # before the application
    assert event_problem(flows, applied, "entered", dt.date(2026, 11, 26), TODAY)  # tomorrow
    assert event_problem(flows, {}, "entered", dt.date(2020, 1, 1), TODAY)  # years ago
    assert event_problem(
        flows, {"entered": dt.date(2026, 10, 5)}, "visa_applied", dt.date(2026, 10, 6), TODAY
    )
    assert event_problem(flows, applied, "entered", dt.date(2026, 10, 1), TODAY) is None


@given(st.dates(dt.date(2025, 1, 1), dt.date(2026, 11, 25)))
def test_act_by_is_a_working_day_on_or_before_the_deadline(entered: dt.date) -> None:
    flows, _ = content()
    tl = build_timeline(flows, ANSWERS, {"entered": entered}, TODAY)
    for item in tl.deadlines:
        assert item.act_by <= item.date and flows.calendar.is_working_day(item.act_by)
    for window in tl.estimates:
        assert window.earliest <= window.latest
