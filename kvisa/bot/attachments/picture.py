"""The timeline picture: the three steps, deadlines and decision windows on one date axis, as PNG.

Drawn with Pillow rather than matplotlib: light, exact pixel control, no numpy.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from babel.dates import format_skeleton
from PIL import Image, ImageDraw, ImageFont

from kvisa.bot.i18n import Text
from kvisa.bot.policy.timeline import Deadline, Estimate, Step, StepStatus, Timeline

FONT_FILE = "NotoSansCJK-VF.otf.ttc"
FONT_FACE, FONT_INDEX = "Noto Sans CJK SC", 2  # the collection's faces: JP, KR, SC, TC, HK
W, PAD, EDGE, X0, X1 = 1080, 60, 40, 90, 990  # the axis leaves room for centred tick labels
FAR = dt.timedelta(days=45)  # a deadline further past the rest (stay limit, passport) would
# squash the bars to slivers: it goes past a break at the end of the axis instead
INK, MUTED, GRID, WHITE = (28, 33, 43), (84, 92, 107), (226, 230, 237), (255, 255, 255)
TODAY, DEADLINE, WINDOW, WINDOW_TINT = (230, 81, 0), (198, 40, 40), (106, 27, 154), (238, 222, 246)
COLOR: dict[StepStatus, tuple[int, int, int]] = {  # done: muted green; current: strong blue
    "done": (46, 125, 50),
    "current": (21, 101, 192),
    "upcoming": (112, 126, 148),
}
TINT: dict[StepStatus, tuple[int, int, int]] = {  # the light fill under a hatched (estimated) part
    "done": (200, 230, 201),
    "current": (200, 224, 250),
    "upcoming": (233, 237, 243),
}
LINE = 42  # line height of 30 px text
LABEL_WIDTH = 440  # under half the width, so a deadline label fits beside its leader line
# One token per CJK character (Chinese breaks anywhere), one per Latin word, one per space run.
_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s+")


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at `size` px, Regular or Bold (a variable font: one file, any weight)."""
    # BASIC layout: the same glyph positions whether or not the host has libraqm.
    face = ImageFont.truetype(
        str(files("manimgx_fonts_cjk") / FONT_FILE),
        size,
        index=FONT_INDEX,
        layout_engine=ImageFont.Layout.BASIC,
    )
    face.set_variation_by_name("Bold" if bold else "Regular")
    return face


def wrap(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy line breaking: between words in English, between any characters in Chinese."""
    lines, line = [], ""
    for token in _TOKEN.findall(text):
        if token.isspace():
            line += token if line else ""
        elif line and face.getlength(line + token) > width:
            lines.append(line.rstrip())
            line = token
        else:
            line += token
    return [*lines, line.rstrip()]


def _md(day: dt.date, t: Text, with_year: bool = False) -> str:
    """Month and day as the reader writes them: "Dec 1", "12月1日"."""
    return format_skeleton("yMMMd" if with_year else "MMMd", day, locale=t.locale)


def _on_axis(timeline: Timeline) -> list[Deadline]:
    """The deadlines to act on. A condition (the passport's validity) is checked when applying:
    it is written under the heading, not placed among the steps as a day to act on."""
    return [d for d in timeline.deadlines if d.kind == "action"]


def _span(timeline: Timeline) -> tuple[dt.date, dt.date, set[str]]:
    """The axis range with a margin, and the deadlines too far out to place on it."""
    core = [
        timeline.today,
        *(d for s in timeline.steps for d in (s.start, s.end) if d),
        *(d for e in timeline.estimates for d in (e.earliest, e.latest)),
    ]
    far = {d.id for d in _on_axis(timeline) if d.date > max(core) + FAR}
    days = core + [d.date for d in _on_axis(timeline) if d.id not in far]
    lo, hi = min(days), max(days)
    short = max(0, 21 - (hi - lo).days)  # a lone date still gets a readable few weeks
    lo, hi = lo - dt.timedelta(short // 2), hi + dt.timedelta(short - short // 2)
    margin = dt.timedelta(max(2, round((hi - lo).days * 0.05)))
    return lo - margin, hi + margin, far


def _ticks(lo: dt.date, hi: dt.date, t: Text) -> list[tuple[dt.date, str]]:
    """A handful of dates to label: days of the month on short axes, months on long ones."""
    days = [lo + dt.timedelta(i) for i in range((hi - lo).days + 1)]
    if len(days) <= 100:
        wanted = (1, 8, 15, 22) if len(days) <= 40 else (1, 15)
        return [(d, _md(d, t, with_year=d.month == d.day == 1)) for d in days if d.day in wanted]
    months = [d for d in days if d.day == 1]
    months = months[:: math.ceil(len(months) / 6)]
    return [
        (d, format_skeleton("yMMM" if i == 0 or d.month == 1 else "MMM", d, locale=t.locale))
        for i, d in enumerate(months)
    ]


def _say(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    face: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int],
) -> None:
    # A white halo keeps text legible where it crosses a date line.
    draw.text(xy, text, font=face, fill=fill, stroke_width=5, stroke_fill=WHITE)


def _bar(img: Image.Image, box: tuple[int, int, int, int], split: int, status: StepStatus) -> None:
    """A rounded bar, solid up to `split` and hatched after it (the estimated part)."""
    x0, y0, x1, y1 = box
    fill = TINT[status] if status == "upcoming" else COLOR[status]  # upcoming: light, outlined
    tile = Image.new("RGB", (x1 - x0, y1 - y0), fill)
    if split < x1:
        hatch = Image.new("RGB", (x1 - split, y1 - y0), TINT[status])
        pen = ImageDraw.Draw(hatch)
        for k in range(-hatch.height, hatch.width, 16):
            pen.line([(k, hatch.height), (k + hatch.height, 0)], fill=COLOR[status], width=4)
        tile.paste(hatch, (split - x0, 0))
    mask = Image.new("L", tile.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, tile.width - 1, tile.height - 1), 10, fill=255)
    img.paste(tile, (x0, y0), mask)
    ImageDraw.Draw(img).rounded_rectangle(box, 10, outline=COLOR[status], width=3)


def _status_mark(draw: ImageDraw.ImageDraw, cx: int, cy: int, status: StepStatus) -> None:
    """A filled disc with a tick (done), a ring with a dot (current), an empty ring (upcoming)."""
    draw.ellipse(
        (cx - 15, cy - 15, cx + 15, cy + 15),
        outline=COLOR[status],
        width=4,
        fill=COLOR[status] if status == "done" else WHITE,
    )
    if status == "done":  # the tick is drawn as lines: no dependence on a ✓ glyph
        draw.line([(cx - 8, cy), (cx - 2, cy + 7), (cx + 8, cy - 6)], fill=WHITE, width=4)
    elif status == "current":
        draw.ellipse((cx - 7, cy - 7, cx + 7, cy + 7), fill=COLOR[status])


@dataclass
class _Label:
    """A deadline's label under the axis, beside the leader line that drops from its marker."""

    deadline: Deadline
    x: int
    lines: list[str]  # "≈ Jan 21" in bold, the title, then "act by ..." when offices are closed
    act_by: bool
    width: float
    top: float = 0

    @property
    def left(self) -> float:
        """Right of the leader, else left of it, else under its end if neither side has room."""
        if self.x + 12 + self.width <= W - EDGE:
            return self.x + 12
        if self.x - 12 - self.width >= EDGE:
            return self.x - 12 - self.width
        return max(EDGE, min(self.x - 24, W - EDGE - self.width))

    @property
    def bottom(self) -> float:
        return self.top + LINE * len(self.lines)

    def covers(self, x: float) -> bool:
        return self.left - 8 < x < self.left + self.width + 8

    def clashes(self, other: _Label, strict: bool) -> bool:
        """Whether the labels overlap, or (strict) the leader of one runs through the other."""
        if (
            self.left < other.left + other.width + 16
            and other.left < self.left + self.width + 16
            and self.top < other.bottom + 14
            and other.top < self.bottom + 14
        ):
            return True
        return strict and (other.covers(self.x) if other.top < self.top else self.covers(other.x))


def _stack(labels: list[_Label], first_top: float) -> None:
    """Give each label the highest place that overlaps no other, sparing leader lines if it can."""
    placed: list[_Label] = []

    # Labels that cover no other's leader go first (higher up), so the leaders pass beside them;
    # then labels right of their leader latest first, labels left of it earliest first.
    def order(b: _Label) -> tuple[int, int, str]:
        day = b.deadline.date.toordinal()
        covered = sum(b.covers(o.x) for o in labels if o is not b)
        return covered, -day if b.left > b.x else day, b.deadline.id

    for label in sorted(labels, key=order):
        tops = sorted({first_top, *(o.bottom + 14 for o in placed)})
        for strict, top in itertools.product((True, False), tops):
            label.top = top
            if not any(label.clashes(o, strict) for o in placed):
                break  # the lowest candidate always fits when not strict
        placed.append(label)


def _colour(deadline: Deadline) -> tuple[int, int, int]:
    return MUTED if deadline.met else DEADLINE  # a met deadline stays on the axis, quietly


def _deadline_labels(
    draw: ImageDraw.ImageDraw,
    timeline: Timeline,
    t: Text,
    far: set[str],
    x_of: Callable[[dt.date], int],
    axis_y: int,
) -> float:
    """Markers on the axis and, below it, each deadline's date and title; returns the bottom."""
    labels = []
    for deadline in _on_axis(timeline):
        day = ("≈ " if deadline.estimated else "") + _md(
            deadline.date, t, with_year=deadline.date.year != timeline.today.year
        )
        lines = [day, *wrap(t(deadline.title), font(30), LABEL_WIDTH)]
        act_by = deadline.office_closed
        if act_by:
            lines.append(
                t(
                    "act by {date}",
                    date=_md(
                        deadline.act_by, t, with_year=deadline.act_by.year != deadline.date.year
                    ),
                )
            )
        width = max(font(30, i == 0).getlength(line) for i, line in enumerate(lines))
        x = X1 + 40 if deadline.id in far else x_of(deadline.date)
        labels.append(_Label(deadline, x, lines, act_by, width))
    _stack(labels, axis_y + 80)
    # Met deadlines first, so an open one on the same day keeps its red marker on top.
    for label in sorted(labels, key=lambda b: not b.deadline.met):
        # The leader ends beside the label's first line, or at its top when the label is under it.
        x = label.x
        draw.line(
            [(x, axis_y), (x, label.top - 4 if label.covers(x) else label.top + LINE / 2)],
            fill=_colour(label.deadline),
            width=3,
        )
        draw.polygon(
            [(x, axis_y - 11), (x + 11, axis_y), (x, axis_y + 11), (x - 11, axis_y)],
            fill=_colour(label.deadline),
        )
    for label in labels:
        # White under each label hides a leader it could not avoid.
        draw.rectangle(
            (label.left - 8, label.top - 4, label.left + label.width + 8, label.bottom + 10),
            fill=WHITE,
        )
        titles = len(label.lines) - label.act_by
        for i, line in enumerate(label.lines):
            colour = _colour(label.deadline) if i == 0 else INK if i < titles else MUTED
            draw.text((label.left, label.top + LINE * i), line, font=font(30, i == 0), fill=colour)
    return max((label.bottom for label in labels), default=axis_y + 60)


def render_timeline_png(timeline: Timeline, t: Text) -> bytes:
    """The timeline as a portrait PNG 1080 px wide, in the reader's language."""
    lo, hi, far = _span(timeline)

    def x_of(day: dt.date) -> int:
        return round(X0 + (X1 - X0) * (day - lo).days / (hi - lo).days)

    # A canvas taller than any content, cropped at the end: no separate measuring pass.
    img = Image.new("RGB", (W, 2400 + 240 * len(timeline.deadlines)), WHITE)
    draw = ImageDraw.Draw(img)
    y = 50
    for line in wrap(t("Your K visa timeline"), font(56, True), W - 2 * PAD):
        draw.text((PAD, y), line, font=font(56, True), fill=INK)
        y += 72
    draw.text(
        (PAD, y + 4),
        t("As of {date}", date=t.date(timeline.today, "long")),
        font=font(32),
        fill=MUTED,
    )
    y += 48
    for condition in (d for d in timeline.deadlines if d.kind == "condition"):
        text = t("{title}: {detail}", title=t.date(condition.date), detail=t(condition.title))
        for line in wrap(text, font(30), W - 2 * PAD):
            draw.text((PAD, y), line, font=font(30), fill=MUTED if condition.met else DEADLINE)
            y += LINE
    chart_top = y + 32  # the "Today" tag sits here, above the rows

    rows: list[tuple[Step, list[str], int, int, Estimate | None]] = []
    windows = {e.step: e for e in timeline.estimates}
    y = chart_top + 70
    for step in timeline.steps:
        labels = wrap(t(step.title), font(34, True), W - 2 * PAD - 48)
        bar_y = y + 46 * len(labels) + 10
        # A done step's decision came: its expected window is history, not worth the space.
        window = windows.get(step.id) if step.start and step.status != "done" else None
        rows.append((step, labels, y, bar_y, window))
        y = bar_y + 44 + (100 if window else 0) + 34
    axis_y = y + 6
    ticks = _ticks(lo, hi, t)

    for _, _, _, bar_y, e in rows:  # decision windows: a band behind the bar, a bracket below
        if e is not None:
            xe, xl = x_of(e.earliest), max(x_of(e.latest), x_of(e.earliest) + 6)
            draw.rectangle((xe, bar_y - 10, xl, bar_y + 54), fill=WINDOW_TINT)
            draw.line(
                [(xe, bar_y + 54), (xe, bar_y + 66), (xl, bar_y + 66), (xl, bar_y + 54)],
                fill=WINDOW,
                width=4,
            )
    for day, _ in ticks:
        draw.line([(x_of(day), chart_top + 60), (x_of(day), axis_y)], fill=GRID, width=2)
    for step, _, _, bar_y, _ in rows:
        if step.start is not None:
            x0 = x_of(step.start)
            x1 = max(x_of(step.end or max(step.start, timeline.today)), x0 + 16)
            split = min(max(x_of(timeline.today), x0), x1) if step.end_estimated else x1
            _bar(img, (x0, bar_y, x1, bar_y + 44), split, step.status)
    for deadline in (d for d in _on_axis(timeline) if d.id not in far):
        x = x_of(deadline.date)
        for dash in range(chart_top + 60, axis_y, 16):
            draw.line([(x, dash), (x, min(dash + 9, axis_y))], fill=_colour(deadline), width=3)
    xt = x_of(timeline.today)
    draw.line([(xt, chart_top + 50), (xt, axis_y)], fill=TODAY, width=4)

    for step, labels, top, bar_y, e in rows:
        for i, label in enumerate(labels):
            _say(draw, (PAD + 46, top + 46 * i), label, font(34, True), INK)
        _status_mark(draw, PAD + 15, top + 23, step.status)
        if step.start is None:
            _say(draw, (PAD + 46, bar_y + 2), t("not started yet"), font(30), MUTED)
        if e is not None:
            text = ("≈ " if e.estimated else "") + t(
                "{title}: {earliest} – {latest}",
                title=t(e.title),
                earliest=_md(e.earliest, t),
                latest=_md(e.latest, t),
            )
            width = font(30).getlength(text)
            _say(
                draw,
                (max(PAD, min(x_of(e.earliest), W - PAD - width)), bar_y + 70),
                text,
                font(30),
                WINDOW,
            )

    draw.line([(X0, axis_y), (X1, axis_y)], fill=INK, width=3)
    if far:  # a broken axis: the far deadlines sit past the break
        for dx in (0, 10):
            draw.line([(X1 + 4 + dx, axis_y + 10), (X1 + 14 + dx, axis_y - 10)], fill=INK, width=3)
        draw.line([(X1 + 28, axis_y), (X1 + 52, axis_y)], fill=INK, width=3)
    bottom = _deadline_labels(draw, timeline, t, far, x_of, axis_y)
    right = -math.inf  # tick labels after the leaders, on white: they cut the lines
    for day, label in ticks:
        x, width = x_of(day), font(30).getlength(label)
        left = max(EDGE, min(x - width / 2, W - EDGE - width))
        if left > right + 20:  # drop a tick label rather than let two touch
            draw.rectangle((left - 6, axis_y + 14, left + width + 6, axis_y + 60), fill=WHITE)
            draw.line([(x, axis_y), (x, axis_y + 12)], fill=INK, width=3)
            draw.text((left, axis_y + 18), label, font=font(30), fill=MUTED)
            right = left + width

    tag = t("Today")
    width = font(30, True).getlength(tag) + 28
    left = max(EDGE, min(xt - width / 2, W - EDGE - width))
    draw.rounded_rectangle((left, chart_top, left + width, chart_top + 50), 12, fill=TODAY)
    draw.text((left + 14, chart_top + 5), tag, font=font(30, True), fill=WHITE)
    if timeline.estimated:
        bottom += 24
        for line in wrap(
            t("≈ estimated: the official holiday calendar for that year is not published yet"),
            font(30),
            W - 2 * PAD,
        ):
            draw.text((PAD, bottom), line, font=font(30), fill=MUTED)
            bottom += LINE
    out = io.BytesIO()
    # Fixed settings and no metadata chunks: the same timeline gives the same bytes.
    img.crop((0, 0, W, round(bottom) + 50)).save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()
