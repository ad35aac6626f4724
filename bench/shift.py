"""Why CNNs: one MNIST test digit per class, moved ±6 px without the app's re-centring, through every
MNIST model (each picture is 28x28, so the app takes it as is). Prints how many of the 10 each
model still reads right.

    python -m bench.shift [--shift 6] [--data-dir DIR]
"""
import argparse

import numpy as np

from demo.contract import load_split
from demo.imaging.shift import shift_and_scale
from demo.inference.runtime import ModelZoo

MOVES = {"centred": (0, 0), "right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


def one_per_class(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first test digit of each class, in class order."""
    first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    return images[first], labels[first]


def shift_table(zoo: ModelZoo, images, labels, pixels: int) -> dict[str, dict[str, int]]:
    """model id -> {move: digits read right of the 10}."""
    table = {}
    for model_id in [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == "mnist"]:
        model = zoo.get(model_id)
        table[model_id] = {}
        for move, (sx, sy) in MOVES.items():
            right = [model.classify(shift_and_scale(image, sx * pixels, sy * pixels), 1).label == str(label)
                     for image, label in zip(images, labels)]
            table[model_id][move] = int(sum(right))
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shift", type=int, default=6, help="pixels to move (default 6)")
    p.add_argument("--data-dir", default=None, help="folder with MNIST's IDX files (env TINYZOO_DATA)")
    args = p.parse_args(argv)
    images, labels = one_per_class(*load_split("mnist", "test", args.data_dir))
    table = shift_table(ModelZoo(), images, labels, args.shift)
    moves = [m if m == "centred" else f"{m} {args.shift}px" for m in MOVES]
    print(f"| model | {' | '.join(moves)} |\n|---|{'---|' * len(moves)}")
    for model_id, row in table.items():
        print(f"| {model_id} | {' | '.join(f'{v}/10' for v in row.values())} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
