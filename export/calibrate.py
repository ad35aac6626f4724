"""Temperature scaling for the shipped image classifiers, torch-free: confidence that means what it says.

    python -m export.calibrate all --models-dir /tmp/models      # every image model, in place
    python -m export.calibrate mnist-cnn --held-out 5000

One scalar T per model, fitted by minimizing the negative log-likelihood of softmax(logits / T) on a
held-out slice run through the ONNX file itself (argmax, so accuracy, is unchanged), as the app
sees it: each image once as it is (a drawing, a clean upload) and once as a photo leaves it after
the app's preparation (tilted up to 15 degrees, 2 px off, strokes a pixel thicker or thinner).
A T fitted on clean digits alone left the linear models confidently wrong on photos. The default
slice is the first N images of the TEST split: the shipped models train on all 60,000 training
images (val_size 0), so no part of the train split is held out from them; `--split train` takes
the last N training images instead, for models trained with a val slice. T does not change the
argmax, so the recorded test accuracy stands. Stored in the ONNX metadata under `calibration` =
{temperature, fitted_on, nll_before, nll_after}; the runtime divides the logits by it. The file's
sha256 in manifest.json is updated.
"""
import argparse
import functools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from PIL import Image, ImageFilter

from demo.contract import Calibration, normalize, read_manifest, sha256_file, update_manifest
from export.metadata import read_metadata, save_checked, set_metadata
from export.parity import cpu_session
from training.data import load_split

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
HELD_OUT = 5000  # images in the slice T is fitted on
TILT_DEGREES, SHIFT_PX = 15, 2  # how far a photo's prepared picture may sit from a clean one
DISTORTION_SEED = 0


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Golden-section search over log T in [1/20, 20]: NLL is unimodal in T."""
    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def as_photographed(images: np.ndarray, seed: int = DISTORTION_SEED) -> np.ndarray:
    """[N, 28, 28] uint8 -> each tilted, shifted and its strokes thickened, thinned or kept, seeded."""
    rng = np.random.default_rng(seed)
    stroke = (None, ImageFilter.MaxFilter(3), ImageFilter.MinFilter(3))
    out = np.empty_like(images)
    for i, image in enumerate(images):
        picture = Image.fromarray(image).rotate(rng.uniform(-TILT_DEGREES, TILT_DEGREES), Image.Resampling.BILINEAR,
                                                translate=tuple(rng.uniform(-SHIFT_PX, SHIFT_PX, 2)))
        width = stroke[rng.integers(len(stroke))]
        out[i] = np.asarray(picture.filter(width) if width else picture)
    return out


@functools.lru_cache(maxsize=4)
def held_out_slice(dataset: str, split: str, held_out: int) -> tuple[np.ndarray, np.ndarray, str]:
    """-> (uint8 images [2N]: the slice clean then as photographed, labels [2N], what the slice was);
    one per dataset, however many of its models `all` calibrates."""
    images, labels = load_split(dataset, split)
    window = slice(0, held_out) if split == "test" else slice(len(images) - held_out, len(images))
    name = (f"{dataset} {split}[{window.start}:{window.stop}], clean and as photographed "
            f"(tilt ±{TILT_DEGREES}°, shift ±{SHIFT_PX} px, stroke ±1 px)")
    return (np.concatenate([images[window], as_photographed(images[window])]),
            np.concatenate([labels[window]] * 2), name)


def held_out_logits(path: Path, split: str, held_out: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The ONNX file's own logits on the held-out slice -> (float64 logits [2N], labels [2N], what the slice was)."""
    meta = read_metadata(path)
    images, labels, name = held_out_slice(meta.dataset, split, held_out)
    x = normalize(images, meta.input)
    session = cpu_session(str(path))
    logits = np.concatenate([session.run([meta.tensors.output], {meta.tensors.input: x[i:i + 1000]})[0]
                             for i in range(0, len(x), 1000)])
    return logits.astype(np.float64), labels, name


def calibrate(models_dir: Path, model_id: str, held_out: int, split: str) -> Calibration:
    row = read_manifest(models_dir)["models"][model_id]
    path = models_dir / row["onnx"]
    logits, labels, slice_name = held_out_logits(path, split, held_out)
    temperature = fit_temperature(logits, labels)
    calibration = Calibration(temperature=round(temperature, 4), fitted_on=f"{slice_name}, negative log-likelihood",
                              nll_before=round(nll(logits, labels, 1.0), 5),
                              nll_after=round(nll(logits, labels, temperature), 5))
    proto = onnx.load(str(path), load_external_data=False)
    set_metadata(proto, replace(read_metadata(path), calibration=calibration))
    save_checked(proto, path)
    update_manifest(models_dir, model_id, {**row, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return calibration


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="image model ids, or all")
    p.add_argument("--models-dir", default=None, help="folder with manifest.json (default: the project's models/)")
    p.add_argument("--held-out", type=int, default=HELD_OUT, help=f"how many images (default {HELD_OUT})")
    p.add_argument("--split", choices=["test", "train"], default="test",
                   help="test: its first N images (default); train: its last N (only held out with val_size)")
    args = p.parse_args(argv)
    models_dir = Path(args.models_dir or DEFAULT_MODELS_DIR)
    rows = read_manifest(models_dir)["models"]
    images = [i for i, r in rows.items() if r.get("task") == "image-classification"]
    wanted = images if args.models == ["all"] else args.models
    unknown = [m for m in wanted if m not in images]
    if unknown:
        print(f"calibrate: not image models in {models_dir}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    for model_id in wanted:
        c = calibrate(models_dir, model_id, args.held_out, args.split)
        print(f"{model_id}: T = {c.temperature:.3f}, NLL {c.nll_before:.4f} -> {c.nll_after:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
