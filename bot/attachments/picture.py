"""The timeline picture: the three steps, deadlines and decision windows on one date axis, as PNG.

Drawn with Pillow rather than matplotlib: light, exact pixel control, no numpy.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from babel.dates import format_skeleton
from PIL import Image, ImageDraw, ImageFont

from bot.errors import ConfigError
from bot.i18n import Text
from bot.policy.timeline import Deadline, Estimate, Step, StepStatus, Timeline

FONT_FILE = "NotoSansCJK-VF.otf.ttc"
FONT_FACE = "Noto Sans CJK SC"
W, PAD, X0, X1 = 1080, 60, 90, 990  # phone width; the axis keeps room for centred tick labels
FAR = dt.timedelta(days=180)  # a deadline further than this past everything else would squash the axis
INK, MUTED, GRID, WHITE = (28, 33, 43), (84, 92, 107), (226, 230, 237), (255, 255, 255)
TODAY, DEADLINE, WINDOW, WINDOW_TINT = (230, 81, 0), (198, 40, 40), (106, 27, 154), (238, 222, 246)
COLOR: dict[StepStatus, tuple[int, int, int]] = {
    "done": (46, 125, 50), "current": (21, 101, 192), "upcoming": (112, 126, 148)}
TINT: dict[StepStatus, tuple[int, int, int]] = {
    "done": (200, 230, 201), "current": (200, 224, 250), "upcoming": (233, 237, 243)}
# One token per CJK character (Chinese breaks anywhere), one per Latin word, one per space run.
_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+|\s+")


@cache
def _face_index() -> int:
    # The collection holds JP, KR, SC, TC, HK (SC is index 2 today); find it by name so a font
    # update that reorders faces cannot silently switch us to Japanese glyph shapes.
    for index in range(16):
        try:
            face = ImageFont.truetype(str(files("manimgx_fonts_cjk") / FONT_FILE), 20, index=index)
        except OSError:
            break
        if face.getname()[0] == FONT_FACE:
            return index
    raise ConfigError("manimgx-fonts-cjk", f"no {FONT_FACE} face in {FONT_FILE}")


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at `size` px, Regular or Bold (it is a variable font)."""
    # BASIC layout: the same glyph positions with or without libraqm on the host.
    face = ImageFont.truetype(str(files("manimgx_fonts_cjk") / FONT_FILE), size,
                              index=_face_index(), layout_engine=ImageFont.Layout.BASIC)
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


@dataclass(frozen=True)
class _Row:
    step: Step
    labels: list[str]
    top: int
    bar_y: int
    window: Estimate | None


def _span(timeline: Timeline) -> tuple[dt.date, dt.date, set[str]]:
    """The axis range with a margin, and the deadlines too far out to place on it."""
    core = [timeline.today, *(d for s in timeline.steps for d in (s.start, s.end) if d),
            *(d for e in timeline.estimates for d in (e.earliest, e.latest))]
    far = {d.id for d in timeline.deadlines if d.date > max(core) + FAR}
    days = core + [d.date for d in timeline.deadlines if d.id not in far]
    lo, hi = min(days), max(days)
    short = max(0, 21 - (hi - lo).days)  # a lone date still gets a readable few weeks
    lo, hi = lo - dt.timedelta(short // 2), hi + dt.timedelta(short - short // 2)
    margin = dt.timedelta(max(2, round((hi - lo).days * 0.05)))
    return lo - margin, hi + margin, far


def _ticks(lo: dt.date, hi: dt.date, t: Text) -> list[tuple[dt.date, str]]:
    days = [lo + dt.timedelta(i) for i in range((hi - lo).days + 1)]
    if len(days) <= 100:
        wanted = (1, 8, 15, 22) if len(days) <= 40 else (1, 15)
        return [(d, _md(d, t, with_year=d.month == 1 and d.day == 1)) for d in days
                if d.day in wanted]
    months = [d for d in days if d.day == 1]
    months = months[::math.ceil(len(months) / 6)]
    return [(d, format_skeleton("yMMM" if i == 0 or d.month == 1 else "MMM", d, locale=t.locale))
            for i, d in enumerate(months)]


def _md(day: dt.date, t: Text, with_year: bool = False) -> str:
    """Month and day as the reader writes them: "Dec 1", "12月1日"."""
    return format_skeleton("yMMMd" if with_year else "MMMd", day, locale=t.locale)


def _say(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
         face: ImageFont.FreeTypeFont, fill: tuple[int, int, int]) -> None:
    # A white halo keeps text legible where it crosses a date line.
    draw.text(xy, text, font=face, fill=fill, stroke_width=5, stroke_fill=WHITE)


def _dashed(draw: ImageDraw.ImageDraw, x: float, y0: float, y1: float,
            fill: tuple[int, int, int]) -> None:
    for y in range(int(y0), int(y1), 16):
        draw.line([(x, y), (x, min(y + 9, y1))], fill=fill, width=3)


def _bar(img: Image.Image, box: tuple[int, int, int, int], split: int, status: StepStatus) -> None:
    """A rounded bar, solid up to `split` and hatched after it (the estimated part)."""
    x0, y0, x1, y1 = box
    tile = Image.new("RGB", (x1 - x0, y1 - y0), TINT[status] if status == "upcoming" else COLOR[status])
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
    box = (cx - 15, cy - 15, cx + 15, cy + 15)
    if status == "done":  # a tick drawn as lines: no dependence on a ✓ glyph
        draw.ellipse(box, fill=COLOR[status])
        draw.line([(cx - 8, cy), (cx - 2, cy + 7), (cx + 8, cy - 6)], fill=WHITE, width=4,
                  joint="curve")
    elif status == "current":
        draw.ellipse(box, outline=COLOR[status], width=4)
        draw.ellipse((cx - 7, cy - 7, cx + 7, cy + 7), fill=COLOR[status])
    else:
        draw.ellipse(box, outline=COLOR[status], width=3)


def render_timeline_png(timeline: Timeline, t: Text) -> bytes:
    """The timeline as a portrait PNG about 1080 px wide, in the reader's language."""
    lo, hi, far = _span(timeline)

    def x_of(day: dt.date) -> int:
        return round(X0 + (X1 - X0) * (day - lo).days / (hi - lo).days)

    img = Image.new("RGB", (W, 4000), WHITE)  # cropped to the content at the end
    draw = ImageDraw.Draw(img)
    y = 50
    for line in wrap(t("Your K visa timeline"), font(56, True), W - 2 * PAD):
        draw.text((PAD, y), line, font=font(56, True), fill=INK)
        y += 72
    draw.text((PAD, y + 4), t("As of {date}", date=t.date(timeline.today, "long")),
              font=font(32), fill=MUTED)
    chart_top = y + 80  # the "Today" tag sits here, above the rows

    rows, y = [], chart_top + 70
    windows = {e.id.removesuffix("_decision"): e for e in timeline.estimates}
    for step in timeline.steps:
        labels = wrap(t(step.title), font(34, True), W - 2 * PAD - 48)
        bar_y = y + 46 * len(labels) + 10
        rows.append(_Row(step, labels, y, bar_y, windows.get(step.id) if step.start else None))
        y = bar_y + 44 + (100 if rows[-1].window else 0) + 34
    axis_y = y + 6

    for row in rows:  # decision windows: a band behind the bar, a bracket and its dates below
        if (e := row.window) is not None:
            xe, xl = x_of(e.earliest), max(x_of(e.latest), x_of(e.earliest) + 6)
            draw.rectangle((xe, row.bar_y - 10, xl, row.bar_y + 54), fill=WINDOW_TINT)
            by = row.bar_y + 66
            draw.line([(xe, by - 12), (xe, by), (xl, by), (xl, by - 12)], fill=WINDOW, width=4)
    for day, _ in _ticks(lo, hi, t):
        draw.line([(x_of(day), chart_top + 60), (x_of(day), axis_y)], fill=GRID, width=2)
    for row in rows:
        step = row.step
        if step.start is None:
            continue
        x0 = x_of(step.start)
        x1 = max(x_of(step.end or max(step.start, timeline.today)), x0 + 16)
        split = min(max(x_of(timeline.today), x0), x1) if step.end_estimated else x1
        _bar(img, (x0, row.bar_y, x1, row.bar_y + 44), split, step.status)
    placed = [d for d in timeline.deadlines if d.id not in far]
    for deadline in placed:
        _dashed(draw, x_of(deadline.date), chart_top + 60, axis_y, DEADLINE)
    xt = x_of(timeline.today)
    draw.line([(xt, chart_top + 50), (xt, axis_y)], fill=TODAY, width=4)

    for row in rows:
        for i, label in enumerate(row.labels):
            _say(draw, (PAD + 46, row.top + 46 * i), label, font(34, True), INK)
        _status_mark(draw, PAD + 15, row.top + 23, row.step.status)
        if row.step.start is None:
            _say(draw, (PAD + 46, row.bar_y + 2), t("not started yet"), font(30), MUTED)
        if (e := row.window) is not None:
            text = ("≈ " if e.estimated else "") + t(
                "{title}: {earliest} – {latest}", title=t(e.title),
                earliest=_md(e.earliest, t), latest=_md(e.latest, t))
            width = font(30).getlength(text)
            _say(draw, (max(PAD, min(x_of(e.earliest), W - PAD - width)), row.bar_y + 70),
                 text, font(30), WINDOW)

    draw.line([(X0, axis_y), (X1, axis_y)], fill=INK, width=3)
    if far:  # a broken axis: the far deadlines sit past the break
        for dx in (0, 10):
            draw.line([(X1 + 4 + dx, axis_y + 10), (X1 + 14 + dx, axis_y - 10)], fill=INK, width=3)
        draw.line([(X1 + 28, axis_y), (X1 + 52, axis_y)], fill=INK, width=3)
    y = _deadline_labels(draw, timeline, t, far, x_of, axis_y)
    right = -math.inf  # tick labels after the leaders, on white: they cut the lines
    for day, label in _ticks(lo, hi, t):
        x, width = x_of(day), font(30).getlength(label)
        left = max(PAD / 2, min(x - width / 2, W - PAD / 2 - width))
        if left > right + 20:  # drop a tick label rather than let two touch
            draw.rectangle((left - 6, axis_y + 14, left + width + 6, axis_y + 60), fill=WHITE)
            draw.line([(x, axis_y), (x, axis_y + 12)], fill=INK, width=3)
            draw.text((left, axis_y + 18), label, font=font(30), fill=MUTED)
            right = left + width

    tag = t("Today")
    width = font(30, True).getlength(tag) + 28
    left = max(PAD / 2, min(xt - width / 2, W - PAD / 2 - width))
    draw.rounded_rectangle((left, chart_top, left + width, chart_top + 50), 12, fill=TODAY)
    draw.text((left + 14, chart_top + 5), tag, font=font(30, True), fill=WHITE)

    if timeline.estimated:
        y += 20
        for line in wrap(t("≈ estimated: the official holiday calendar for that year is not "
                           "published yet"), font(30), W - 2 * PAD):
            draw.text((PAD, y), line, font=font(30), fill=MUTED)
            y += 42
    out = io.BytesIO()
    # Fixed settings and no metadata chunks: the same timeline gives the same bytes.
    img.crop((0, 0, W, y + 50)).save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


@dataclass
class _Label:
    deadline: Deadline
    x: int
    day: str  # "≈ Jan 21": bold, in the deadline colour
    lines: list[str]  # the title, wrapped, then "act by ..." when that day differs
    indent: float
    width: float
    top: float = 0

    @property
    def bottom(self) -> float:
        return self.top + 42 * len(self.lines)

    @property
    def left(self) -> float:
        return max(PAD / 2, min(self.x - 14, W - PAD / 2 - self.width))

    def overlaps(self, other: _Label, top: float) -> bool:
        return (self.left < other.left + other.width + 24 and other.left < self.left + self.width + 24
                and top < other.bottom + 10 and other.top < top + 42 * len(self.lines) + 10)

    def crosses(self, other: _Label, top: float) -> bool:
        """Whether one label's leader line would run through the other, at `top`."""
        if other.top < top:
            return other.left - 8 <= self.x <= other.left + other.width + 8
        return self.left - 8 <= other.x <= self.left + self.width + 8


def _deadline_labels(draw: ImageDraw.ImageDraw, timeline: Timeline, t: Text, far: set[str],
                     x_of: Callable[[dt.date], int], axis_y: int) -> int:
    """Each deadline's date and title under the axis, joined to its marker by a leader line."""
    labels = []
    for deadline in timeline.deadlines:
        day = ("≈ " if deadline.estimated else "") + _md(
            deadline.date, t, with_year=deadline.date.year != timeline.today.year)
        indent = font(30, True).getlength(day) + 14
        lines = wrap(t(deadline.title), font(30), W - 2 * PAD - indent)
        if deadline.act_by != deadline.date:
            lines.append(t("act by {date}", date=_md(deadline.act_by, t)))
        width = indent + max(font(30).getlength(s) for s in lines)
        labels.append(_Label(deadline, X1 + 40 if deadline.id in far else x_of(deadline.date),
                             day, lines, indent, width))
    # Latest first, each at the highest free place: labels run rightwards from their marker, so
    # this order lets the leaders of earlier deadlines pass left of the labels above them.
    placed: list[_Label] = []
    for label in sorted(labels, key=lambda b: (b.deadline.date, b.deadline.id), reverse=True):
        tops = sorted({axis_y + 80, *(p.bottom + 10 for p in placed)})
        free = [top for top in tops if not any(label.overlaps(p, top) for p in placed)]
        clean = [top for top in free if not any(label.crosses(p, top) for p in placed)]
        label.top = (clean or free)[0]
        placed.append(label)
    for label in placed:
        x = label.x
        draw.line([(x, axis_y), (x, label.top)], fill=DEADLINE, width=2)
        draw.polygon([(x, axis_y - 11), (x + 11, axis_y), (x, axis_y + 11), (x - 11, axis_y)],
                     fill=DEADLINE)
    for label in placed:
        # White under each label (and the gap below it) hides any leader it could not avoid.
        draw.rectangle((label.left - 6, label.top - 4, label.left + label.width + 6,
                        label.bottom + 10), fill=WHITE)
        draw.text((label.left, label.top), label.day, font=font(30, True), fill=DEADLINE)
        for i, line in enumerate(label.lines):
            is_title = i < len(label.lines) - (label.deadline.act_by != label.deadline.date)
            draw.text((label.left + label.indent, label.top + 42 * i), line, font=font(30),
                      fill=INK if is_title else MUTED)
    return int(max((b.bottom for b in placed), default=axis_y + 60)) + 20
