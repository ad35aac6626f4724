"""Odd pictures through every image model's preprocessing, in-process: tiny, one pixel wide, long
strips, noise, blank, 16-bit, float, palette, alpha, bilevel (issue #22). Every picture must end
classified or refused with an ImageInputError (a 4xx, a CLI error row in plain words); anything else
is a crash (a 500). Seeded: the same seed draws the same pictures on any machine.

    python -m bench.odd_pictures                              # 2,500 pictures, this checkout
    python -m bench.odd_pictures --baseline /work/main        # before (that checkout's demo/) -> after

All mnist models share one input spec, so do all fashion ones: each picture is prepared once per
family (the verdict is the spec's, whichever of its ten models runs), in a child process per
checkout so each side imports its own demo/.
"""
import argparse
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
MODES = ("L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F")
CONTENTS = ("noise", "flat", "light-on-dark", "dark-on-light", "seven", "ramp")
FAMILIES = {"mnist": "mnist-cnn", "fashion": "fashion-cnn"}  # one model per shared input spec
MAX_SIDE = 4000


@dataclass(frozen=True)
class OddPicture:
    width: int
    height: int
    mode: str
    content: str
    seed: int = 0

    @property
    def name(self) -> str:
        suffix = "tif" if self.mode in ("I", "F") else "png"  # PNG stores no 32-bit grey
        return f"{self.width}x{self.height}-{self.mode.replace(';', '')}-{self.content}-{self.seed}.{suffix}"

    def encode(self) -> bytes:
        buf = io.BytesIO()
        picture(self).save(buf, format="TIFF" if self.name.endswith("tif") else "PNG")
        return buf.getvalue()


def grey_content(content: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [H, W] 0..1: what the picture shows, before it is put in its mode."""
    if content == "noise":
        return rng.random((height, width), np.float32)
    if content == "flat":
        return np.full((height, width), rng.random(), np.float32)
    if content == "ramp":
        return np.broadcast_to(np.linspace(0, 1, width, dtype=np.float32), (height, width)).copy()
    if content == "seven":  # a marker '7' drawn across the whole frame, whatever its shape
        img = Image.new("L", (width, height), 255)
        w, h = width - 1, height - 1
        ImageDraw.Draw(img).line([(0.3 * w, 0.25 * h), (0.7 * w, 0.25 * h), (0.45 * w, 0.8 * h)], fill=0,
                                 width=max(1, min(width, height) // 12))
        return np.asarray(img, np.float32) / 255
    a = np.zeros((height, width), np.float32)  # a block in the middle third
    a[height // 3:max(height // 3 + 1, 2 * height // 3), width // 3:max(width // 3 + 1, 2 * width // 3)] = 1
    return a if content == "light-on-dark" else 1 - a


def picture(spec: OddPicture) -> Image.Image:
    grey = grey_content(spec.content, spec.width, spec.height, np.random.default_rng(spec.seed))
    if spec.mode == "F":
        return Image.fromarray(grey * 255, mode="F")
    if spec.mode in ("I;16", "I"):
        return Image.fromarray((grey * 65535).astype(np.uint16)).convert(spec.mode)
    img = Image.fromarray((grey * 255).astype(np.uint8))
    if spec.mode in ("RGBA", "LA"):  # transparency that hides the left third
        alpha = np.full(grey.shape, 255, np.uint8)
        alpha[:, :spec.width // 3] = 0
        return Image.merge(spec.mode, (*img.convert(spec.mode[:-1]).split(), Image.fromarray(alpha)))
    return img.convert(spec.mode)


def random_size(rng: np.random.Generator) -> tuple[int, int]:
    """Tiny, one pixel wide, a long strip, or anything up to MAX_SIDE at any aspect ratio."""
    kind = rng.integers(4)
    if kind == 0:
        return tuple(int(v) for v in rng.integers(1, 41, 2))
    if kind == 1:
        long = int(np.exp(rng.uniform(0, np.log(40_000))))
        return (1, long) if rng.integers(2) else (long, 1)
    if kind == 2:
        short, long = int(rng.integers(2, 41)), int(np.exp(rng.uniform(np.log(40), np.log(20_000))))
        return (short, long) if rng.integers(2) else (long, short)
    return tuple(int(np.exp(rng.uniform(0, np.log(MAX_SIDE)))) for _ in range(2))


def odd_pictures(n: int, seed: int) -> list[OddPicture]:
    rng = np.random.default_rng(seed)
    return [OddPicture(*random_size(rng), str(rng.choice(MODES)), str(rng.choice(CONTENTS)), int(rng.integers(2**31)))
            for _ in range(n)]


def reason(message: str) -> str:
    """A refusal's message -> the reason it gives, in the table's words."""
    for words, why in (("too small", "too small"), ("too thin", "too thin"), ("blank", "blank"),
                       ("transparent", "blank"), ("couldn't find", "nothing found"), ("unforeseen", "unforeseen")):
        if words in message:
            return why
    return "other"


def outcome(data: bytes, spec) -> str:
    from demo.imaging.prepare import ImageInputError, preprocess  # the checkout's own, in its child process
    try:
        preprocess(data, spec)
        return "classified"
    except ImageInputError as e:
        return f"refused: {reason(str(e))}"
    except Exception as e:  # what a 500 was made of
        return f"crash: {type(e).__name__}"


def tally(n: int, seed: int) -> dict:
    """family -> outcome -> count, for this process's demo/."""
    from demo.inference.runtime import ModelZoo
    zoo = ModelZoo(provider="cpu")
    specs = {family: zoo.get(model).meta.input for family, model in FAMILIES.items()}
    counts = {family: {} for family in FAMILIES}
    for odd in odd_pictures(n, seed):
        data = odd.encode()
        for family, spec in specs.items():
            verdict = outcome(data, spec)
            counts[family][verdict] = counts[family].get(verdict, 0) + 1
    return counts


def run_checkout(checkout: Path, n: int, seed: int) -> dict:
    """The tally with `checkout`'s demo/ (this file runs there). Through runpy, not as a script: a
    script's folder comes first on sys.path, and bench/inspect.py would stand in for the standard
    library's inspect."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    child = (f"import runpy, sys; sys.argv = ['odd_pictures', '--tally', '--n', '{n}', '--seed', '{seed}']; "
             f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", child], cwd=checkout, env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.splitlines()[-1])


def print_comparison(results: dict[str, dict], n: int) -> None:
    from bench.report import print_table
    names = list(results)
    outcomes = sorted({o for r in results.values() for family in r.values() for o in family})
    rows = [[family, o] + [f"{r[family].get(o, 0):,} ({r[family].get(o, 0) / n:.1%})" for r in results.values()]
            for family in FAMILIES for o in outcomes if any(r[family].get(o) for r in results.values())]
    print_table(["family (10 models each)", "outcome"] + names, rows, text_columns=2)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2500, help="pictures (default 2,500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", default=None, help="a checkout whose demo/ gives the 'before' column")
    p.add_argument("--tally", action="store_true", help=argparse.SUPPRESS)  # the child: print JSON counts
    args = p.parse_args(argv)
    if args.tally:
        import logging
        logging.disable(logging.CRITICAL)  # an unforeseen failure is counted here, its traceback is noise
        print(json.dumps(tally(args.n, args.seed)))
        return
    results = {}
    if args.baseline:
        results["before"] = run_checkout(Path(args.baseline).resolve(), args.n, args.seed)
    results["after"] = run_checkout(ROOT, args.n, args.seed)
    print(f"{args.n:,} odd pictures (seed {args.seed}), each prepared for both input specs")
    print_comparison(results, args.n)


if __name__ == "__main__":
    main()
