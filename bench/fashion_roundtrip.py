"""What a photo's resampling alone costs each Fashion model, with no photo around the item: test
items enlarged 3-8x (as an item fills part of a photo) and brought back to 28x28 by the app's
fit-pad recipe, against the items as the dataset gives them. No light, backdrop, noise or JPEG:
the points lost here are lost by every photo, whatever the analysis finds.

    python -m bench.fashion_roundtrip                 # 3,000 test items, every Fashion model
    python -m bench.fashion_roundtrip --n 10000 --seed 1
"""
import argparse

import numpy as np
from PIL import Image

from bench.report import print_table
from demo.contract import load_split, normalize
from demo.imaging.prepare import fit_pad
from demo.inference.runtime import ModelZoo

MODEL_SIZE = (28, 28)


def round_trip(item: np.ndarray, enlarged: float) -> np.ndarray:
    """A 28x28 item enlarged (bilinear, as a camera's optics and sensor spread it) and brought back
    to the model's size by the app's recipe."""
    side = int(round(MODEL_SIZE[0] * enlarged))
    big = Image.fromarray(item.astype(np.float32), mode="F").resize((side, side), Image.Resampling.BILINEAR)
    return fit_pad(np.asarray(big), MODEL_SIZE, trim=True)


def accuracy(model, pictures: np.ndarray, labels: np.ndarray) -> float:
    seen = np.clip(np.rint(pictures), 0, 255).astype(np.uint8)
    return float((model.run(normalize(seen, model.meta.input)).argmax(1) == labels).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000, help="test items, the first n (default 3,000)")
    p.add_argument("--seed", type=int, default=0, help="draws each item's enlargement")
    args = p.parse_args()

    images, labels = load_split("fashion", "test")
    images, labels = images[:args.n], labels[:args.n]
    enlarged = np.random.default_rng(args.seed).uniform(3, 8, len(images))
    trips = np.stack([round_trip(item, k) for item, k in zip(images, enlarged)])
    zoo = ModelZoo(provider="cpu")
    rows = []
    for model_id in [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == "fashion"]:
        model = zoo.get(model_id)
        as_is, trip = accuracy(model, images, labels), accuracy(model, trips, labels)
        rows.append((model_id, f"{as_is:.2%}", f"{trip:.2%}", f"{(as_is - trip) * 100:.2f}"))
    print(f"{len(images):,} Fashion-MNIST test items, enlarged 3-8x (seed {args.seed}) and back through fit-pad")
    print_table(["model", "as 28x28", "round trip", "points lost"], rows)


if __name__ == "__main__":
    main()
