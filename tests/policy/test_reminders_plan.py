"""When reminders go out: offsets from flows, 09:00 in the user's zone, never in quiet hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.policy.reminders import civil_time, deliverable, plan, user_zone
from kvisa.bot.policy.timeline import build_timeline
from kvisa.bot.policy.zones import home_zone, zone_choices
from tests.support import content

TODAY = dt.date(2026, 11, 25)
LOS_ANGELES, KIRITIMATI = ZoneInfo("America/Los_Angeles"), ZoneInfo("Pacific/Kiritimati")
ANSWERS = {
    "park": "other",
    "plan": "employed",
    "planned_application": dt.date(2026, 12, 1),
    "residence_country": "US",
}


def timeline(events: dict[str, dt.date]):  # type: ignore[no-untyped-def]
    flows, _ = content()
    return build_timeline(flows, ANSWERS, events, TODAY)


def test_work_permit_deadline_is_reminded_7_3_1_and_0_days_before_at_9_shanghai() -> None:
    flows, _ = content()
    tl = timeline({"entered": dt.date(2026, 11, 20)})  # + 15 days = Sat 5 Dec -> act by Fri 4 Dec
    zone = user_zone(ANSWERS, tl.events, None)
    assert zone.key == "Asia/Shanghai"
    reminders = [r for r in plan(flows, tl, zone) if r.target == "work_permit_apply"]
    assert [r.offset for r in reminders] == [7, 3, 1, 0]
    local = [r.at.astimezone(zone) for r in reminders]
    assert [t.date() for t in local] == [
        dt.date(2026, 11, 27),
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 3),
        dt.date(2026, 12, 4),
    ]
    assert {t.hour for t in local} == {9}


def test_before_entry_the_zone_is_the_country_of_residence_or_the_users_choice() -> None:
    assert user_zone({"residence_country": "DE"}, {}, None).key == "Europe/Berlin"
    assert (
        user_zone({"residence_country": "US"}, {}, "America/Los_Angeles").key
        == "America/Los_Angeles"
    )
    assert (
        user_zone({"residence_country": "US"}, {"entered": TODAY}, "America/Los_Angeles").key
        == "Asia/Shanghai"
    )
    assert len(zone_choices("US")) > 1 and len(zone_choices("DE")) == 1
    assert home_zone("KI", "Pacific/Kiritimati") == "Pacific/Kiritimati"


def test_civil_time_keeps_9_am_across_daylight_saving_changes() -> None:
    before, after = (
        civil_time(dt.date(2026, 3, 7), LOS_ANGELES, 9),
        civil_time(dt.date(2026, 3, 9), LOS_ANGELES, 9),
    )
    assert (before.hour, after.hour) == (17, 16)  # UTC-8 then UTC-7
    assert before.astimezone(LOS_ANGELES).hour == after.astimezone(LOS_ANGELES).hour == 9


def test_utc_plus_14_gets_its_morning_a_day_ahead_of_utc() -> None:
    at = civil_time(dt.date(2026, 12, 4), KIRITIMATI, 9)
    assert at == dt.datetime(2026, 12, 3, 19, tzinfo=dt.UTC)


def test_a_late_reminder_in_quiet_hours_waits_for_the_morning() -> None:
    flows, _ = content()
    rules = flows.timeline.reminders
    night = dt.datetime(2026, 12, 4, 23, 30, tzinfo=LOS_ANGELES).astimezone(dt.UTC)
    assert deliverable(night, LOS_ANGELES, rules).astimezone(LOS_ANGELES) == dt.datetime(
        2026, 12, 5, 9, tzinfo=LOS_ANGELES
    )
    early = dt.datetime(2026, 12, 4, 6, 0, tzinfo=KIRITIMATI).astimezone(dt.UTC)
    assert deliverable(early, KIRITIMATI, rules).astimezone(KIRITIMATI).hour == 9
    noon = dt.datetime(2026, 12, 4, 12, tzinfo=LOS_ANGELES).astimezone(dt.UTC)
    assert deliverable(noon, LOS_ANGELES, rules) == noon


def test_met_deadlines_and_conditions_get_no_reminders_and_nudges_follow_estimates() -> None:
    flows, _ = content()
    tl = timeline({"entered": dt.date(2026, 11, 2), "work_permit_submitted": dt.date(2026, 11, 5)})
    reminders = plan(flows, tl, ZoneInfo("Asia/Shanghai"))
    targets = {r.target for r in reminders}
    assert "work_permit_apply" not in targets
    # The passport's last application date is a condition: listed, never reminded.
    answers = {**ANSWERS, "passport_expiry": dt.date(2027, 1, 1)}
    before = build_timeline(flows, answers, {}, TODAY)
    assert [d.id for d in before.deadlines] == ["passport_apply_by"]
    assert plan(flows, before, ZoneInfo("Asia/Shanghai")) == []
    nudge = next(r for r in reminders if r.kind == "nudge")
    assert nudge.target == "work_permit_decision"
    assert nudge.at.astimezone(ZoneInfo("Asia/Shanghai")).date() == next(
        e.latest for e in tl.estimates if e.id == "work_permit_decision"
    ) + dt.timedelta(days=1)


def test_snoozed_deadline_gets_one_more_reminder_and_keys_change_with_the_date() -> None:
    flows, _ = content()
    tl = timeline({"entered": dt.date(2026, 11, 20)})
    zone = ZoneInfo("Asia/Shanghai")
    snoozed = plan(flows, tl, zone, {"work_permit_apply": "2026-11-28"})
    assert len(snoozed) == len(plan(flows, tl, zone)) + 1
    moved = timeline({"entered": dt.date(2026, 11, 23)})  # act by Tue 8 Dec instead of Fri 4 Dec
    keys = {r.key("telegram:1") for r in plan(flows, tl, zone)}
    assert not keys & {
        r.key("telegram:1") for r in plan(flows, moved, zone) if r.target == "work_permit_apply"
    }


zones = st.sampled_from(
    [
        "America/Los_Angeles",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "Europe/London",
        "Asia/Shanghai",
        "Australia/Lord_Howe",
        "America/St_Johns",
        "Asia/Kathmandu",
    ]
)


@given(
    st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2028, 12, 31), timezones=st.just(dt.UTC)),
    zones,
)
def test_deliverable_is_never_in_quiet_hours_and_never_early(
    at: dt.datetime, zone_name: str
) -> None:
    flows, _ = content()
    rules = flows.timeline.reminders
    zone = ZoneInfo(zone_name)
    result = deliverable(at, zone, rules)
    assert result >= at
    assert rules.quiet_until <= result.astimezone(zone).hour < rules.quiet_from
    assert result - at < dt.timedelta(hours=14)


def test_reminders_of_one_deadline_stay_at_9_across_a_daylight_saving_change() -> None:
    flows, _ = content()
    tl = build_timeline(
        flows, ANSWERS, {"entered": dt.date(2027, 3, 2)}, TODAY
    )  # act by Wed 17 Mar
    deadline = next(d for d in tl.deadlines if d.id == "work_permit_apply")
    reminders = [r for r in plan(flows, tl, LOS_ANGELES) if r.target == "work_permit_apply"]
    local = [r.at.astimezone(LOS_ANGELES) for r in reminders]
    assert {t.hour for t in local} == {9}
    assert [t.date() for t in local] == [
        deadline.act_by - dt.timedelta(days=o) for o in (7, 3, 1, 0)
    ]
    # US clocks go forward on 14 Mar 2027: the same 09:00 is an hour earlier in UTC after it
    assert {r.at.hour for r in reminders if r.at.date() < dt.date(2027, 3, 14)} == {17}
    assert {r.at.hour for r in reminders if r.at.date() > dt.date(2027, 3, 14)} == {16}


def test_a_snoozed_nudge_is_asked_again_under_a_key_of_its_own() -> None:
    flows, _ = content()
    tl = timeline({"entered": dt.date(2026, 11, 2), "work_permit_submitted": dt.date(2026, 11, 5)})
    zone = ZoneInfo("Asia/Shanghai")
    (first,) = [r for r in plan(flows, tl, zone) if r.kind == "nudge"]
    again = first.at.astimezone(zone).date() + dt.timedelta(days=1)
    nudges = [
        r
        for r in plan(flows, tl, zone, {"work_permit_decision": again.isoformat()})
        if r.kind == "nudge"
    ]
    assert len(nudges) == 2 and nudges[1].at.astimezone(zone).date() == again
    assert nudges[0].key("u") != nudges[1].key("u")
