"""Photos of kinds the photo analysis was never tuned on: a stand-in for the independent photo sets
that judge it. Built from the same physics as bench/photo_scenes.py (reflectance x light, lens,
sensor, JPEG), seeded, one generator per condition:

- sticky note: a yellow square note stuck on a white page or a desk, a felt-tip digit on it
- marker: a fat felt-tip marker, strokes about twice a pen's
- hard shadow: a sharp-edged shadow (the phone's own) across the digit
- dim light: underexposed, grainy, low JPEG quality
- glare: a bright reflection on glossy paper beside or over the strokes
- motion blur: the hand moved while taking it
- coloured paper: pale blue, pink or green sheets
- fine pen, far away: a thin pen, the digit 6-10% of a 2000-3000 px frame
- chalkboard: light chalk on a dark green or black board, lit unevenly or half in shadow

    python -m bench.photo_stress                       # 30 per condition, every MNIST model, in-process
    python -m bench.photo_stress --models mnist-cnn --per-condition 60 --seed 1 --montage /tmp/stress.png
"""
import argparse
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.photo_scenes import INKS, Photo, camera, frame_size, make_photos, page_with_digit, paper, ramp
from bench.photos import CONFIDENT, montage
from bench.report import print_table
from demo.imaging.prepare import ImageInputError
from demo.inference.runtime import ModelZoo
from training.data import load_split

STRESS_CONDITIONS = ("sticky note", "marker", "hard shadow", "dim light", "glare", "motion blur", "coloured paper",
                     "fine pen, far away", "chalkboard")
PAPER_TONES = {"blue": (0.78, 0.88, 0.97), "pink": (0.98, 0.84, 0.88), "green": (0.84, 0.95, 0.82)}


def sticky_note(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shape = frame_size(rng, 600, 1400)
    h, w = shape
    on_desk = rng.random() < 0.5
    scene = (np.asarray(rng.uniform([0.3, 0.2, 0.1], [0.55, 0.4, 0.25]), np.float32)[None, None, :]
             * np.ones((h, w, 1), np.float32)) if on_desk else paper(shape, rng)
    side = int(rng.uniform(0.45, 0.7) * min(h, w))
    note = page_with_digit(digit, (side, side), rng.uniform(0.45, 0.7), rng, ink="black",
                           width=rng.uniform(1.3, 1.8))
    note = note * (np.asarray((1.0, 0.93, 0.45), np.float32) / note.reshape(-1, 3).max(0))[None, None, :]
    top, left = int(rng.uniform(0.2, 0.8) * (h - side)), int(rng.uniform(0.2, 0.8) * (w - side))
    angle = rng.uniform(-8, 8)
    rotated = [np.asarray(Image.fromarray(note[..., c].astype(np.float32), mode="F").rotate(
        angle, Image.Resampling.BILINEAR, fillcolor=-1.0)) for c in range(3)]
    patch = np.stack(rotated, -1)
    region = scene[top:top + side, left:left + side]
    scene[top:top + side, left:left + side] = np.where(patch[..., :1] < 0, region, patch)
    return scene * ramp(shape, rng, (0.7, 0.9))[..., None]


def chalkboard(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shape = frame_size(rng, 600, 1400)
    board = np.asarray([(0.12, 0.22, 0.16), (0.1, 0.1, 0.11)][rng.integers(2)], np.float32) * rng.uniform(0.8, 1.3)
    page = page_with_digit(digit, shape, rng.uniform(0.25, 0.5), rng, ink="black", width=rng.uniform(1.0, 1.5))
    chalk = 1 - page.mean(-1, keepdims=True) / page.mean(-1).max()  # 0 on the board, 1 on the strokes
    chalk = chalk * rng.uniform(0.6, 1.0, shape)[..., None]  # the board's grain shows through chalk
    scene = board[None, None, :] * (1 - chalk) + 0.85 * chalk
    light = hard_shadow(shape, rng) if rng.random() < 0.5 else ramp(shape, rng, (0.5, 0.8))
    return scene * light[..., None]


def hard_shadow(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A half-plane shadow with a sharp edge through the middle third of the frame."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    side = ((xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)) > 0
    mask = Image.fromarray((side * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(1, 0.01 * max(h, w))))
    return 1 - rng.uniform(0.4, 0.65) * np.asarray(mask, np.float32) / 255


def glare(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Additive light of a reflection: an elongated bright blob somewhere on the page."""
    h, w = shape
    layer = Image.new("L", (w, h), 0)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    rx, ry = rng.uniform(0.05, 0.2) * w, rng.uniform(0.03, 0.1) * h
    ImageDraw.Draw(layer).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    layer = layer.filter(ImageFilter.GaussianBlur(0.5 * min(rx, ry)))
    return rng.uniform(0.3, 0.6) * np.asarray(layer, np.float32) / 255


def stress_photo(digit: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """One photo of a 28x28 MNIST digit under a STRESS_CONDITIONS `condition`."""
    if condition == "sticky note":
        return camera(sticky_note(digit, rng), rng)
    if condition == "chalkboard":
        return camera(chalkboard(digit, rng), rng)
    far = condition == "fine pen, far away"
    shape = frame_size(rng, 2000, 3000) if far else frame_size(rng, 500, 1300)
    frac = rng.uniform(0.06, 0.1) if far else rng.uniform(0.25, 0.5)
    options = {"marker": dict(width=rng.uniform(1.2, 1.8)), "fine pen, far away": dict(width=rng.uniform(0.55, 0.75))}
    if condition == "marker":  # a felt tip: strokes half a pixel fatter on every side at 28 px, then wider still
        digit = np.asarray(Image.fromarray(digit).resize((56, 56), Image.Resampling.BICUBIC).filter(ImageFilter.MaxFilter(3)))
    ink = list(INKS)[rng.integers(len(INKS))] if condition == "coloured paper" else "black"
    page = page_with_digit(digit, shape, frac, rng, ink=ink, **options.get(condition, {}))
    if condition == "coloured paper":
        page = page * np.asarray(PAPER_TONES[list(PAPER_TONES)[rng.integers(3)]], np.float32)[None, None, :]
    light = {"hard shadow": lambda: hard_shadow(shape, rng),
             "dim light": lambda: rng.uniform(0.25, 0.45) * ramp(shape, rng, (0.6, 0.9))}.get(
        condition, lambda: ramp(shape, rng, (0.75, 0.95)))()
    scene = page * light[..., None]
    if condition == "glare":
        scene = scene + glare(shape, rng)[..., None]
    if condition == "motion blur":
        scene = motion_blur(scene, int(rng.uniform(0.006, 0.015) * max(shape)), rng.uniform(0, 180))
    if condition == "dim light":
        return grainy(scene, rng)
    return camera(scene, rng)


def motion_blur(rgb: np.ndarray, length: int, degrees: float) -> np.ndarray:
    """Average of `length` copies shifted along a line at `degrees`."""
    out = np.zeros_like(rgb)
    dx, dy = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    for t in np.linspace(-length / 2, length / 2, max(2, length)):
        out += np.roll(rgb, (int(round(t * dy)), int(round(t * dx))), axis=(0, 1))
    return out / max(2, length)


def grainy(rgb: np.ndarray, rng: np.random.Generator) -> bytes:
    """Underexposed sensor: strong per-channel noise, then a low-quality JPEG."""
    a = np.clip(rgb * 255, 0, 255) + rng.uniform(6, 12) * rng.standard_normal(rgb.shape)
    buf = io.BytesIO()
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    img.save(buf, format="JPEG", quality=int(rng.integers(35, 60)))
    return buf.getvalue()


def score(model, photos: list[Photo]) -> dict:
    rows = {}
    for p in photos:
        try:
            pred = model.classify(p.data)
            right, unsure = pred.label == str(p.label), pred.unsure
            confident_wrong = not right and not unsure and pred.confidence >= CONFIDENT
        except ImageInputError:
            right, unsure, confident_wrong = False, True, False
        rows.setdefault(p.condition, []).append((right, confident_wrong, unsure))
    every = [r for v in rows.values() for r in v]
    return {"conditions": {c: np.mean([r[0] for r in v]) for c, v in rows.items()},
            "all": np.mean([r[0] for r in every]), "confidently wrong": np.mean([r[1] for r in every]),
            "unsure": np.mean([r[2] for r in every])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-condition", type=int, default=30, help="photos per condition (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="all", help="comma-separated MNIST model ids, or all (default)")
    p.add_argument("--montage", default=None, help="write a PNG of what mnist-cnn saw here")
    args = p.parse_args()

    images, labels = load_split("mnist", "test")
    photos = make_photos(images, labels, STRESS_CONDITIONS, args.per_condition, args.seed, stress_photo)
    zoo = ModelZoo(provider="cpu")
    wanted = [m for m in zoo.ids("image-classification") if m.startswith("mnist")] if args.models == "all" \
        else args.models.split(",")
    rows = []
    for model_id in wanted:
        r = score(zoo.get(model_id), photos)
        rows.append([model_id, *(f"{r['conditions'][c]:.0%}" for c in STRESS_CONDITIONS), f"{r['all']:.1%}",
                     f"{r['confidently wrong']:.1%}", f"{r['unsure']:.1%}"])
    print(f"{len(photos)} photos (seed {args.seed}), conditions the analysis was not tuned on")
    print_table(["model", *STRESS_CONDITIONS, "all", "conf. wrong", "unsure"], rows)
    if args.montage:
        montage({"mnist": photos}, {"mnist": "mnist-cnn"}, args.montage)


if __name__ == "__main__":
    main()
