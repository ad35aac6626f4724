"""fp32 against int8, per image model, in one run: file size, test accuracy (recorded through
ONNX Runtime), and CPU latency at batch 1 and 256. int8 isn't always faster on a small CPU:
the table says where it is and where it isn't.

    python -m bench.int8 [--repeats 300]
"""
import argparse
import os

import numpy as np

from bench.inference import median_ms
from bench.report import print_table
from demo.contract import load_split
from demo.inference.runtime import ModelZoo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=300, help="timed runs at batch 1 (batch 256: a fifth)")
    args = p.parse_args()
    zoo = ModelZoo(provider="cpu")
    rows = []
    for model_id in zoo.ids("image-classification"):
        int8_id = f"{model_id}-int8"
        if model_id.endswith("-int8") or int8_id not in zoo.ids():
            continue
        images, _ = load_split(zoo.manifest["models"][model_id]["dataset"], "test")
        x = np.stack([zoo.get(model_id).prepare(img).tensor for img in images[:256]])
        timings = {}
        for variant in (model_id, int8_id):
            model = zoo.get(variant)
            timings[variant] = [median_ms(lambda b=b: model.run(x[:b]), args.repeats if b == 1 else args.repeats // 5)
                                for b in (1, 256)]
        fp32, int8 = zoo.manifest["models"][model_id], zoo.manifest["models"][int8_id]
        rows.append((model_id, fp32["bytes"] / 1024, int8["bytes"] / 1024, fp32["test_accuracy"],
                     int8["test_accuracy"], *timings[model_id], *timings[int8_id]))
    print(f"\n{os.cpu_count()} CPU cores, CPUExecutionProvider; median ms per run")
    print_table(["model", "KiB fp32 → int8", "accuracy fp32 → int8", "b1 fp32", "b1 int8", "b1 int8/fp32", "b256 fp32",
                 "b256 int8", "b256 int8/fp32"],
                [(m, f"{kf:.0f} → {ki:.0f}", f"{af:.2%} → {ai:.2%}", f"{f1:.3f}", f"{i1:.3f}", f"{i1 / f1:.2f}",
                  f"{f256:.3f}", f"{i256:.3f}", f"{i256 / f256:.2f}") for m, kf, ki, af, ai, f1, f256, i1, i256 in rows])


if __name__ == "__main__":
    main()
