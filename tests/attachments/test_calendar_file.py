"""The .ics export, read back with a real iCalendar parser."""

from __future__ import annotations

import datetime as dt
import gettext
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from icalendar import Calendar

from kvisa.bot.attachments.calendar_file import ESTIMATED_NOTE, timeline_ics
from kvisa.bot.i18n import Catalogs, Lang, Text
from kvisa.bot.policy.timeline import Deadline, Estimate, Timeline

STAMP = dt.datetime(2026, 9, 1, 4, 0, tzinfo=dt.UTC)
USER = "telegram:4242"

# Until the catalog has them: the translations of this module's msgids.
ZH = {
    "K visa deadlines": "K字签证截止日期",
    "{title}: 3 days left to act": "{title}：还剩3天办理",
    "{title}: the last day to act is tomorrow": "{title}：明天是最后办理日",
    ESTIMATED_NOTE: "此为估算：当年的官方节假日安排尚未公布，日期可能变动。",
    "Deadline: {date}.": "截止日期：{date}。",
    "The deadline falls on {holiday}, when offices are closed: act by {act_by}.": (
        "截止日期适逢{holiday}，办事机构不办公：请最迟于{act_by}办理。"
    ),
    "Offices are closed on that day: act by {act_by}.": (
        "当天办事机构不办公：请最迟于{act_by}办理。"
    ),
    "Expected on {date}.": "预计日期：{date}。",
    "Expected between {earliest} and {latest}.": "预计在{earliest}至{latest}之间。",
    "This is the usual processing time, not a deadline.": "这是通常的办理时间，并非截止日期。",
    "Apply for the work permit": "申请工作许可",
    "Work permit decision expected": "工作许可预计审批时间",
}


class WithExtra(gettext.NullTranslations):
    """The real catalog, with a few translations it does not have yet."""

    def __init__(self, extra: dict[str, str], catalog: gettext.NullTranslations) -> None:
        super().__init__()
        self.extra = extra
        self.add_fallback(catalog)

    def gettext(self, message: str) -> str:
        return self.extra.get(message) or super().gettext(message)


@pytest.fixture(scope="module")
def text() -> Callable[[Lang], Text]:
    catalogs = Catalogs()

    def make(lang: Lang) -> Text:
        real = catalogs[lang]
        return replace(real, translations=WithExtra(ZH if lang == "zh" else {}, real.translations))

    return make


def deadline(
    id: str = "work_permit_apply",
    day: dt.date = dt.date(2026, 9, 16),
    act_by: dt.date | None = None,
    estimated: bool = False,
    holiday: str | None = None,
    holiday_zh: str | None = None,
) -> Deadline:
    return Deadline(
        id, "Apply for the work permit", day, act_by or day, estimated, holiday, holiday_zh
    )


def timeline(*deadlines: Deadline, estimates: tuple[Estimate, ...] = ()) -> Timeline:
    return Timeline(dt.date(2026, 9, 1), {}, (), deadlines, estimates)


def events(ics: bytes) -> list[Any]:
    return list(Calendar.from_ical(ics).walk("VEVENT"))


def uid_of(t: Text, user: str, item: Deadline) -> str:
    return str(events(timeline_ics(timeline(item), t, user, STAMP))[0]["UID"])


def test_calendar_declares_a_published_gregorian_calendar_with_a_translated_name(
    text: Callable[[Lang], Text],
) -> None:
    calendar = Calendar.from_ical(timeline_ics(timeline(deadline()), text("zh"), USER, STAMP))
    assert str(calendar["VERSION"]) == "2.0"
    assert "KVisa" in str(calendar["PRODID"])
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "K字签证截止日期"
    assert str(calendar["X-WR-TIMEZONE"]) == "Asia/Shanghai"


def test_one_all_day_event_per_deadline_on_its_act_by_day(text: Callable[[Lang], Text]) -> None:
    national_day = deadline(
        day=dt.date(2026, 10, 3), act_by=dt.date(2026, 9, 30), holiday="National Day"
    )
    stay = deadline("stay_limit", dt.date(2026, 11, 20))
    found = events(timeline_ics(timeline(national_day, stay), text("en"), USER, STAMP))
    assert [e.decoded("DTSTART") for e in found] == [dt.date(2026, 9, 30), dt.date(2026, 11, 20)]
    assert [e.decoded("DTEND") for e in found] == [dt.date(2026, 10, 1), dt.date(2026, 11, 21)]
    assert all(type(e.decoded("DTSTART")) is dt.date for e in found)  # VALUE=DATE, not a time
    assert all(str(e["TRANSP"]) == "TRANSPARENT" for e in found)
    assert str(found[0]["SUMMARY"]) == "Apply for the work permit"


def test_deadline_reminds_three_days_and_one_day_before(text: Callable[[Lang], Text]) -> None:
    (event,) = events(timeline_ics(timeline(deadline()), text("en"), USER, STAMP))
    alarms = event.walk("VALARM")
    assert len(alarms) == 2
    assert all(str(a["ACTION"]) == "DISPLAY" and str(a["DESCRIPTION"]) for a in alarms)
    before = sorted(-a.decoded("TRIGGER") for a in alarms)
    assert dt.timedelta(hours=12) <= before[0] < dt.timedelta(days=1)  # the day before
    assert dt.timedelta(days=2) < before[1] <= dt.timedelta(days=3)  # three days before


def test_uid_stays_when_the_date_moves_and_the_later_export_wins(
    text: Callable[[Lang], Text],
) -> None:
    first = events(
        timeline_ics(timeline(deadline(day=dt.date(2026, 9, 16))), text("en"), USER, STAMP)
    )[0]
    moved = events(
        timeline_ics(
            timeline(deadline(day=dt.date(2026, 9, 10))),
            text("en"),
            USER,
            STAMP + dt.timedelta(hours=1),
        )
    )[0]
    assert first["UID"] == moved["UID"]
    assert moved.decoded("DTSTART") < first.decoded("DTSTART")
    assert int(moved["SEQUENCE"]) > int(first["SEQUENCE"])  # even though the date moved earlier
    assert moved.decoded("DTSTAMP") > first.decoded("DTSTAMP")


def test_uids_differ_across_deadlines_and_users(text: Callable[[Lang], Text]) -> None:
    t = text("en")
    uids = {
        uid_of(t, USER, deadline("work_permit_apply")),
        uid_of(t, USER, deadline("stay_limit")),
        uid_of(t, "telegram:4243", deadline("work_permit_apply")),
    }
    assert len(uids) == 3
    assert uid_of(t, USER, deadline()) == uid_of(text("zh"), USER, deadline())


def test_uid_does_not_reveal_the_user(text: Callable[[Lang], Text]) -> None:
    ics = timeline_ics(timeline(deadline()), text("en"), USER, STAMP)
    assert b"4242" not in ics
    assert "4242" not in uid_of(text("en"), USER, deadline())


def test_chinese_text_round_trips(text: Callable[[Lang], Text]) -> None:
    item = deadline(
        day=dt.date(2026, 10, 3),
        act_by=dt.date(2026, 9, 30),
        holiday="National Day",
        holiday_zh="国庆节",
    )
    ics = timeline_ics(timeline(item), text("zh"), USER, STAMP)
    (event,) = events(ics)
    assert str(event["SUMMARY"]) == "申请工作许可"
    description = str(event["DESCRIPTION"])
    assert "2026年10月3日" in description
    assert "国庆节" in description and "2026年9月30日" in description
    assert [str(a["DESCRIPTION"]) for a in event.walk("VALARM")] == [
        "申请工作许可：还剩3天办理",
        "申请工作许可：明天是最后办理日",
    ]


def test_estimated_deadline_is_tentative_and_says_so(text: Callable[[Lang], Text]) -> None:
    notes: tuple[tuple[Lang, str], ...] = (("en", ESTIMATED_NOTE), ("zh", ZH[ESTIMATED_NOTE]))
    for lang, note in notes:
        sure, guessed = events(
            timeline_ics(
                timeline(deadline("stay_limit"), deadline("work_permit_apply", estimated=True)),
                text(lang),
                USER,
                STAMP,
            )
        )
        assert str(sure["STATUS"]) == "CONFIRMED"
        assert str(guessed["STATUS"]) == "TENTATIVE"
        assert note in str(guessed["DESCRIPTION"])
        assert note not in str(sure["DESCRIPTION"])


def test_holiday_deadline_names_the_holiday_and_the_act_by_day(
    text: Callable[[Lang], Text],
) -> None:
    t = text("en")
    item = deadline(day=dt.date(2026, 10, 3), act_by=dt.date(2026, 9, 30), holiday="National Day")
    (event,) = events(timeline_ics(timeline(item), t, USER, STAMP))
    description = str(event["DESCRIPTION"])
    assert t.date(dt.date(2026, 10, 3), "full") in description  # the nominal date
    assert t.date(dt.date(2026, 9, 30), "full") in description
    assert "National Day" in description


def test_weekend_deadline_names_the_act_by_day(text: Callable[[Lang], Text]) -> None:
    t = text("zh")
    item = deadline(day=dt.date(2026, 11, 22), act_by=dt.date(2026, 11, 20))  # a Sunday
    (event,) = events(timeline_ics(timeline(item), t, USER, STAMP))
    assert t.date(dt.date(2026, 11, 20), "full") in str(event["DESCRIPTION"])


def test_passport_validity_is_a_condition_not_a_calendar_event(
    text: Callable[[Lang], Text],
) -> None:
    passport = replace(
        deadline("passport_apply_by", dt.date(2027, 3, 1)),
        title="Last day to apply with your passport",
        kind="condition",
    )
    found = events(timeline_ics(timeline(deadline(), passport), text("en"), USER, STAMP))
    assert [e.decoded("DTSTART") for e in found] == [deadline().act_by]


def test_decision_windows_are_tentative_spans_without_reminders(
    text: Callable[[Lang], Text],
) -> None:
    window = Estimate(
        "work_permit_decision",
        "Work permit decision expected",
        dt.date(2026, 10, 12),
        dt.date(2026, 10, 16),
        estimated=False,
    )
    ics = timeline_ics(timeline(deadline(), estimates=(window,)), text("zh"), USER, STAMP)
    _, event = events(ics)
    assert event.decoded("DTSTART") == dt.date(2026, 10, 12)
    assert event.decoded("DTEND") == dt.date(2026, 10, 17)
    assert str(event["SUMMARY"]) == "工作许可预计审批时间"
    assert str(event["STATUS"]) == "TENTATIVE" and str(event["TRANSP"]) == "TRANSPARENT"
    assert event.walk("VALARM") == []
    assert event["UID"] != uid_of(text("zh"), USER, deadline())


def test_file_uses_crlf_and_folds_lines_at_75_octets(text: Callable[[Lang], Text]) -> None:
    long_title = "Apply for the work permit " * 6
    zh = replace(
        text("zh"),
        translations=WithExtra(
            {**ZH, long_title: "在入境后十五日内向园区人才服务中心申请外国人工作许可" * 3},
            text("zh").translations,
        ),
    )
    item = replace(
        deadline(
            day=dt.date(2026, 10, 3),
            act_by=dt.date(2026, 9, 30),
            holiday="National Day",
            estimated=True,
        ),
        title=long_title,
    )
    for t in (text("en"), zh):
        ics = timeline_ics(timeline(item), t, USER, STAMP)
        assert ics.startswith(b"BEGIN:VCALENDAR\r\n") and ics.endswith(b"END:VCALENDAR\r\n")
        lines = ics.split(b"\r\n")[:-1]
        assert not any(b"\n" in line or b"\r" in line for line in lines)
        assert max(len(line) for line in lines) <= 75
        assert any(line.startswith(b" ") for line in lines)  # something was folded
        for line in lines:
            line.decode()  # a fold never splits a UTF-8 sequence
    (event,) = events(ics)
    assert str(event["SUMMARY"]) == "在入境后十五日内向园区人才服务中心申请外国人工作许可" * 3


def test_same_inputs_give_the_same_bytes(text: Callable[[Lang], Text]) -> None:
    window = Estimate(
        "visa_decision",
        "Work permit decision expected",
        dt.date(2026, 9, 3),
        dt.date(2026, 9, 3),
        estimated=True,
    )
    plan = timeline(deadline(), deadline("stay_limit", estimated=True), estimates=(window,))
    assert timeline_ics(plan, text("zh"), USER, STAMP) == timeline_ics(
        plan, text("zh"), USER, STAMP
    )


def test_stamp_must_carry_a_timezone(text: Callable[[Lang], Text]) -> None:
    with pytest.raises(ValueError):
        timeline_ics(timeline(deadline()), text("en"), USER, dt.datetime(2026, 9, 1, 12))
