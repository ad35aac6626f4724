"""The model table for README: test accuracy through ONNX Runtime + the app's preprocessing,
train time per epoch on this machine (measured now: one full epoch each), parameters, ONNX size.

    python -m bench.zoo_table            # accuracy re-measured through the runtime, epoch timed now
    python -m bench.zoo_table --no-time  # skip the epoch timing (no torch needed then)
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import print_table
from demo.contract import load_split
from demo.inference.runtime import ModelZoo
from training.registry import REGISTRY


def runtime_accuracy(model, images, labels) -> float:
    batch = np.stack([model.prepare(img).tensor for img in images])
    predictions = model.run(batch).argmax(1)
    return float((predictions == labels).mean())


def time_one_epoch(model_id: str) -> float:
    from training.config import config_for
    from training.train import train

    with tempfile.TemporaryDirectory(prefix="zoo_table-") as scratch:  # its own run state, not runs/<id>
        record = train(config_for(model_id, {"epochs": 1}), out_dir=Path(scratch), log_dir=Path(scratch) / "log")
    return record["seconds_per_epoch"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-time", action="store_true", help="don't train an epoch per model")
    args = p.parse_args()
    zoo = ModelZoo(provider="cpu")
    rows = []
    for model_id in [i for i, e in REGISTRY.items() if e.task == "image-classification"]:
        model = zoo.get(model_id)
        row = zoo.manifest["models"][model_id]
        images, labels = load_split(row["dataset"], "test")
        acc = runtime_accuracy(model, images, labels)
        trained_on = model.meta.train.device
        if trained_on.startswith("cuda"):  # a CPU epoch of these takes minutes: quote the recorded GPU epoch
            epoch_s = f"{row['seconds_per_epoch']:.1f} (GPU)"
        else:
            epoch_s = "n/a" if args.no_time else f"{time_one_epoch(model_id):.1f}"
        rows.append((model_id, acc, row["epochs"], epoch_s, row["params"], row["bytes"] / 1024))
    hello = []
    for model_id in [i for i, e in REGISTRY.items() if e.task == "sequence-prediction"]:
        model, row = zoo.get(model_id), zoo.manifest["models"][model_id]
        hello.append((model_id, model.predict("hello").predicted, model.meta.sequence.solved_at_epoch, f"{row['params']:,}",
                      f"{row['bytes'] / 1024:.0f}"))
    print()
    print_table(["model", "'hello' via ONNX Runtime", "solved at epoch", "parameters", "ONNX KiB"], hello,
                text_columns=2)
    print(f"\nmachine: {os.cpu_count()} CPU cores; accuracy on the full 10,000-image test set via ONNX Runtime")
    print_table(["model", "test accuracy", "epochs shipped", "train s/epoch (this machine)", "parameters", "ONNX KiB"],
                [(model_id, f"{acc:.2%}", epochs, epoch_s, f"{params:,}", f"{kib:.0f}")
                 for model_id, acc, epochs, epoch_s, params, kib in rows])


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
