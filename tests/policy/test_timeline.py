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


def test_visa_decision_skips_the_spring_festival() -> None:
    # Applied Thu 12 Feb: 13, 14 (Saturday worked), then closed 15-23 Feb: 24 -> 3rd, 26 -> 5th.
    tl = timeline({"visa_applied": dt.date(2026, 2, 12)})
    window = estimate(tl, "visa_decision")
    assert (window.earliest, window.latest) == (dt.date(2026, 2, 24), dt.date(2026, 2, 26))


def test_deadline_in_the_spring_festival_falls_back_to_the_make_up_saturday() -> None:
    tl = timeline({"visa_applied": dt.date(2026, 1, 20), "entered": dt.date(2026, 2, 1)})
    apply = deadline(tl, "work_permit_apply")
    assert apply.date == dt.date(2026, 2, 16) and apply.act_by == dt.date(2026, 2, 14)


def test_dates_in_a_year_without_official_schedule_are_estimated() -> None:
    tl = timeline({"visa_applied": dt.date(2026, 12, 1), "entered": dt.date(2026, 12, 20)})
    apply = deadline(tl, "work_permit_apply")
    assert apply.date == dt.date(2027, 1, 4) and apply.estimated
    assert (
        deadline(tl, "stay_limit").date == dt.date(2027, 6, 18)
        and deadline(tl, "stay_limit").estimated
    )
    assert tl.estimated


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
    assert [d.id for d in tl.deadlines] == ["passport_valid_until"]
    assert [e.id for e in tl.estimates] == ["visa_decision"]
    assert deadline(tl, "passport_valid_until").date == dt.date(2027, 6, 1)


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
