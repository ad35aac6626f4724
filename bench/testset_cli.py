"""The real test sets as PNG files through `tinyzoo classify`: the accuracy must equal each model's
recorded test accuracy (manifest.json) within 0.1 point: the photo work must not touch them.

    python -m bench.testset_cli                          # mnist-cnn and fashion-cnn
    python -m bench.testset_cli --models all --n 10000
"""
import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.photos import ROOT
from bench.report import print_table
from demo.inference.runtime import ModelZoo
from training.data import load_split

CLI = "import sys; from demo.batch.classify import main; sys.exit(main(sys.argv[1:]))"


def write_pngs(folder: Path, images: np.ndarray) -> None:
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")


def cli_accuracy(folder: Path, model_id: str, labels: list[str], truth: np.ndarray, models_dir) -> float:
    out = folder / f"{model_id}.csv"
    cmd = [sys.executable, "-c", CLI, str(folder), "--model", model_id, "--out", str(out)]
    cmd += ["--models-dir", str(models_dir)] if models_dir else []
    subprocess.run(cmd, check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    with open(out, newline="") as f:
        predicted = {row["path"]: row["top1_label"] for row in csv.DictReader(f)}
    return float(np.mean([predicted[str(folder / f"{i:05d}.png")] == labels[t] for i, t in enumerate(truth)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mnist-cnn,fashion-cnn", help="comma-separated ids, or all")
    p.add_argument("--n", type=int, default=10_000, help="test images per dataset (all 10,000 to compare)")
    p.add_argument("--models-dir", default=None)
    args = p.parse_args()
    zoo = ModelZoo(args.models_dir, provider="cpu")
    ids = zoo.ids("image-classification") if args.models == "all" else args.models.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for model_id in ids:
            meta = zoo.get(model_id).meta
            dataset = meta.dataset
            images, truth = load_split(dataset, "test")
            if dataset not in folders:
                folders[dataset] = Path(tmp) / dataset
                folders[dataset].mkdir()
                write_pngs(folders[dataset], images[:args.n])
            accuracy = cli_accuracy(folders[dataset], model_id, list(meta.labels), truth[:args.n], args.models_dir)
            recorded = zoo.manifest["models"][model_id]["test_accuracy"]
            rows.append((model_id, f"{recorded:.2%}", f"{accuracy:.2%}", f"{(accuracy - recorded) * 100:+.2f}",
                         "ok" if abs(accuracy - recorded) <= 0.001 else "DIFFERS"))
    print_table(["model", "recorded test accuracy", "CLI on PNGs", "points", "within 0.1"], rows)


if __name__ == "__main__":
    main()
