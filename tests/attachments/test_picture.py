"""The timeline picture: a readable PNG for phones, the same bytes for the same timeline."""

from __future__ import annotations

import dataclasses as dc
import datetime as dt
import gettext
import io
import itertools
from functools import cache

import pytest
from PIL import Image

from kvisa.bot.attachments.picture import FONT_FACE, LINE, _Label, _stack, font, render_timeline_png
from kvisa.bot.i18n import Catalogs, Text
from kvisa.bot.policy.timeline import Deadline, Estimate, Step, StepId, StepStatus, Timeline

D = dt.date
VISA = "Step 1: the K visa, applied for abroad"
WORK = "Step 2: the work permit, within 15 days of entry"
RESIDENCE = "Step 3: the residence permit"
TITLE = "Your K visa timeline"
# Our own Chinese for the messages the catalog does not have yet; the rest comes from it.
CHINESE = {
    TITLE: "您的K字签证时间线",
    "As of {date}": "截至{date}",
    "not started yet": "尚未开始",
    "{title}: {earliest} – {latest}": "{title}：{earliest}至{latest}",
    "act by {date}": "请于{date}前办理",
    "≈ estimated: the official holiday calendar for that year is not published yet": (
        "≈ 估算：该年度官方节假日安排尚未公布"
    ),
    "Apply for the work permit": "申请工作许可",
    "Lingang supplementary documents": "临港补充材料",
    "Stay limit": "停留期限",
    "Passport valid until": "护照有效期至",
    "Visa decision": "签证审批结果",
    "Work permit decision": "工作许可审批结果",
    "Residence permit decision": "居留许可审批结果",
}


class _Chinese(gettext.NullTranslations):
    def __init__(self, table: dict[str, str], fallback: gettext.NullTranslations) -> None:
        super().__init__()
        self.table = table
        self.add_fallback(fallback)

    def gettext(self, message: str) -> str:
        return self.table.get(message) or super().gettext(message)


@cache
def text(lang: str, **overrides: str) -> Text:
    real = Catalogs()["zh" if lang == "zh" else "en"]
    if lang == "en":
        return real
    return Text("zh", _Chinese(CHINESE | overrides, real.translations), real.locale)


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def colours(png: bytes) -> set[object]:
    return {c for _, c in decode(png).getcolors(1 << 20) or []}


def step(
    id: StepId, status: StepStatus, start: D | None, end: D | None, estimated: bool = False
) -> Step:
    title = {"visa": VISA, "work_permit": WORK, "residence_permit": RESIDENCE}[id]
    return Step(id, title, status, start, end, estimated)


def in_progress() -> Timeline:
    """Entered, work permit submitted; two deadlines two days apart, one estimated."""
    return Timeline(
        today=D(2025, 12, 18),
        events={
            "visa_applied": D(2025, 11, 20),
            "entered": D(2025, 12, 3),
            "work_permit_submitted": D(2025, 12, 8),
        },
        steps=(
            step("visa", "done", D(2025, 11, 20), D(2025, 11, 27)),
            step("work_permit", "current", D(2025, 12, 8), D(2025, 12, 30), True),
            step("residence_permit", "upcoming", D(2025, 12, 31), D(2026, 1, 16), True),
        ),
        deadlines=(
            Deadline(
                "work_permit_apply",
                "Apply for the work permit",
                D(2025, 12, 14),
                D(2025, 12, 12),
                False,
                "Sunday",
            ),
            Deadline(
                "lingang_supplement",
                "Lingang supplementary documents",
                D(2025, 12, 16),
                D(2025, 12, 16),
                False,
            ),
            Deadline("stay_limit", "Stay limit", D(2026, 1, 21), D(2026, 1, 20), True),
        ),
        estimates=(
            Estimate(
                "work_permit_decision",
                "Work permit decision",
                D(2025, 12, 19),
                D(2025, 12, 30),
                False,
                "work_permit",
            ),
            Estimate(
                "residence_permit_decision",
                "Residence permit decision",
                D(2026, 1, 9),
                D(2026, 1, 16),
                True,
                "residence_permit",
            ),
        ),
    )


def planned_only() -> Timeline:
    """Only the planned application date is known: one projected bar, two rows not started."""
    return Timeline(
        today=D(2026, 3, 2),
        events={"planned_application": D(2026, 3, 16)},
        steps=(
            step("visa", "upcoming", D(2026, 3, 16), D(2026, 3, 20), True),
            step("work_permit", "upcoming", None, None),
            step("residence_permit", "upcoming", None, None),
        ),
        deadlines=(),
        estimates=(
            Estimate(
                "visa_decision", "Visa decision", D(2026, 3, 18), D(2026, 3, 20), False, "visa"
            ),
        ),
    )


def across_new_year() -> Timeline:
    """A long case over the year boundary, with a passport deadline years away."""
    return Timeline(
        today=D(2026, 2, 10),
        events={"visa_applied": D(2025, 9, 1), "entered": D(2025, 10, 20)},
        steps=(
            step("visa", "done", D(2025, 9, 1), D(2025, 9, 30)),
            step("work_permit", "done", D(2025, 10, 28), D(2025, 12, 19)),
            step("residence_permit", "current", D(2026, 1, 5), D(2026, 3, 9), True),
        ),
        deadlines=(
            Deadline(
                "work_permit_apply",
                "Apply for the work permit",
                D(2025, 11, 4),
                D(2025, 11, 4),
                False,
            ),
            Deadline("stay_limit", "Stay limit", D(2026, 4, 17), D(2026, 4, 17), True),
            Deadline(
                "passport_valid_until", "Passport valid until", D(2031, 6, 1), D(2031, 5, 30), True
            ),
        ),
        estimates=(
            Estimate(
                "residence_permit_decision",
                "Residence permit decision",
                D(2026, 2, 27),
                D(2026, 3, 9),
                True,
                "residence_permit",
            ),
        ),
    )


STEP_IDS: tuple[StepId, ...] = ("visa", "work_permit", "residence_permit")


def with_statuses(statuses: tuple[StepStatus, ...]) -> Timeline:
    """Any mix of statuses, three deadlines on consecutive days."""
    starts = (D(2026, 5, 4), D(2026, 5, 25), D(2026, 6, 15))
    return Timeline(
        today=D(2026, 6, 1),
        events={},
        steps=tuple(
            step(id, status, start, start + dt.timedelta(14), status != "done")
            for id, status, start in zip(STEP_IDS, statuses, starts, strict=True)
        ),
        deadlines=(
            Deadline("stay_limit", "Stay limit", D(2026, 6, 3), D(2026, 6, 3), False),
            Deadline(
                "lingang_supplement",
                "Lingang supplementary documents",
                D(2026, 6, 4),
                D(2026, 6, 4),
                False,
            ),
            Deadline(
                "work_permit_apply",
                "Apply for the work permit",
                D(2026, 6, 5),
                D(2026, 6, 5),
                False,
            ),
        ),
        estimates=(),
    )


TIMELINES = {
    "in_progress": in_progress,
    "planned_only": planned_only,
    "across_new_year": across_new_year,
}
STATUSES: list[tuple[StepStatus, ...]] = list(
    itertools.product(("done", "current", "upcoming"), repeat=3)
)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(TIMELINES))
def test_picture_is_a_portrait_rgb_png_sized_for_phones(name: str, lang: str) -> None:
    image = decode(render_timeline_png(TIMELINES[name](), text(lang)))
    assert image.format == "PNG"
    assert image.mode == "RGB"
    assert image.width == 1080
    assert 0.75 * image.width <= image.height <= 2200  # portrait or nearly square


@pytest.mark.parametrize("statuses", STATUSES, ids="-".join)
def test_every_combination_of_step_statuses_renders(statuses: tuple[StepStatus, ...]) -> None:
    image = decode(render_timeline_png(with_statuses(statuses), text("en")))
    assert image.width == 1080 and image.mode == "RGB"


@pytest.mark.parametrize("name", sorted(TIMELINES))
def test_same_timeline_gives_identical_bytes(name: str) -> None:
    assert render_timeline_png(TIMELINES[name](), text("zh")) == render_timeline_png(
        TIMELINES[name](), text("zh")
    )


def test_english_and_chinese_pictures_differ() -> None:
    assert render_timeline_png(in_progress(), text("en")) != render_timeline_png(
        in_progress(), text("zh")
    )


def test_step_colours_follow_status() -> None:
    green = (46, 125, 50)
    assert green in colours(render_timeline_png(with_statuses(("done",) * 3), text("en")))
    assert green not in colours(render_timeline_png(with_statuses(("upcoming",) * 3), text("en")))


def test_close_deadlines_stack_their_labels_and_grow_the_picture() -> None:
    one = with_statuses(("done", "current", "upcoming"))
    one = Timeline(one.today, one.events, one.steps, one.deadlines[:1], one.estimates)
    three = with_statuses(("done", "current", "upcoming"))
    height_one = decode(render_timeline_png(one, text("en"))).height
    height_three = decode(render_timeline_png(three, text("en"))).height
    assert height_three >= height_one + 2 * 2 * LINE  # each label (date + title) below the last


def test_close_deadline_labels_never_overlap() -> None:
    labels = [
        _Label(
            Deadline(f"d{i}", "Stay limit", D(2026, 6, 1 + i), D(2026, 6, 1 + i), False),
            x,
            ["Jun 1", "Apply for the work permit"],
            False,
            400,
        )
        for i, x in enumerate((500, 514, 528, 990, 60))
    ]
    _stack(labels, 800)
    for a, b in itertools.combinations(labels, 2):
        assert not a.clashes(b, strict=False)
    assert all(label.top >= 800 for label in labels)


def test_estimated_legend_only_when_something_is_estimated() -> None:
    legend = "≈ estimated: the official holiday calendar for that year is not published yet"
    plain = with_statuses(("done", "done", "done"))
    assert not plain.estimated
    hidden = text("zh", **{legend: "\U0010fffd" * 20})
    assert render_timeline_png(plain, hidden) == render_timeline_png(plain, text("zh"))
    assert render_timeline_png(in_progress(), hidden) != render_timeline_png(
        in_progress(), text("zh")
    )


def test_font_is_the_simplified_chinese_face() -> None:
    assert font(30).getname() == (FONT_FACE, "Regular")
    assert font(30, bold=True).getname() == (FONT_FACE, "Bold")


def test_chinese_glyphs_are_drawn_not_tofu() -> None:
    face = font(34)
    chinese, unassigned = bytes(face.getmask("张江")), bytes(face.getmask("\U0010fffd" * 2))
    assert any(chinese)
    assert chinese != unassigned
    tofu = bytes(face.getmask("\U0010fffd"))
    zh = text("zh")
    shown = [
        zh(m)
        for m in (
            TITLE,
            "As of {date}",
            "Today",
            "not started yet",
            VISA,
            WORK,
            RESIDENCE,
            *CHINESE,
        )
    ]
    missing = {c for s in shown for c in s if not c.isspace() and bytes(face.getmask(c)) == tofu}
    assert missing == set()


def test_chinese_title_is_inked_in_the_picture() -> None:
    # Were the title drawn as tofu, swapping it for unassigned code points would change nothing.
    real = decode(render_timeline_png(in_progress(), text("zh")))
    tofu = decode(render_timeline_png(in_progress(), text("zh", **{TITLE: "\U0010fffd" * 9})))
    title_band = (0, 0, real.width, 130)
    assert real.crop(title_band).tobytes() != tofu.crop(title_band).tobytes()
    assert real.crop(title_band).getextrema() != ((255, 255),) * 3  # there is ink


def test_today_line_is_drawn_in_its_own_colour() -> None:
    assert (230, 81, 0) in colours(render_timeline_png(planned_only(), text("en")))


def only_deadline(**fields: object) -> Timeline:
    base = with_statuses(("done", "current", "upcoming"))
    deadline = dc.replace(base.deadlines[0], **fields)  # type: ignore[arg-type]
    return Timeline(base.today, base.events, base.steps, (deadline,), base.estimates)


def test_met_deadline_is_drawn_without_the_deadline_red() -> None:
    red = (198, 40, 40)
    assert red in colours(render_timeline_png(only_deadline(met=False), text("en")))
    assert red not in colours(render_timeline_png(only_deadline(met=True), text("en")))


def test_act_by_line_only_for_actions_when_offices_are_closed() -> None:
    def height(**fields: object) -> int:
        return decode(render_timeline_png(only_deadline(**fields), text("en"))).height

    open_day = height(act_by=D(2026, 6, 3))
    assert height(act_by=D(2026, 6, 2)) == open_day + LINE
    condition = height(act_by=D(2026, 6, 3), kind="condition")
    assert height(act_by=D(2026, 6, 2), kind="condition") == condition


def test_a_condition_is_written_under_the_heading_not_placed_on_the_axis() -> None:
    # The passport's validity is checked when applying: no marker among the steps, a line under
    # the heading instead, red while it does not hold for the planned application.
    def colours_in(image: Image.Image) -> set[object]:
        return {c for _, c in image.getcolors(1 << 20) or []}

    red = (198, 40, 40)
    unmet = decode(render_timeline_png(only_deadline(kind="condition"), text("en")))
    met = decode(render_timeline_png(only_deadline(kind="condition", met=True), text("en")))
    assert red in colours_in(unmet.crop((0, 0, unmet.width, 330)))
    assert red not in colours_in(unmet.crop((0, 330, unmet.width, unmet.height)))
    assert red not in colours_in(met)
