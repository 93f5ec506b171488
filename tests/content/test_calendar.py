from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.content.calendar import WorkCalendar, add_weekdays, load_calendar
from kvisa.errors import FlowError, InputError

FLOWS = Path(__file__).resolve().parents[2] / "flows"
calendar = WorkCalendar()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def write_calendar(tmp_path: Path, text: str) -> Path:
    (tmp_path / "calendar.yaml").write_text(text, encoding="utf-8")
    return tmp_path


# --- the official 2026 schedule (State Council notice of November 2025) ---------------------


def test_installed_package_carries_the_2026_notice() -> None:
    # Guards _LAST_NOTICE: an older `holidays` would compute 2026 by rule, without these days.
    made_up = holidays.country_holidays("CN", years=2026).weekend_workdays
    expected = {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    assert expected <= made_up


def test_spring_festival_2026_closes_offices_from_feb_15_to_feb_23() -> None:
    assert not any(calendar.is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert calendar.is_working_day(date(2026, 2, 13))
    assert calendar.is_working_day(date(2026, 2, 24))


def test_make_up_saturdays_around_spring_festival_are_working_days() -> None:
    assert calendar.is_working_day(date(2026, 2, 14))
    assert calendar.is_working_day(date(2026, 2, 28))
    assert not calendar.is_working_day(date(2026, 2, 21))  # an ordinary Saturday


def test_deadline_counts_make_up_saturday_then_skips_spring_festival() -> None:
    thursday = date(2026, 2, 12)
    assert calendar.add_working_days(thursday, 1) == date(2026, 2, 13)
    assert calendar.add_working_days(thursday, 2) == date(2026, 2, 14)
    assert calendar.add_working_days(thursday, 3) == date(2026, 2, 24)


def test_national_day_2026_make_up_days_are_sep_20_and_oct_10() -> None:
    assert calendar.is_working_day(date(2026, 9, 20))  # Sunday
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday
    assert not any(calendar.is_working_day(d) for d in days(date(2026, 10, 1), date(2026, 10, 7)))


def test_deadline_skips_national_day_holiday() -> None:
    assert calendar.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert calendar.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)


def test_deadline_on_a_holiday_moves_back_to_last_working_day_before_it() -> None:
    assert calendar.last_working_day_on_or_before(date(2026, 10, 5)) == date(2026, 9, 30)
    assert calendar.last_working_day_on_or_before(date(2026, 2, 20)) == date(2026, 2, 14)
    assert calendar.last_working_day_on_or_before(date(2026, 3, 4)) == date(2026, 3, 4)


def test_act_by_deadline_may_land_on_a_make_up_saturday() -> None:
    entered = date(2026, 1, 30)
    assert calendar.last_working_day_on_or_before(entered + timedelta(15)) == date(2026, 2, 14)


def test_working_days_between_counts_days_after_start_up_to_end() -> None:
    assert calendar.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert calendar.working_days_between(date(2026, 2, 24), date(2026, 2, 13)) == -2
    assert calendar.working_days_between(date(2026, 3, 2), date(2026, 3, 2)) == 0


def test_zero_working_days_is_start_or_the_next_working_day() -> None:
    assert calendar.add_working_days(date(2026, 3, 4), 0) == date(2026, 3, 4)
    assert calendar.add_working_days(date(2026, 10, 1), 0) == date(2026, 10, 8)


def test_negative_working_day_count_is_refused() -> None:
    with pytest.raises(InputError):
        calendar.add_working_days(date(2026, 3, 4), -1)


def test_holiday_name_in_english_and_chinese() -> None:
    assert calendar.holiday_name(date(2026, 10, 1)) == "National Day"
    assert calendar.holiday_name(date(2026, 10, 1), "zh") == "国庆节"
    assert calendar.holiday_name(date(2026, 2, 17)) == "Chinese New Year (Spring Festival)"
    assert calendar.holiday_name(date(2026, 2, 14)) is None  # make-up Saturday
    assert calendar.holiday_name(date(2026, 3, 4)) is None


def test_make_up_day_announced_by_next_years_notice_counts() -> None:
    # The 2002 notice made Saturday 2001-12-29 a working day for the New Year break.
    assert calendar.is_working_day(date(2001, 12, 29))
    assert not calendar.is_working_day(date(2002, 1, 3))


# --- official or estimated --------------------------------------------------------------------


def test_2026_is_official_and_2027_is_not_yet() -> None:
    assert calendar.is_official(2026)
    assert not calendar.is_official(2027)


def test_deadline_crossing_into_unpublished_2027_is_estimated() -> None:
    start = date(2026, 12, 28)
    due = calendar.add_working_days(start, 5)
    assert due.year == 2027
    assert not calendar.span_is_official(start, due)
    assert calendar.span_is_official(date(2026, 12, 1), date(2026, 12, 18))


def test_late_december_stays_estimated_until_next_years_notice() -> None:
    assert calendar.span_is_official(date(2026, 12, 24), date(2026, 12, 24))
    assert not calendar.span_is_official(date(2026, 12, 24), date(2026, 12, 25))


def test_year_without_published_schedule_is_estimated() -> None:
    start = date(2031, 3, 3)
    assert not calendar.is_official(2031)
    assert not calendar.span_is_official(start, calendar.add_working_days(start, 5))


def test_adding_ten_working_days_takes_microseconds() -> None:
    start = date(2026, 9, 25)
    calendar.add_working_days(start, 10)  # warm the per-year cache
    began = time.perf_counter()
    for _ in range(2000):
        calendar.add_working_days(start, 10)
    assert (time.perf_counter() - began) / 2000 < 100e-6


# --- flows/calendar.yaml ----------------------------------------------------------------------

OVERRIDE_2027 = """\
years:
  - year: 2027
    official: true
    notice: "test data, not the real 2027 schedule"
    holidays:
      - en: New Year's Day
        zh: 元旦
        from: 2026-12-31
        to: 2027-01-01
        workdays: [2026-12-26]
      - en: Spring Festival
        zh: 春节
        from: 2027-02-05
        to: 2027-02-11
        workdays: [2027-02-20]
"""


def test_shipped_calendar_file_loads_and_adds_no_unverified_year() -> None:
    shipped = load_calendar(FLOWS)
    assert shipped.is_official(2026)
    assert not shipped.is_official(2027)


def test_override_year_becomes_official_and_its_schedule_is_used(tmp_path: Path) -> None:
    overridden = load_calendar(write_calendar(tmp_path, OVERRIDE_2027))
    assert overridden.is_official(2027)
    assert not overridden.is_working_day(date(2027, 2, 9))
    assert overridden.is_working_day(date(2027, 2, 20))
    assert overridden.holiday_name(date(2027, 2, 9)) == "Spring Festival"
    assert overridden.holiday_name(date(2027, 2, 9), "zh") == "春节"
    assert overridden.span_is_official(date(2026, 12, 28), date(2027, 1, 5))


def test_override_replaces_the_package_for_its_year(tmp_path: Path) -> None:
    overridden = load_calendar(write_calendar(tmp_path, OVERRIDE_2027))
    # The package's rule-based 2027 closes 1 October; this override lists no National Day.
    assert not calendar.is_working_day(date(2027, 10, 1))
    assert overridden.is_working_day(date(2027, 10, 1))


def test_override_new_year_break_reaches_back_into_december(tmp_path: Path) -> None:
    overridden = load_calendar(write_calendar(tmp_path, OVERRIDE_2027))
    assert not overridden.is_working_day(date(2026, 12, 31))
    assert overridden.is_working_day(date(2026, 12, 26))
    assert calendar.is_working_day(date(2026, 12, 31))


def test_override_also_replaces_the_december_days_its_year_reached_back_into(
    tmp_path: Path,
) -> None:
    text = "years:\n  - year: 2002\n    official: true\n    holidays: []\n"
    overridden = load_calendar(write_calendar(tmp_path, text))
    assert not overridden.is_working_day(date(2001, 12, 29))


def test_override_declared_unofficial_stays_estimated(tmp_path: Path) -> None:
    text = OVERRIDE_2027.replace("official: true", "official: false")
    overridden = load_calendar(write_calendar(tmp_path, text))
    assert not overridden.is_official(2027)
    assert overridden.is_working_day(date(2027, 2, 20))


def test_empty_calendar_file_means_package_only(tmp_path: Path) -> None:
    assert load_calendar(write_calendar(tmp_path, "# nothing yet\n")).is_official(2026)


HEAD = "years:\n  - year: 2027\n    official: true\n    holidays:\n"  # lines 1-4
HOLIDAY = "      - en: Spring Festival\n        zh: 春节\n"  # lines 5-6


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("years: []\nyaers: []\n", 2, id="unknown-top-key"),
        pytest.param("years: []\n" + "years: []\n", 2, id="duplicate-key"),
        pytest.param(
            "years:\n  - year: 2027\n    offical: true\n    holidays: []\n",
            3,
            id="unknown-year-key",
        ),
        pytest.param("years:\n  - year: 2027\n    holidays: []\n", 2, id="missing-official"),
        pytest.param(
            'years:\n  - year: "2027"\n    official: true\n    holidays: []\n',
            2,
            id="year-not-a-number",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2027-02-05\n        to: 2027-02-11\n"
            "        colour: red\n",
            9,
            id="unknown-holiday-key",
        ),
        pytest.param(
            HEAD + HOLIDAY + '        from: "2027-13-01"\n        to: 2027-02-11\n',
            7,
            id="malformed-quoted-date",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2027-02-05\n        to: 2027-02-30\n",
            8,
            id="impossible-unquoted-date",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: next week\n        to: 2027-02-11\n", 7, id="not-a-date"
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2027-02-11\n        to: 2027-02-05\n",
            8,
            id="end-before-start",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2028-02-05\n        to: 2028-02-11\n",
            7,
            id="date-outside-its-year",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2027-02-05\n        to: 2027-02-11\n"
            "        workdays: [2027-02-22]\n",
            9,
            id="make-up-day-not-a-weekend",
        ),
        pytest.param(
            HEAD + HOLIDAY + "        from: 2027-02-05\n        to: 2027-02-11\n"
            "        workdays: [2027-02-06]\n",
            9,
            id="make-up-day-inside-holiday",
        ),
        pytest.param(
            HEAD
            + HOLIDAY
            + "        from: 2027-02-05\n        to: 2027-02-11\n"
            + HOLIDAY
            + "        from: 2027-02-10\n        to: 2027-02-12\n",
            11,
            id="overlapping-holidays",
        ),
        pytest.param(
            "years:\n  - year: 2027\n    official: true\n    holidays: []\n"
            "  - year: 2027\n    official: false\n    holidays: []\n",
            5,
            id="year-listed-twice",
        ),
    ],
)
def test_invalid_calendar_file_names_the_line_to_fix(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(FlowError) as caught:
        load_calendar(write_calendar(tmp_path, text))
    assert (caught.value.file, caught.value.line) == ("flows/calendar.yaml", line)


def test_impossible_date_is_found_past_a_quoted_one(tmp_path: Path) -> None:
    text = HEAD + HOLIDAY + '        from: "2027-02-30"\n        to: 2027-02-31\n'
    with pytest.raises(FlowError) as caught:
        load_calendar(write_calendar(tmp_path, text))
    assert caught.value.line == 8


# --- properties over 2020..2035 ---------------------------------------------------------------

any_day = st.dates(date(2020, 1, 1), date(2035, 12, 31))
counts = st.integers(0, 60)


def test_working_days_match_the_package_day_by_day() -> None:
    package = holidays.country_holidays("CN", years=range(2020, 2036))
    mismatched = [
        d
        for d in days(date(2020, 1, 1), date(2035, 12, 31))
        if calendar.is_working_day(d) != package.is_working_day(d)
    ]
    assert mismatched == []


@given(any_day, counts)
def test_added_working_days_land_on_a_working_day_not_before_start(start: date, n: int) -> None:
    due = calendar.add_working_days(start, n)
    assert calendar.is_working_day(due)
    assert due > start if n >= 1 else due >= start


@given(any_day, counts)
def test_added_working_days_match_counting_day_by_day(start: date, n: int) -> None:
    day, left = start, n
    if n == 0:
        while not calendar.is_working_day(day):
            day += timedelta(1)
    while left:
        day += timedelta(1)
        left -= calendar.is_working_day(day)
    assert calendar.add_working_days(start, n) == day


@given(any_day, counts)
def test_working_days_between_inverts_adding_from_a_working_day(start: date, n: int) -> None:
    start = calendar.add_working_days(start, 0)
    assert calendar.working_days_between(start, calendar.add_working_days(start, n)) == n


@given(any_day)
def test_last_working_day_on_or_before_leaves_no_working_day_in_the_gap(day: date) -> None:
    last = calendar.last_working_day_on_or_before(day)
    assert calendar.is_working_day(last)
    assert last <= day
    assert not any(calendar.is_working_day(d) for d in days(last + timedelta(1), day))


@given(any_day, counts)
def test_more_working_days_never_give_an_earlier_date(start: date, n: int) -> None:
    earlier, later = calendar.add_working_days(start, n), calendar.add_working_days(start, n + 1)
    assert earlier < later if n >= 1 else earlier <= later


@given(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.integers(0, 30))
def test_weekdays_abroad_count_monday_to_friday_only(start: date, n: int) -> None:
    # An embassy or consulate abroad: China's make-up Saturdays are not its working days.
    day = add_weekdays(start, n)
    assert day.weekday() < 5
    between = [start + timedelta(days=i) for i in range(1, (day - start).days + 1)]
    counted = sum(d.weekday() < 5 for d in between)
    assert counted == n or (n == 0 and day >= start and counted <= 1)
    assert n == 0 or day > start


def test_weekdays_abroad_skip_chinas_make_up_saturday() -> None:
    assert WorkCalendar().add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)
    assert add_weekdays(date(2026, 10, 9), 1) == date(2026, 10, 12)
