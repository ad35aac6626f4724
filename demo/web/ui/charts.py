"""Small line-and-point charts drawn with PIL, for the lessons: the same picture on every machine and
in every browser, readable on a phone, and a marker that is always drawn on top."""
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARGIN = (46, 26, 12, 38)  # left, top, right, bottom: room for the axes' numbers and names
LEGEND_ROW = 20
LABEL_FONT = ImageFont.load_default(size=14)  # Pillow's own font: 10 px (its default) shrank to ~7 px on a phone


@dataclass(frozen=True)
class Series:
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    colour: tuple[int, int, int]
    label: str = ""
    style: str = "line"  # "line", "points" (dots) or "path" (a line with a dot at each point)
    width: int = 2


@dataclass(frozen=True)
class Axes:
    x: tuple[float, float]
    y: tuple[float, float]
    x_name: str
    y_name: str


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    span = max(high - low, 1e-12)
    raw = span / count
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.ceil(low / step) * step
    return [float(v) for v in np.arange(first, high + step * 1e-6, step)]


def tick_text(value: float) -> str:
    value += 0.0  # no "-0"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0e}"


def draw_axes(draw: ImageDraw.ImageDraw, box, axes: Axes, position) -> None:
    left, top, right, bottom = box
    # the two axes, not a frame: a frame's right edge, with a curve leaving through the top, read as
    # one more line drawn at the last w
    draw.line([left, top, left, bottom, right, bottom], fill=(60, 60, 60))
    for t in nice_ticks(*axes.x):
        px, _ = position(t, axes.y[0])
        draw.line([px, bottom, px, bottom + 4], fill="black")
        draw.text((px, bottom + 6), tick_text(t), fill="black", anchor="mt")
    for t in nice_ticks(*axes.y):
        _, py = position(axes.x[0], t)
        draw.line([left - 4, py, left, py], fill="black")
        draw.line([left, py, right, py], fill=(235, 235, 235))
        draw.text((left - 6, py), tick_text(t), fill="black", anchor="rm")
    draw.text((right, bottom + 22), axes.x_name, fill="black", anchor="rt")
    draw.text((4, top - 8), axes.y_name, fill="black", anchor="lb")  # above the top number, not on it


def inside_runs(points: list) -> list[list]:
    """The line's pieces that stay inside the axes (None marks a point off the chart)."""
    runs, current = [], []
    for point in points:
        if point is None:
            runs, current = runs + [current], []
        else:
            current.append(point)
    return [run for run in runs + [current] if len(run) > 1]


def draw_series(draw: ImageDraw.ImageDraw, series: Series, to_pixel) -> None:
    points = [to_pixel(x, y) if np.isfinite(x) and np.isfinite(y) else None for x, y in zip(series.xs, series.ys)]
    if series.style in ("line", "path"):
        for run in inside_runs(points):
            draw.line(run, fill=series.colour, width=series.width, joint="curve")
    points = [p for p in points if p is not None]
    if series.style in ("points", "path"):
        radius = 4 if series.style == "points" else 2.5
        for px, py in points:
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=series.colour)


def labelled(picture: Image.Image) -> ImageDraw.ImageDraw:
    """A drawing on `picture` whose text is in LABEL_FONT."""
    draw = ImageDraw.Draw(picture)
    draw.font = LABEL_FONT
    return draw


def draw_legend(draw: ImageDraw.ImageDraw, series: list[Series], left: int) -> None:
    x = left
    for s in series:
        if not s.label:
            continue
        draw.rectangle([x, 6, x + 12, 16], fill=s.colour)
        draw.text((x + 16, 11), s.label, fill="black", anchor="lm")
        x += 16 + int(draw.textlength(s.label)) + 14


def line_chart(series: list[Series], axes: Axes, size: tuple[int, int] = (420, 300)) -> Image.Image:
    """The series on one pair of axes; what falls outside the axes is left out."""
    width, height = size
    left, top, right, bottom = MARGIN[0], LEGEND_ROW + MARGIN[1], width - MARGIN[2], height - MARGIN[3]
    (x0, x1), (y0, y1) = axes.x, axes.y

    def position(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    def to_pixel(x: float, y: float) -> tuple[float, float] | None:
        """The pixel of (x, y); None off the axes (a line breaks there rather than running along the frame)."""
        px, py = position(x, y)
        inside = left - 0.5 <= px <= right + 0.5 and top - 0.5 <= py <= bottom + 0.5
        return (float(px), float(py)) if inside else None

    picture = Image.new("RGB", size, "white")
    draw = labelled(picture)
    draw_axes(draw, (left, top, right, bottom), axes, position)
    for s in series:
        draw_series(draw, s, to_pixel)
    draw_legend(draw, series, left)
    return picture
