"""'Wild upload' benchmark: every MNIST test digit re-rendered the way a user sends one, then
classified through the app's preprocessing and, side by side, through naive resizing.

A wild image: black ink on (slightly grey) white paper, the digit upscaled to 100-400 px,
strokes thinned or thickened, placed at a random position and scale inside a larger canvas of
random aspect, saved as RGB PNG, RGBA PNG (transparent paper) or JPEG (quality 40-90).

    python -m bench.wild_upload                 # all 10,000 test digits, mnist-cnn
    python -m bench.wild_upload --n 2000 --model mnist-mlp
"""
import argparse
import io
import time

import numpy as np
from PIL import Image, ImageFilter

from bench.report import print_table
from demo.contract import InputSpec, load_split
from demo.inference.runtime import ModelZoo

FORMATS = ("png-rgb", "png-rgba", "jpeg")
STROKES = ("thin", "as-is", "thick")


def _odd(x: float) -> int:
    return max(3, int(round(x)) | 1)


def render_wild(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """uint8 [28,28] white-on-black digit -> (encoded file bytes, 'format/stroke' tag)."""
    side = int(rng.integers(100, 401))
    scale = side / 28
    ink = Image.fromarray(255 - digit).resize((side, side), Image.Resampling.BICUBIC)  # black on white
    stroke = STROKES[rng.integers(len(STROKES))]
    if stroke != "as-is":
        # k x k min (grow dark strokes) or max (shrink them) filter, as (k-1)/2 passes of 3x3: same result, faster
        size = _odd(scale * (1.2 if stroke == "thick" else 0.8))
        rank = ImageFilter.MinFilter(3) if stroke == "thick" else ImageFilter.MaxFilter(3)
        for _ in range((size - 1) // 2):
            ink = ink.filter(rank)
    width, height = (int(side * rng.uniform(1.1, 2.2)) for _ in range(2))
    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    darkness = np.zeros((height, width), np.float32)  # 0 paper .. 1 full ink
    darkness[top:top + side, left:left + side] = 1 - np.asarray(ink, np.float32) / 255
    fmt = FORMATS[rng.integers(len(FORMATS))]
    buf = io.BytesIO()
    if fmt == "png-rgba":  # black ink, alpha = ink: transparent paper
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[..., 3] = np.rint(darkness * 255).astype(np.uint8)
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    else:
        paper = float(rng.integers(215, 256))
        grey = np.rint(paper * (1 - darkness) + 10 * darkness).astype(np.uint8)
        rgb = Image.fromarray(grey).convert("RGB")
        if fmt == "jpeg":
            rgb.save(buf, format="JPEG", quality=int(rng.integers(40, 91)))
        else:
            rgb.save(buf, format="PNG")
    return buf.getvalue(), f"{fmt}/{stroke}"


def naive_tensor(data: bytes, input_spec: InputSpec, invert: bool) -> np.ndarray:
    """What many tutorials do: open, grey, squash to 28x28 (optionally invert), normalize."""
    img = Image.open(io.BytesIO(data))
    if img.mode == "RGBA":  # composite on white, or the ink would vanish
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img)
    grey = np.asarray(img.convert("L").resize(tuple(input_spec.shape[1:]), Image.Resampling.BILINEAR), np.float32)
    if invert:
        grey = 255 - grey
    mean, std = input_spec.mean[0], input_spec.std[0]
    return ((grey * input_spec.scale - mean) / std)[None]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist-cnn")
    p.add_argument("--n", type=int, default=10_000, help="how many test digits (from the start of the test set)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    model = ModelZoo(provider="cpu").get(args.model)
    images, labels = load_split(model.meta.dataset, "test")
    images, labels = images[:args.n], labels[:args.n]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    files = [render_wild(img, rng) for img in images]
    print(f"rendered {len(files)} wild images in {time.perf_counter() - started:.0f} s "
          f"(median {np.median([len(f) for f, _ in files]) / 1024:.1f} KiB)")

    methods = {
        "app preprocessing (demo/imaging/prepare.py)": lambda data: model.prepare(data).tensor,
        "naive: resize to 28x28": lambda data: naive_tensor(data, model.meta.input, invert=False),
        "naive: resize + invert": lambda data: naive_tensor(data, model.meta.input, invert=True),
    }
    rows = []
    for name, prep in methods.items():
        tensors, times, failed = [], [], 0
        for data, _ in files:
            t0 = time.perf_counter()
            try:
                tensors.append(prep(data))
            except ValueError:  # e.g. ink erased entirely: counted wrong, not skipped
                tensors.append(np.full(tuple(model.input_shape), np.nan, np.float32))
                failed += 1
            times.append(time.perf_counter() - t0)
        batch = np.nan_to_num(np.stack(tensors), nan=-1e3).astype(np.float32)
        predicted = model.run(batch).argmax(1)
        correct = predicted == labels
        correct[np.isnan(np.stack(tensors)).any(axis=(1, 2, 3))] = False
        by_tag = {}
        for (_, tag), ok in zip(files, correct):
            by_tag.setdefault(tag.split("/")[1], []).append(ok)
        rows.append((name, correct.mean(), {k: np.mean(v) for k, v in by_tag.items()}, np.median(times) * 1000,
                     failed))

    print(f"\nmodel {args.model}; {len(files)} wild MNIST test digits (seed {args.seed}); "
          f"recorded clean test accuracy {model.meta.measurements.test_accuracy:.2%}")
    print_table(["preprocessing", "accuracy", "thin strokes", "as-is", "thick strokes", "median ms/image (decode+prep)",
                 "errors"],
                [(name, f"{acc:.2%}", *(f"{by_stroke.get(s, 0):.2%}" for s in ("thin", "as-is", "thick")), f"{ms:.2f}",
                  failed) for name, acc, by_stroke, ms, failed in rows])


if __name__ == "__main__":
    main()
