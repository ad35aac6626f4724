"""The model table for README: test accuracy through ONNX Runtime + the app's preprocessing,
train time per epoch as recorded while the shipped file was trained (the figure the app's Training
tab shows: one source for both), parameters, ONNX size.

    python -m bench.zoo_table
"""
import argparse
import os
import time

import numpy as np

from bench.report import print_table
from demo.runtime import ModelZoo
from training.data import load_split
from training.registry import REGISTRY


def runtime_accuracy(model, images, labels) -> float:
    batch = np.stack([model.preprocess(img).tensor for img in images])
    predictions = model.run(batch).argmax(1)
    return float((predictions == labels).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.parse_args()  # no options: --help prints the docstring
    zoo = ModelZoo(provider="cpu")
    rows = []
    for model_id in [i for i, e in REGISTRY.items() if e.task == "image-classification"]:
        model = zoo.get(model_id)
        row = zoo.manifest["models"][model_id]
        images, labels = load_split(row["dataset"], "test")
        acc = runtime_accuracy(model, images, labels)
        on_gpu = model.meta["train"]["device"].startswith("cuda")
        epoch_s = f"{row['seconds_per_epoch']:.1f}" + (" (GPU)" if on_gpu else "")
        rows.append((model_id, acc, row["epochs"], epoch_s, row["params"], row["bytes"] / 1024))
    hello = []
    for model_id in [i for i, e in REGISTRY.items() if e.task == "sequence-prediction"]:
        model, row = zoo.get(model_id), zoo.manifest["models"][model_id]
        hello.append((model_id, model.predict("hello").predicted, model.meta["solved_at_epoch"], f"{row['params']:,}",
                      f"{row['bytes'] / 1024:.0f}"))
    print()
    print_table(["model", "'hello' via ONNX Runtime", "solved at epoch", "parameters", "ONNX KiB"], hello,
                text_columns=2)
    print(f"\nmachine: {os.cpu_count()} CPU cores; accuracy on the full 10,000-image test set via ONNX Runtime")
    print_table(["model", "test accuracy", "epochs shipped", "train s/epoch (recorded while training)", "parameters", "ONNX KiB"],
                [(model_id, f"{acc:.2%}", epochs, epoch_s, f"{params:,}", f"{kib:.0f}")
                 for model_id, acc, epochs, epoch_s, params, kib in rows])


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
