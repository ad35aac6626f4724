"""Digits traced from real handwriting: an MNIST test digit thinned to its skeleton, the skeleton
ordered into pen strokes (polylines), placed at a random size and position on a square pad.

What a person's mouse or finger would draw, so the browser tests and bench/drawing.py can draw
real digit shapes instead of one hand-made 7. Seeded: the same seed gives the same strokes.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

UPSAMPLE = 2  # thin a 56x56 copy: a smoother skeleton than the 28x28 grid gives
NEIGHBOURS = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]  # 4-neighbours first


@dataclass
class TracedDigit:
    label: int
    index: int  # position in the MNIST test split
    strokes: list[list[tuple[float, float]]]  # pen-down polylines, (x, y) as fractions of the pad side
    size: float  # the digit's longer side as a fraction of the pad side


def _thin_pass(img: np.ndarray, first: bool) -> np.ndarray:
    """One Zhang-Suen sub-iteration: which pixels to delete."""
    p = np.pad(img, 1)
    n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
    count = sum(x.astype(int) for x in n)  # neighbours P2..P9 clockwise from north
    transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(int) for i in range(8))
    p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
    if first:
        cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
    else:
        cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
    return (img == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond


def skeletonize(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 image to one-pixel-wide lines."""
    img = binary.astype(np.uint8).copy()
    while True:
        changed = False
        for first in (True, False):
            delete = _thin_pass(img, first)
            if delete.any():
                img[delete] = 0
                changed = True
        if not changed:
            return img


def _unvisited_neighbours(pixel, pixels: set, visited: set) -> list:
    y, x = pixel
    return [(y + dy, x + dx) for dy, dx in NEIGHBOURS if (y + dy, x + dx) in pixels and (y + dy, x + dx) not in visited]


def order_strokes(skeleton: np.ndarray) -> list[list[tuple[int, int]]]:
    """Skeleton pixels -> polylines of (row, col): start at line ends, walk until stuck, repeat.
    A stroke that starts beside an already drawn pixel begins there, so junctions stay joined."""
    pixels = set(map(tuple, np.argwhere(skeleton > 0)))
    visited: set = set()
    strokes = []
    while len(visited) < len(pixels):
        rest = sorted(pixels - visited)
        start = min(rest, key=lambda q: (len(_unvisited_neighbours(q, pixels, visited)), q))  # an end if any
        stroke = [start]
        joined = [(start[0] + dy, start[1] + dx) for dy, dx in NEIGHBOURS if (start[0] + dy, start[1] + dx) in visited]
        if joined:
            stroke.insert(0, joined[0])
        visited.add(start)
        while True:
            ahead = _unvisited_neighbours(stroke[-1], pixels, visited)
            if not ahead:
                break
            visited.add(ahead[0])
            stroke.append(ahead[0])
        if len(stroke) > 2 or not strokes:  # a lone spur pixel adds nothing a person would draw
            strokes.append(stroke)
    return strokes


def trace(image: np.ndarray) -> list[list[tuple[float, float]]]:
    """28x28 MNIST digit -> strokes as (x, y) in the digit's own pixel units (upsampled grid)."""
    big = np.asarray(Image.fromarray(image).resize((28 * UPSAMPLE,) * 2, Image.Resampling.BILINEAR))
    strokes = order_strokes(skeletonize(big > 127))
    return [[(float(c), float(r)) for r, c in stroke] for stroke in strokes]


def place(strokes, rng: np.random.Generator, size_range=(0.35, 0.9)) -> tuple[list, float]:
    """Scale the strokes so the longer side is a random fraction of the pad; put them anywhere on it."""
    points = np.concatenate([np.asarray(s) for s in strokes])
    low, high = points.min(0), points.max(0)
    extent = max(float((high - low).max()), 1.0)
    size = float(rng.uniform(*size_range))
    span = (high - low) / extent * size
    margin = 0.02  # the brush's own width stays on the pad
    offset = np.array([rng.uniform(margin, max(margin, 1 - margin - span[0])),
                       rng.uniform(margin, max(margin, 1 - margin - span[1]))])
    placed = [[tuple(map(float, (np.asarray(p) - low) / extent * size + offset)) for p in s] for s in strokes]
    return placed, size


def traced_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0,
                  size_range=(0.35, 0.9)) -> list[TracedDigit]:
    """n test digits, a balanced spread of classes, each traced and placed at random."""
    rng = np.random.default_rng(seed)
    digits = []
    for i in range(n):
        candidates = np.flatnonzero(labels == i % 10)
        index = int(rng.choice(candidates))
        strokes, size = place(trace(images[index]), rng, size_range)
        digits.append(TracedDigit(int(labels[index]), index, strokes, size))
    return digits
