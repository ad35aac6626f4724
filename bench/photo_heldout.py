"""A held-out set of phone photos of handwritten digits, written apart from the photo pipeline.

Each photo is an MNIST *test* digit written on paper with a pen, pencil or marker and taken with a
phone: a 2400-4000 px frame, paper texture, uneven light, a little blur and sensor noise, phone
sharpening and JPEG. Each named condition adds one effect to that base; "mixed" draws several.
The strokes come from the 28x28 digit: upscaled smoothly, then re-thresholded at the output
resolution so edges are crisp (a pen or pencil keeps the core of the stroke, a marker a wide one).
Everything is drawn from --seed alone.

    python -m bench.photo_heldout --seed 0 --per-condition 20 --out /tmp/heldout
    python -m bench.photo_heldout --seed 0 --per-condition 20 --url http://127.0.0.1:7860 --models mnist-cnn
"""
import argparse
import csv
import io
import json
import math
import statistics
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from demo.contract import normalize
from demo.contract.datasets import load_split
from demo.inference.runtime import ModelZoo

CONDITIONS = ("plain", "corner_edge", "hard_shadow", "soft_shadow", "ruled", "grid", "pencil", "marker",
              "tilt", "perspective", "exif", "jpeg", "blur", "noise", "mixed")
PHONE_FRAMES = ((4032, 3024), (4000, 3000), (3264, 2448), (2592, 1944), (2400, 1800),
                (3840, 2160), (4000, 2250), (3200, 1800), (2400, 1350))
# Colours are display values (sRGB-ish, 0-1); light is mixed in linear light.
PEN_INKS = ((0.10, 0.10, 0.12), (0.13, 0.20, 0.55), (0.10, 0.12, 0.33))
MARKER_INKS = ((0.06, 0.06, 0.07), (0.08, 0.16, 0.50), (0.07, 0.33, 0.17), (0.68, 0.10, 0.12))
PENCIL_GREY = (0.30, 0.30, 0.33)
FIELD_UPSCALE = 8  # the 28x28 digit is resampled 8x before the final resampling to frame pixels
GAMMA = 2.2
CONFIDENT = 0.9
STORED_ROTATION = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class Scene:
    frame: tuple[int, int]  # upright width, height
    digit_height: float     # ink height in frame pixels
    near_edge: bool         # the digit within a few % of a frame edge or corner
    ink: str                # pen | pencil | marker
    ink_colour: tuple
    ink_threshold: float    # pen/pencil: share of the stroke's peak kept (higher = thinner line)
    paper: str              # plain | ruled | grid
    tilt_deg: float         # the page's rotation in the frame
    writer_deg: float       # the writer's own slant on the page
    keystone: float         # 0 = camera square to the page
    desk: bool              # the page smaller than the frame, a desk around it
    shadow: str             # none | hard | soft
    defocus_px: float
    motion_px: float
    noise_sigma: float      # sensor noise at mid grey, in 0-255 units
    exposure: float
    jpeg_quality: int
    orientation: int        # EXIF orientation tag of the stored JPEG


def base_scene(rng) -> Scene:
    width, height = PHONE_FRAMES[rng.integers(len(PHONE_FRAMES))]
    if rng.random() < 0.6:  # a page is more often photographed in portrait
        width, height = height, width
    return Scene(frame=(width, height), digit_height=rng.uniform(0.08, 0.16) * min(width, height),
                 near_edge=False, ink="pen", ink_colour=PEN_INKS[rng.integers(len(PEN_INKS))],
                 ink_threshold=rng.uniform(0.62, 0.74), paper="plain", tilt_deg=rng.uniform(-4, 4),
                 writer_deg=rng.uniform(-6, 6), keystone=0.0, desk=False, shadow="none",
                 defocus_px=rng.uniform(0.4, 1.2), motion_px=0.0, noise_sigma=rng.uniform(1.0, 3.0),
                 exposure=rng.uniform(0.95, 1.2), jpeg_quality=int(rng.integers(80, 93)), orientation=1)


def with_effect(scene: Scene, effect: str, rng) -> Scene:
    """The scene with one condition's effect on top."""
    d = scene.digit_height
    changes = {
        "corner_edge": lambda: dict(near_edge=True),
        "hard_shadow": lambda: dict(shadow="hard"),
        "soft_shadow": lambda: dict(shadow="soft"),
        "ruled": lambda: dict(paper="ruled"),
        "grid": lambda: dict(paper="grid"),
        "pencil": lambda: dict(ink="pencil", ink_colour=PENCIL_GREY, ink_threshold=rng.uniform(0.64, 0.76)),
        "marker": lambda: dict(ink="marker", ink_colour=MARKER_INKS[rng.integers(len(MARKER_INKS))],
                               ink_threshold=rng.uniform(0.35, 0.45)),
        "tilt": lambda: dict(tilt_deg=rng.choice((-1, 1)) * rng.uniform(8, 18)),
        "perspective": lambda: dict(keystone=rng.uniform(0.10, 0.25), desk=bool(rng.random() < 0.5),
                                    tilt_deg=rng.uniform(-6, 6)),
        "exif": lambda: dict(orientation=int(rng.choice((3, 6, 6, 8)))),
        "jpeg": lambda: dict(jpeg_quality=int(rng.integers(60, 71))),
        "blur": lambda: (dict(defocus_px=rng.uniform(0.010, 0.022) * d) if rng.random() < 0.6
                         else dict(motion_px=rng.uniform(0.03, 0.06) * d)),
        "noise": lambda: dict(noise_sigma=rng.uniform(6.0, 11.0), exposure=rng.uniform(0.7, 0.9)),
    }
    return replace(scene, **changes[effect]())


def draw_scene(rng, condition: str) -> Scene:
    groups = (("hard_shadow", "soft_shadow"), ("ruled", "grid"), ("pencil", "marker"), ("tilt", "perspective"),
              ("corner_edge",), ("exif",), ("jpeg",), ("blur",), ("noise",))
    return scene_for(rng, condition, base_scene, with_effect, groups, 0.45)


def scene_for(rng, condition: str, base, effect, groups, chance: float):
    """The base scene, with one named effect, or for "mixed" each group's effect (one of the group)
    drawn with probability `chance`; "plain" is the base alone."""
    scene = base(rng)
    if condition == "plain":
        return scene
    if condition != "mixed":
        return effect(scene, condition, rng)
    for group in groups:
        if rng.random() < chance:
            scene = effect(scene, group[rng.integers(len(group))], rng)
    return scene


# --- the digit's ink field ----------------------------------------------------------------------

def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian on a small array (the digit's field, a few hundred pixels)."""
    radius = int(3 * sigma) + 1
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2)).astype(np.float32)
    taps /= taps.sum()
    for axis in (0, 1):
        padded = np.pad(a, [(radius, radius) if ax == axis else (0, 0) for ax in (0, 1)])
        n = a.shape[axis]
        a = sum(w * padded.take(range(i, i + n), axis=axis) for i, w in enumerate(taps))
    return a


def running_max(a: np.ndarray, size: int) -> np.ndarray:
    padded = np.pad(a, size // 2)
    rows = sliding_window_view(padded, size, axis=0).max(axis=-1)
    return sliding_window_view(rows, size, axis=1).max(axis=-1)


def stroke_field(digit: np.ndarray) -> tuple[np.ndarray, float]:
    """A smooth field over the digit whose level sets are the stroke edges, and the ink height in
    field pixels. The field is each point's share of its stroke's local peak, so one threshold gives
    the same line width on a bold or a faint MNIST digit (high: a pen's thin core; low: a marker)."""
    ink_rows, ink_cols = np.nonzero(digit > 50)
    padded = np.pad(digit.astype(np.float32) / 255, 3)
    top, bottom = ink_rows.min() + 1, ink_rows.max() + 6  # 2 px of paper around the ink
    left, right = ink_cols.min() + 1, ink_cols.max() + 6
    crop = padded[top:bottom, left:right]
    size = (crop.shape[1] * FIELD_UPSCALE, crop.shape[0] * FIELD_UPSCALE)
    field = np.asarray(Image.fromarray(crop, "F").resize(size, Image.Resampling.BICUBIC))
    ink_height = float((ink_rows.max() - ink_rows.min() + 1) * FIELD_UPSCALE)
    field = gaussian_blur(field, 0.9 * FIELD_UPSCALE)  # turns MNIST's flat-topped strokes into ridges
    peak = gaussian_blur(running_max(field, 2 * FIELD_UPSCALE + 1), 0.4 * FIELD_UPSCALE)
    return field / np.maximum(peak, 0.05) * np.clip(peak / 0.15, 0, 1), ink_height


def bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """field sampled at (x, y), 0 outside it."""
    padded = np.pad(field, 1)
    x, y = np.clip(x + 1, 0, padded.shape[1] - 1.001), np.clip(y + 1, 0, padded.shape[0] - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = x - x0, y - y0
    top = padded[y0, x0] * (1 - fx) + padded[y0, x0 + 1] * fx
    bottom = padded[y0 + 1, x0] * (1 - fx) + padded[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def antialiased_level(values: np.ndarray, level: float) -> np.ndarray:
    """Coverage of {values > level} with a one-pixel edge, from the field's own slope."""
    gy, gx = np.gradient(values)
    slope = np.maximum(np.hypot(gx, gy), 1e-4)
    return np.clip((values - level) / slope + 0.5, 0, 1)


# --- geometry: page -> frame ----------------------------------------------------------------------

def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows, float), np.array(rhs, float)), 1).reshape(3, 3)


def apply_h(h: np.ndarray, points) -> np.ndarray:
    points = np.atleast_2d(np.asarray(points, float))
    mapped = np.c_[points, np.ones(len(points))] @ h.T
    return mapped[:, :2] / mapped[:, 2:]


def page_to_frame(scene: Scene, rng) -> tuple[np.ndarray, tuple[float, float]]:
    """The homography from page units (about one frame pixel each) to the frame, and the page size."""
    width, height = scene.frame
    if scene.desk:
        short = rng.uniform(0.70, 0.86) * min(width, height)
        page = (short * math.sqrt(2), short) if width >= height else (short, short * math.sqrt(2))
        page = (min(page[0], 0.92 * width), min(page[1], 0.92 * height))
    else:  # larger than the frame at any tilt, so no page edge shows
        page = (1.8 * width, 1.8 * height)
    half = np.array(page) / 2
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * half
    side = rng.integers(4)  # the page edge farther from the camera looks shorter
    far = [side, (side + 1) % 4]
    along = corners[far[1]] - corners[far[0]]
    corners[far[0]] += along * scene.keystone / 2
    corners[far[1]] -= along * scene.keystone / 2
    corners[far] -= corners[far] * np.array([0.3 * scene.keystone])
    angle = math.radians(scene.tilt_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift = rng.uniform(-0.04, 0.04, 2) * np.array([width, height]) if scene.desk else 0
    frame_corners = corners @ rotation.T + np.array([width, height]) / 2 + shift
    page_corners = np.array([[0, 0], [page[0], 0], [page[0], page[1]], [0, page[1]]], float)
    return homography(page_corners, frame_corners), page


@dataclass(frozen=True)
class Placement:
    centre: np.ndarray   # digit centre on the page
    scale: float         # page units per field pixel
    bbox: tuple          # frame pixels x0, y0, x1, y1 around the digit


def digit_corners_on_page(centre, scale, field_shape, writer_deg) -> np.ndarray:
    h, w = field_shape
    local = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], float) / 2 * scale
    angle = math.radians(writer_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return local @ rotation.T + centre


def local_scale(h: np.ndarray, point) -> float:
    """Frame pixels per page unit around point."""
    step = np.array([[0, 0], [1, 0], [0, 1]], float) + point
    a, b, c = apply_h(h, step)
    (bx, by), (cx, cy) = b - a, c - a
    return math.sqrt(abs(bx * cy - by * cx))


def placement_for(scene, h, page, field, ink_height, frame_centre) -> tuple[Placement, np.ndarray]:
    """The digit centred at frame_centre; also its frame bbox corners."""
    hinv = np.linalg.inv(h)
    centre = apply_h(hinv, frame_centre)[0]
    scale = scene.digit_height / local_scale(h, centre) / ink_height
    on_page = digit_corners_on_page(centre, scale, field.shape, scene.writer_deg)
    in_frame = apply_h(h, on_page)
    bbox = (*in_frame.min(axis=0), *in_frame.max(axis=0))
    return Placement(centre, scale, bbox), on_page


def place_digit(scene: Scene, h, page, field, ink_height, rng) -> Placement:
    """Anywhere in the frame (and on the page) with a small margin; near an edge or corner if asked."""
    width, height = scene.frame
    margin = 0.015 * min(width, height)
    for _ in range(200):
        target = rng.uniform(0, 1, 2) * [width, height]
        sides, gap = edge_choice(rng, min(width, height)) if scene.near_edge and not scene.desk else ((0, 0), margin)
        for _ in range(3):  # the homography bends a little: move, then measure again
            placed, _ = placement_for(scene, h, page, field, ink_height, target)
            target = target + push_inside(placed.bbox, scene.frame, sides, gap)
        placed, on_page = placement_for(scene, h, page, field, ink_height, target)
        x0, y0, x1, y1 = placed.bbox
        fits = min(x0, y0) >= margin / 2 and x1 <= width - margin / 2 and y1 <= height - margin / 2
        on_paper = on_page.min() > 0.03 * min(page) and np.all(on_page < np.array(page) * 0.97)
        if fits and on_paper:
            return placed
    raise RuntimeError("no place on the page for the digit")  # not reached with these ranges


def edge_choice(rng, short: int) -> tuple[tuple[int, int], float]:
    """Which frame edges to put the digit against (-1 left/top, 1 right/bottom, 0 neither) and the gap."""
    sx, sy = rng.choice((-1, 1), 2)
    sides = ((int(sx), int(sy)), (int(sx), 0), (0, int(sy)))[rng.integers(3)]
    return sides, rng.uniform(0.005, 0.03) * short


def push_inside(bbox, frame, sides, gap) -> np.ndarray:
    """The move that puts bbox inside the frame with a margin, or gap from the chosen edges."""
    x0, y0, x1, y1 = bbox
    width, height = frame
    push = []
    for low, high, size, side in ((x0, x1, width, sides[0]), (y0, y1, height, sides[1])):
        if side < 0:
            push.append(gap - low)
        elif side > 0:
            push.append(size - gap - high)
        else:
            push.append(max(gap - low, 0) - max(high - size + gap, 0))
    return np.array(push)


# --- the page: paper, ruling, ink, desk -----------------------------------------------------------

RENDER_SCALE = 0.5  # light and optics at half the frame's pixels: a phone's own output is no sharper
DISPLAY_LUT = (np.linspace(0, 1, 65536) ** (1 / GAMMA) * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Canvas:
    size: tuple[int, int]  # width, height in render pixels
    h: np.ndarray          # page units -> render pixels
    placed: Placement      # its bbox in render pixels
    digit: float           # digit height in render pixels


def make_canvas(scene: Scene, h: np.ndarray, placed: Placement) -> Canvas:
    r = RENDER_SCALE
    size = (round(scene.frame[0] * r), round(scene.frame[1] * r))
    scaled = replace(placed, bbox=tuple(c * r for c in placed.bbox))
    return Canvas(size, np.diag([r, r, 1.0]) @ h, scaled, scene.digit_height * r)


def to_linear(colour) -> np.ndarray:
    return np.asarray(colour, np.float32) ** GAMMA


def smooth_noise(rng, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Roughly unit-variance noise whose blobs are about cell pixels across."""
    height, width = shape
    coarse = rng.standard_normal((int(height / cell) + 3, int(width / cell) + 3)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.Resampling.BICUBIC))


def page_coordinates(hinv: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Page units under each pixel of the box."""
    x = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    y = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    h = hinv.astype(np.float32)
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den


def paper_reflectance(rng, shape: tuple[int, int]) -> np.ndarray:
    tone = rng.uniform(0.86, 0.95) + rng.uniform(-0.005, 0.005, 3)
    if rng.random() < 0.25:  # cream or recycled paper
        tone = tone * np.array([1.0, 0.97, 0.89])
    fibres = 1 + 0.012 * smooth_noise(rng, shape, 2.5)
    return to_linear(tone) * fibres[..., None]


def line_coverage(coord: np.ndarray, offset: float, spacing: float, width: float) -> np.ndarray:
    """Printed lines every spacing page units; a one-render-pixel soft edge."""
    distance = np.abs((coord - offset + spacing / 2) % spacing - spacing / 2)
    return np.clip((width / 2 - distance) * RENDER_SCALE + 0.5, 0, 1)


def ruling(scene: Scene, rng, u, v, placed: Placement, ink_height: float) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and colour of the printed lines; at least one crosses the digit."""
    digit = ink_height * placed.scale
    if scene.paper == "ruled":
        spacing = rng.uniform(0.5, 0.85) * digit
        width = max(2.0, rng.uniform(0.010, 0.018) * digit)
        offset = placed.centre[1] + rng.uniform(-0.25, 0.25) * digit
        colour = (rng.uniform(0.45, 0.6), rng.uniform(0.6, 0.72), rng.uniform(0.85, 0.95))
        return line_coverage(v, offset, spacing, width) * rng.uniform(0.7, 0.95), to_linear(colour)
    spacing = rng.uniform(0.22, 0.4) * digit
    width = max(1.6, rng.uniform(0.006, 0.012) * digit)
    across = line_coverage(u, placed.centre[0] + rng.uniform(0, spacing), spacing, width)
    down = line_coverage(v, placed.centre[1] + rng.uniform(0, spacing), spacing, width)
    colour = (0.55, 0.68, 0.85) if rng.random() < 0.6 else (0.6, 0.6, 0.62)
    return np.maximum(across, down) * rng.uniform(0.6, 0.9), to_linear(colour)


def ink_box(canvas: Canvas) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = canvas.placed.bbox
    width, height = canvas.size
    return max(int(x0) - 3, 0), max(int(y0) - 3, 0), min(int(x1) + 4, width), min(int(y1) + 4, height)


def ink_alpha(scene: Scene, rng, field, canvas: Canvas, box) -> np.ndarray:
    """How much of the light each pixel of box the ink takes away (0-1)."""
    placed = canvas.placed
    u, v = page_coordinates(np.linalg.inv(canvas.h), *box)
    du, dv = u - placed.centre[0], v - placed.centre[1]
    angle = math.radians(scene.writer_deg)
    fx = (math.cos(angle) * du + math.sin(angle) * dv) / placed.scale + field.shape[1] / 2
    fy = (-math.sin(angle) * du + math.cos(angle) * dv) / placed.scale + field.shape[0] / 2
    coverage = antialiased_level(bilinear(field, fx, fy), scene.ink_threshold)
    shape = coverage.shape
    pressure = smooth_noise(rng, shape, canvas.digit / 3)
    if scene.ink == "pencil":  # graphite catches the paper's tooth: grainy, never solid
        grain = np.clip(0.8 + 0.15 * smooth_noise(rng, shape, 1.2) + 0.1 * smooth_noise(rng, shape, 4), 0, 1)
        return coverage * rng.uniform(0.6, 0.8) * grain * np.clip(1 - 0.12 * pressure, 0.7, 1)
    if scene.ink == "marker":
        return coverage * rng.uniform(0.94, 0.99)
    return coverage * rng.uniform(0.88, 0.97) * np.clip(1 - 0.08 * pressure, 0.8, 1)


def desk_reflectance(rng, shape: tuple[int, int]) -> np.ndarray:
    """Wood grain, or a plain grey or dark desk top."""
    height, width = shape
    kind = rng.choice(("wood", "wood", "grey", "dark"))
    colour = {"wood": (0.58, 0.40, 0.25), "grey": (0.45, 0.45, 0.47), "dark": (0.16, 0.15, 0.15)}[kind]
    texture = 1 + 0.04 * smooth_noise(rng, shape, 2) + 0.05 * smooth_noise(rng, shape, min(shape) / 5)
    if kind == "wood":
        angle = rng.uniform(0, math.pi)
        x = np.arange(width, dtype=np.float32)[None, :]
        y = np.arange(height, dtype=np.float32)[:, None]
        across = x * math.cos(angle) + y * math.sin(angle)
        period = rng.uniform(0.008, 0.02) * min(shape)
        texture = texture + 0.12 * np.sin(2 * math.pi * across / period + 5 * smooth_noise(rng, shape, min(shape) / 4))
    return to_linear(np.array(colour) * rng.uniform(0.85, 1.1)) * texture[..., None]


def page_image(scene: Scene, rng, canvas: Canvas, page, field, ink_height) -> np.ndarray:
    """Linear reflectance of everything in view (paper, lines, ink, desk)."""
    width, height = canvas.size
    u, v = page_coordinates(np.linalg.inv(canvas.h), 0, 0, width, height)
    reflectance = paper_reflectance(rng, (height, width))
    if scene.paper != "plain":
        coverage, colour = ruling(scene, rng, u, v, canvas.placed, ink_height)
        reflectance *= 1 - coverage[..., None] * (1 - colour)
    x0, y0, x1, y1 = box = ink_box(canvas)
    alpha = ink_alpha(scene, rng, field, canvas, box)
    reflectance[y0:y1, x0:x1] *= 1 - alpha[..., None] * (1 - to_linear(scene.ink_colour))
    if scene.desk:
        inside = np.minimum(np.minimum(u, page[0] - u), np.minimum(v, page[1] - v)) * RENDER_SCALE
        on_page = np.clip(inside + 0.5, 0, 1)[..., None]
        contact_shadow = 1 - 0.45 * np.exp(np.minimum(inside, 0) / (0.006 * min(width, height)))
        desk = desk_reflectance(rng, (height, width)) * contact_shadow[..., None]
        reflectance = reflectance * on_page + desk * (1 - on_page)
    return reflectance


# --- light and camera ------------------------------------------------------------------------------

def illumination(scene: Scene, rng, size: tuple[int, int]) -> np.ndarray:
    """Uneven light: a gradient across the view, vignetting, broad blotches; white balance per channel."""
    width, height = size
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    gx, gy = rng.uniform(-0.22, 0.22, 2)
    light = (1 + gx * x + gy * y) * (1 - rng.uniform(0.1, 0.3) * (x * x + y * y) / 2)
    light = light * (1 + 0.02 * smooth_noise(rng, (height, width), min(width, height) / 1.5))
    warmth = rng.uniform(-0.02, 0.04)  # indoor light leans warm; the phone's white balance takes most of it out
    balance = np.array([1 + warmth, 1 + 0.6 * warmth, 1 - warmth], np.float32) * (1 + rng.uniform(-0.008, 0.008, 3))
    return scene.exposure * light[..., None] * balance.astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(x))


def shadow_factor(scene: Scene, rng, canvas: Canvas) -> np.ndarray:
    """A hand's or phone's shadow whose edge (or band) crosses the digit; skylight tints it blue."""
    width, height = canvas.size
    d = canvas.digit
    x0, y0, x1, y1 = canvas.placed.bbox
    angle = rng.uniform(0, 2 * math.pi)
    x = np.arange(width, dtype=np.float32)[None, :] - (x0 + x1) / 2
    y = np.arange(height, dtype=np.float32)[:, None] - (y0 + y1) / 2
    across = x * math.cos(angle) + y * math.sin(angle) - rng.uniform(-0.3, 0.3) * d
    along = -x * math.sin(angle) + y * math.cos(angle)
    across = across + 0.08 * d * np.sin(along / (rng.uniform(1, 3) * d) + rng.uniform(0, 6.3))  # outlines bend
    soft = rng.uniform(1.0, 2.5) if scene.shadow == "hard" else rng.uniform(0.25, 0.7) * d
    inside = sigmoid(across / soft)
    if rng.random() < 0.4:  # a pen's or finger's band instead of a half plane
        band = rng.uniform(0.5, 1.5) * d
        inside = sigmoid((across + band / 2) / soft) * sigmoid((band / 2 - across) / soft)
    remain = rng.uniform(0.2, 0.42) * np.array([0.93, 0.98, 1.06], np.float32)
    return 1 - inside[..., None] * (1 - remain)


def to_display(linear: np.ndarray) -> np.ndarray:
    return DISPLAY_LUT[(np.clip(linear, 0, 1) * 65535 + 0.5).astype(np.uint16)]


def motion_blur(pixels: np.ndarray, length: float, angle: float) -> np.ndarray:
    reach = int(length / 2) + 1
    padded = np.pad(pixels, ((reach, reach), (reach, reach), (0, 0)), mode="edge")
    height, width = pixels.shape[:2]
    steps = max(int(length), 2)
    total = np.zeros(pixels.shape, np.float32)
    for t in np.linspace(-length / 2, length / 2, steps):
        dx, dy = int(round(t * math.cos(angle))), int(round(t * math.sin(angle)))
        total += padded[reach + dy: reach + dy + height, reach + dx: reach + dx + width]
    return total / steps


def camera(scene: Scene, rng, linear: np.ndarray) -> Image.Image:
    """Optics, sensor and the phone's processing, ending in the upright full-size picture."""
    r = RENDER_SCALE
    image = Image.fromarray(to_display(linear)).filter(ImageFilter.GaussianBlur(scene.defocus_px * r))
    pixels = np.asarray(image).astype(np.float32)
    if scene.motion_px:
        pixels = motion_blur(pixels, scene.motion_px * r, rng.uniform(0, math.pi))
    shape = pixels.shape[:2]
    chroma = np.stack([smooth_noise(rng, shape, 1.5) for _ in range(3)], axis=-1)  # demosaicing leaves blotches
    pixels += chroma * (0.5 * scene.noise_sigma)
    image = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.UnsharpMask(rng.uniform(1.0, 2.0), int(rng.uniform(30, 80)), 2))
    return luma_noise(rng, image.resize(scene.frame, Image.Resampling.BICUBIC), scene.noise_sigma)


def luma_noise(rng, image: Image.Image, sigma: float) -> Image.Image:
    """Per-pixel shot noise, stronger where the picture is bright."""
    pixels = np.asarray(image)
    green = pixels[..., 1].astype(np.float32)
    noise = rng.standard_normal(green.shape, dtype=np.float32) * (sigma * (0.5 + 0.5 * np.sqrt(green / 128)))
    noisy = pixels.astype(np.int16) + np.round(noise).astype(np.int16)[..., None]
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode_jpeg(image: Image.Image, scene: Scene) -> bytes:
    """The JPEG a phone writes: pixels stored as the sensor saw them, EXIF telling viewers how to turn them."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Heldout", "Phone Camera"  # Make, Model
    exif[0x0112] = scene.orientation
    if scene.orientation in STORED_ROTATION:
        image = image.transpose(STORED_ROTATION[scene.orientation])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=scene.jpeg_quality, subsampling=2, exif=exif.tobytes())
    return out.getvalue()


def render_photo(scene: Scene, digit: np.ndarray, rng) -> bytes:
    field, ink_height = stroke_field(digit)
    h, page = page_to_frame(scene, rng)
    canvas = make_canvas(scene, h, place_digit(scene, h, page, field, ink_height, rng))
    linear = page_image(scene, rng, canvas, page, field, ink_height)
    linear *= illumination(scene, rng, canvas.size)
    if scene.shadow != "none":
        linear *= shadow_factor(scene, rng, canvas)
    return encode_jpeg(camera(scene, rng, linear), scene)


# --- the set ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    condition: str
    label: int
    mnist_index: int
    jpeg: bytes

    @property
    def source(self) -> str:
        return f"MNIST test #{self.mnist_index}"

    @property
    def label_number(self) -> int:
        return self.label

    @property
    def test_index(self) -> int:
        return self.mnist_index


def iter_photos(seed: int, per_condition: int, conditions=CONDITIONS):
    """Photos one at a time (a set of full-size JPEGs is too big to hold); labels cycle 0-9 per condition.
    Each photo draws from its own (seed, condition, number) stream, so a subset of conditions or a
    smaller per_condition gives the same photos."""
    images, labels = load_split("mnist", "test")
    by_label = [np.flatnonzero(labels == k) for k in range(10)]
    for condition in conditions:
        ci = CONDITIONS.index(condition)
        for number in range(per_condition):
            rng = np.random.default_rng([seed, ci, number])
            label = (number + ci) % 10
            index = int(rng.choice(by_label[label]))
            scene = draw_scene(rng, condition)
            yield Photo(condition, label, index, render_photo(scene, images[index], rng))


def make_set(seed: int, per_condition: int, conditions=CONDITIONS) -> list[tuple[str, int, bytes]]:
    return [(p.condition, p.label, p.jpeg) for p in iter_photos(seed, per_condition, conditions)]


def write_set(photos, out: Path) -> int:
    """The JPEGs and labels.csv (file, condition, label, the test set's index) -> how many written."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "condition", "label", "test_index"])
        for number, photo in enumerate(photos):
            name = f"{number:04d}_{photo.condition}_{photo.label_number}.jpg"
            (out / name).write_bytes(photo.jpeg)
            writer.writerow([name, photo.condition, photo.label, photo.test_index])
            count += 1
    return count


def contact_sheet(photos, path: Path, thumb: int = 480, columns: int = 5) -> None:
    """One thumbnail per photo, upright as a viewer shows it, captioned with condition and label."""
    thumbs = []
    for photo in photos:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.jpeg)))
        image.thumbnail((thumb, thumb))
        cell = Image.new("RGB", (thumb, thumb + 18), "white")
        cell.paste(image, ((thumb - image.width) // 2, 18))
        ImageDraw.Draw(cell).text((4, 3), f"{photo.condition}  label {photo.label}", fill="black")
        thumbs.append(cell)
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + 18)), "grey")
    for i, cell in enumerate(thumbs):
        sheet.paste(cell, ((i % columns) * thumb, (i // columns) * (thumb + 18)))
    sheet.save(path)


# --- asking a server -------------------------------------------------------------------------------

def ask(url: str, model: str, jpeg: bytes) -> tuple[int, dict, float]:
    """POST the photo to /api/classify: status, JSON answer, round-trip ms."""
    request = urllib.request.Request(f"{url.rstrip('/')}/api/classify?model={model}", data=jpeg, method="POST",
                                     headers={"Content-Type": "image/jpeg"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    ms = (time.perf_counter() - start) * 1000
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {"error": body[:200].decode("utf-8", "replace")}
    return status, answer if isinstance(answer, dict) else {"answer": answer}, ms


def is_unsure(answer: dict) -> bool:
    """Any flag the server raises about its own answer."""
    return any(bool(answer.get(key)) for key in ("unsure", "uncertain", "low_confidence", "warning", "warnings"))


def outcome(status: int, answer: dict, label: int) -> str:
    """right | refused (4xx or a 'no digit' answer) | confident_wrong | wrong | error (5xx, no answer)."""
    if 400 <= status < 500:
        return "refused"
    if status != 200:
        return "error"
    predicted = answer.get("label")
    if predicted is None or "no digit" in str(predicted).lower() or answer.get("no_digit"):
        return "refused"
    if str(predicted) == str(label):
        return "right"
    confident = float(answer.get("confidence") or 0) >= CONFIDENT and not is_unsure(answer)
    return "confident_wrong" if confident else "wrong"


def score(photos, url: str, models: list[str], log=None) -> dict:
    """{(model, condition): [(outcome, ms), ...]}, every photo asked of every model."""
    results: dict = {}
    for photo in photos:
        for model in models:
            status, answer, ms = ask(url, model, photo.jpeg)
            result = outcome(status, answer, photo.label)
            results.setdefault((model, photo.condition), []).append((result, ms))
            if log and result != "right":
                print(f"  {model} {photo.condition} label {photo.label} ({photo.source}): {result} "
                      f"status {status} {json.dumps(answer)[:160]}", file=log)
    return results


def summary(results: dict, model: str, condition: str) -> dict | None:
    """Shares (%) of each outcome and the median ms of one model on one condition ("all": every one)."""
    rows = [r for (m, c), rs in results.items() if m == model and condition in (c, "all") for r in rs]
    if not rows:
        return None
    share = {k: 100 * sum(o == k for o, _ in rows) / len(rows) for k in ("right", "refused", "confident_wrong", "error")}
    return {**share, "n": len(rows), "ms": statistics.median(ms for _, ms in rows)}


def table(results: dict, models: list[str], conditions, baseline: dict | None = None) -> str:
    """One row per condition and model; with a baseline's results, each cell reads before -> after."""
    lines = ["| condition | model | n | right | refused | confidently wrong | errors | median ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for condition in [*conditions, "all"]:
        for model in models:
            after = summary(results, model, condition)
            if after is None:
                continue
            before = summary(baseline, model, condition) if baseline else None
            digits = 1 if after["n"] >= 100 else 0  # a share of 100 or more photos reads to a tenth
            cell = lambda key, unit="%": (f"{before[key]:.{digits}f} → {after[key]:.{digits}f}{unit}" if before  # noqa: E731
                                          else f"{after[key]:.{digits}f}{unit}")
            lines.append(f"| {condition} | {model} | {after['n']} | {cell('right')} | {cell('refused')} | "
                         f"{cell('confident_wrong')} | {cell('error')} | {cell('ms', '')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args, conditions = parse(argv, "bench.photo_heldout", __doc__, CONDITIONS, "mnist-cnn")
    photos = list(iter_photos(args.seed, args.per_condition, conditions))
    act(args, photos, conditions, f"held-out phone photos, seed {args.seed}, {args.per_condition} per condition", "mnist")
    return 0


def parse(argv, module: str, doc: str, known, model: str):
    """The held-out benches' shared command line -> (args, the conditions asked for)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-condition", type=int, default=20)
    parser.add_argument("--conditions", default=",".join(known), help="comma-separated subset")
    parser.add_argument("--out", type=Path, help="write the JPEGs and labels.csv here")
    parser.add_argument("--contact", type=Path, help="write a contact sheet PNG of the set here")
    parser.add_argument("--url", help="a running server, e.g. http://127.0.0.1:7860")
    parser.add_argument("--models", default=model, help="comma-separated model ids for --url")
    parser.add_argument("--baseline", help="with --url: a server running the code before a change; cells read before -> after")
    parser.add_argument("--verbose", action="store_true", help="with --url: one line per photo not read right")
    args = parser.parse_args(argv)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = sorted(set(conditions) - set(known))
    if unknown or args.seed < 0 or args.per_condition < 1:
        parser.error(f"unknown condition {unknown[0]!r} (known: {', '.join(known)})" if unknown
                     else "--seed must be >= 0 and --per-condition >= 1")
    if not (args.out or args.contact or args.url):
        parser.error("nothing to do: give --out DIR, --contact FILE and/or --url URL")
    return args, conditions


def act(args, photos, conditions, title: str, dataset: str) -> None:
    """What the command line asked for: the set written, a contact sheet, a server (and a baseline)
    scored, and beside it how each model reads the photos' `dataset` test items themselves."""
    if args.out:
        print(f"wrote {write_set(photos, args.out)} photos and labels.csv to {args.out}", file=sys.stderr)
    if args.contact:
        contact_sheet(photos, args.contact)
    if args.url:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        results = score(photos, args.url, models, sys.stderr if args.verbose else None)
        baseline = score(photos, args.baseline, models) if args.baseline else None
        print(title)
        print(table(results, models, conditions, baseline))
        print(items_line(photos, models, dataset))


def items_line(photos, models: list[str], dataset: str) -> str:
    """The ceiling a photo can reach: each model's accuracy on the very test items photographed,
    as the dataset gives them (in-process, the models of this checkout)."""
    images, labels = load_split(dataset, "test")
    index = np.array([p.test_index for p in photos])
    zoo, read = ModelZoo(), []
    for model_id in models:
        model = zoo.get(model_id)
        right = model.run(normalize(images[index], model.meta.input)).argmax(1) == labels[index]
        read.append(f"{model_id} {right.mean():.1%}")
    return f"the {len(index)} {dataset} test items themselves, as 28x28 test images: " + ", ".join(read)


if __name__ == "__main__":
    sys.exit(main())
