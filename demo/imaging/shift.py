"""Move and resize a 28x28 picture without re-centring it: the lesson that a convolution tolerates
a shifted digit where a dense layer does not."""
import numpy as np
from PIL import Image

SIDE = 28


def shift_and_scale(seen: np.ndarray, dx: int = 0, dy: int = 0, scale: float = 1.0) -> np.ndarray:
    """uint8 [28, 28] ink on black -> the same picture scaled about its centre by `scale`, then moved
    dx px right and dy px down; what leaves the frame is cut off, what enters is black."""
    picture = Image.fromarray(np.asarray(seen, np.uint8))
    side = max(1, int(round(SIDE * float(scale))))
    resized = np.asarray(picture.resize((side, side), Image.Resampling.BILINEAR))
    canvas = np.zeros((SIDE, SIDE), np.uint8)
    top, left = (SIDE - side) // 2 + int(dy), (SIDE - side) // 2 + int(dx)
    rows = slice(max(top, 0), min(top + side, SIDE))
    cols = slice(max(left, 0), min(left + side, SIDE))
    if rows.start < rows.stop and cols.start < cols.stop:
        canvas[rows, cols] = resized[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    return canvas
