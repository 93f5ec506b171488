"""What is due for a stored record: by its dates, never failing on what is stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.retention.rules import Due, Rules, due, erased_on, months_before

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
RULES = Rules(months=18, notice=dt.timedelta(days=30))


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).isoformat()


CONSENTED = {"consent_at": "2024-01-01T00:00:00+00:00"}


def test_an_applicant_heard_from_within_the_months_is_kept() -> None:
    assert due({**CONSENTED, "last_seen": ago(days=500)}, NOW, RULES) is Due.KEEP


def test_an_applicant_silent_for_the_months_is_to_be_told() -> None:
    assert due({**CONSENTED, "last_seen": ago(days=550)}, NOW, RULES) is Due.TELL


def test_a_told_applicant_waits_the_notice_days_then_is_erased() -> None:
    told = {**CONSENTED, "last_seen": ago(days=600)}
    assert due({**told, "retention_notice_at": ago(days=29)}, NOW, RULES) is Due.WAIT
    assert due({**told, "retention_notice_at": ago(days=30)}, NOW, RULES) is Due.ERASE


def test_writing_after_the_notice_starts_a_new_silence() -> None:
    data = {**CONSENTED, "last_seen": ago(days=550), "retention_notice_at": ago(days=700)}
    assert due(data, NOW, RULES) is Due.TELL


def test_a_record_without_consent_older_than_a_day_is_erased() -> None:
    assert due({"last_seen": ago(hours=25)}, NOW, RULES) is Due.UNCONSENTED
    assert due({"last_seen": ago(hours=23)}, NOW, RULES) is Due.KEEP
    assert due({"awaiting": {"kind": "consent"}}, NOW, RULES) is Due.UNCONSENTED


def test_an_applicant_without_last_seen_counts_from_consent() -> None:
    assert due({"consent_at": ago(days=600)}, NOW, RULES) is Due.TELL
    assert due({"consent_at": ago(days=10)}, NOW, RULES) is Due.KEEP


def test_months_are_calendar_months_ending_on_the_last_day() -> None:
    assert months_before(dt.datetime(2026, 8, 31, 9, tzinfo=dt.UTC), 18) == dt.datetime(
        2025, 2, 28, 9, tzinfo=dt.UTC
    )
    assert months_before(NOW, 12) == NOW.replace(year=2025)


def test_the_erasure_day_is_the_shanghai_date_after_the_notice_days() -> None:
    late_evening_utc = dt.datetime(2026, 11, 24, 20, tzinfo=dt.UTC)  # 04:00 on the 25th there
    assert erased_on(late_evening_utc, RULES) == dt.date(2026, 12, 25)


def test_a_notice_time_at_the_end_of_the_calendar_is_no_error() -> None:
    data = {**CONSENTED, "last_seen": ago(days=600), "retention_notice_at": "9999-12-31T00:00"}
    assert due(data, NOW, RULES) is Due.WAIT


stored = st.none() | st.booleans() | st.integers() | st.text() | st.datetimes().map(str)
records = st.fixed_dictionaries(
    {},
    optional={
        "consent_at": stored,
        "last_seen": stored,
        "retention_notice_at": stored,
        "lang": stored,
    },
)


clock_times = st.datetimes(  # the clock is ours; the stored values are anything
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)


@given(data=records, now=clock_times)
def test_any_stored_dates_give_a_verdict_and_never_an_error(
    data: dict[str, Any], now: dt.datetime
) -> None:
    assert due(data, now, RULES) in Due


@given(
    now=st.datetimes(min_value=dt.datetime(1000, 1, 1), timezones=st.just(dt.UTC)),
    months=st.integers(1, 120),
)
def test_months_before_goes_back_at_most_a_month_of_days_per_month(
    now: dt.datetime, months: int
) -> None:
    earlier = months_before(now, months)
    assert now - dt.timedelta(days=31 * months) <= earlier < now
    assert earlier.time() == now.time()
