"""How far an int8 model's test accuracy moves when ONNX Runtime takes another kernel path, as it
does on another CPU: graph optimizations on (fused int8 kernels, what users get) or off (QDQ run
as separate Quantize/Dequantize + fp32 ops), one thread or several (another split of the sums).
The recorded figure (the exporting machine's) sits beside them; tests/test_int8.py's tolerance
must cover the spread.

    python -m bench.int8_drift [--models mnist-softmax fashion-cnn ...]
"""
import argparse
import os

import numpy as np
import onnxruntime as ort

from bench.report import print_table
from demo.inference.runtime import ModelZoo
from training.data import load_split

SETTINGS = {  # name -> (graph optimization level, intra-op threads)
    "all, 1 thread": (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 1),
    "all, 2 threads": (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, 2),
    "basic, 1 thread": (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, 1),
    "none, 1 thread": (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, 1),
}


def accuracy_with(path, level, threads: int, meta, x: np.ndarray, labels: np.ndarray) -> float:
    opts = ort.SessionOptions()
    opts.graph_optimization_level, opts.intra_op_num_threads = level, threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run([meta.tensors.output], {meta.tensors.input: x[i:i + 1000]})[0]
                             for i in range(0, len(x), 1000)])
    return float((logits.argmax(1) == labels).mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=None, help="fp32 image model ids (default: every one with an int8 variant)")
    args = p.parse_args(argv)
    zoo = ModelZoo(provider="cpu")
    ids = args.models or [i[:-len("-int8")] for i in zoo.ids("image-classification") if i.endswith("-int8")]
    rows = []
    for model_id in ids:
        int8 = zoo.get(f"{model_id}-int8")
        images, labels = load_split(int8.meta.dataset, "test")
        x = np.stack([int8.prepare(img).tensor for img in images])
        measured = [accuracy_with(int8.path, *SETTINGS[name], int8.meta, x, labels) for name in SETTINGS]
        recorded = int8.meta.measurements.test_accuracy
        spread = max(abs(a - recorded) for a in measured) * 100
        rows.append((f"{model_id}-int8", f"{recorded:.4f}", *(f"{a:.4f}" for a in measured), f"{spread:.2f}"))
    print(f"\n{os.cpu_count()} CPU cores, onnxruntime {ort.__version__}; test accuracy per ORT setting")
    print_table(["model", "recorded", *SETTINGS, "max |here - recorded| (pt)"], rows)


if __name__ == "__main__":
    main()
