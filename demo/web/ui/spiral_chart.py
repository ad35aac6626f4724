"""The spiral lesson's picture: each point of the plane coloured by the class a model gives it."""
import functools

import numpy as np
from PIL import Image

from demo.contract.datasets import make_spiral
from demo.web.ui.charts import labelled

SPIRAL_VIEW = 1.2  # the map spans [-1.2, 1.2] on both axes
SPIRAL_PIXELS = 300
SPIRAL_MARGIN = (34, 8, 8, 26)  # left, top, right, bottom: room for the axes' numbers
SPIRAL_LEGEND = 22  # a row above the map naming the colours
SPIRAL_COLORS = np.array([[214, 39, 40], [44, 160, 44], [31, 119, 180]], np.uint8)  # class 0, 1, 2


def spiral_pixel(x: float, y: float) -> tuple[int, int]:
    """(x, y) -> (column, row) inside the map area."""
    return (int(round((x + SPIRAL_VIEW) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1))),
            int(round((SPIRAL_VIEW - y) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1))))


def spiral_point(col: int, row: int) -> tuple[float, float] | None:
    """A click on the picture -> (x, y), or None outside the map area."""
    col, row = col - SPIRAL_MARGIN[0], row - SPIRAL_MARGIN[1] - SPIRAL_LEGEND
    if not (0 <= col < SPIRAL_PIXELS and 0 <= row < SPIRAL_PIXELS):
        return None
    return (-SPIRAL_VIEW + 2 * SPIRAL_VIEW * col / (SPIRAL_PIXELS - 1),
            SPIRAL_VIEW - 2 * SPIRAL_VIEW * row / (SPIRAL_PIXELS - 1))


@functools.cache
def spiral_training_points() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_spiral(0)
    return x[::4], y[::4]  # every 4th of the 3,000: the arms stay readable over the zones


def spiral_boundary(model, point: tuple[float, float] | None) -> Image.Image:
    """Each pixel coloured by the class the model gives its (x, y), the training points on top, the
    point marked in black; axes with their numbers and a legend of the colours around the map."""
    axis = np.linspace(-SPIRAL_VIEW, SPIRAL_VIEW, SPIRAL_PIXELS, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis[::-1])  # row 0 is the top: y = +1.2
    zone = model.run(np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
    pixels = (255 - (255 - SPIRAL_COLORS[zone].astype(np.float32)) * 0.35).astype(np.uint8)  # pale zones
    left, top, right, bottom = SPIRAL_MARGIN
    picture = Image.new("RGB", (left + SPIRAL_PIXELS + right, SPIRAL_LEGEND + top + SPIRAL_PIXELS + bottom), "white")
    origin = (left, SPIRAL_LEGEND + top)
    picture.paste(Image.fromarray(pixels), origin)
    draw = labelled(picture)
    at = lambda x, y: tuple(o + p for o, p in zip(origin, spiral_pixel(x, y)))  # noqa: E731
    for (x, y), cls in zip(*spiral_training_points()):
        cx, cy = at(x, y)
        draw.ellipse([cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5], fill=tuple(int(v) for v in SPIRAL_COLORS[cls]))
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        tx, ty = at(tick, -SPIRAL_VIEW)
        draw.line([tx, ty, tx, ty + 4], fill="black")
        draw.text((tx, ty + 6), f"{tick:g}", fill="black", anchor="mt")
        lx, ly = at(-SPIRAL_VIEW, tick)
        draw.line([lx - 4, ly, lx, ly], fill="black")
        draw.text((lx - 6, ly), f"{tick:g}", fill="black", anchor="rm")
    draw.rectangle([origin[0] - 1, origin[1] - 1, origin[0] + SPIRAL_PIXELS, origin[1] + SPIRAL_PIXELS], outline="black")
    draw.text((origin[0] + SPIRAL_PIXELS, origin[1] + SPIRAL_PIXELS + 14), "x", fill="black", anchor="rm")
    draw.text((4, origin[1]), "y", fill="black", anchor="lt")
    for cls, colour in enumerate(SPIRAL_COLORS):
        x0 = left + cls * 80
        draw.rectangle([x0, 5, x0 + 12, 17], fill=tuple(int(v) for v in colour))
        draw.text((x0 + 16, 11), f"class {cls}", fill="black", anchor="lm")
    draw.rectangle([left + 240, 7, left + 248, 15], fill="black")
    draw.text((left + 252, 11), "point", fill="black", anchor="lm")
    if point is not None:
        cx, cy = at(*point)
        draw.rectangle([cx - 4, cy - 4, cx + 4, cy + 4], fill="black")
    return picture
