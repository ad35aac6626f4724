"""Inference speed and provider parity for every shipped image model, in one run:
ONNX Runtime on each provider this machine really gets (CPU; CUDA when a GPU is there) against
PyTorch eager on the same batches, plus max |provider - CPU| and argmax agreement over the test set.

    python -m bench.inference               # all image models, batch 1 and 256
    python -m bench.inference --models mnist-cnn --repeats 500
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np

from bench.report import print_table
from demo.contract import load_split
from demo.inference.runtime import ImageClassifier, ModelZoo, gpu_present
from training.registry import REGISTRY


def median_ms(fn, repeats: int) -> float:
    for _ in range(min(10, repeats)):  # warm-up: arenas, kernels, caches
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples)) * 1000


def torch_runner(model_id: str, models_dir: Path, device: str):
    """PyTorch eager on the same checkpoint, or None where torch isn't installed."""
    try:
        import torch

        from export.onnx_export import load_checkpoint
    except ModuleNotFoundError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    _, module, _, _ = load_checkpoint(model_id, models_dir)
    module = module.to(device).eval()

    def run(batch: np.ndarray):
        with torch.inference_mode():
            out = module(torch.from_numpy(batch).to(device))
            if device == "cuda":
                torch.cuda.synchronize()
            return out

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", help="default: every registered image model")
    p.add_argument("--repeats", type=int, default=300, help="timed runs at batch 1 (batch 256: a fifth)")
    args = p.parse_args()

    zoo = ModelZoo(provider="cpu")
    providers = ["cpu"] + (["cuda"] if gpu_present() else [])
    rows, parity_rows = [], []
    image_models = [i for i, e in REGISTRY.items() if e.task == "image-classification"]
    for model_id in args.models or image_models:
        row = zoo.manifest["models"][model_id]
        images, labels = load_split(row["dataset"], "test")
        cpu_model = zoo.get(model_id)
        inputs = np.stack([cpu_model.prepare(img).tensor for img in images])
        cpu_logits = cpu_model.run(inputs)
        for provider in providers:
            # batch 1 on one intra-op thread (what the server does), batch 256 on all cores
            sessions = {b: ImageClassifier(cpu_model.path, row["sha256"], provider, 1 if b == 1 else 0) for b in (1, 256)}
            model = sessions[256]
            if provider != "cpu":
                logits = model.run(inputs)
                parity_rows.append((model_id, model.provider, float(np.abs(logits - cpu_logits).max()),
                                    float((logits.argmax(1) == cpu_logits.argmax(1)).mean()),
                                    float((logits.argmax(1) == labels).mean())))
            eager = torch_runner(model_id, zoo.models_dir, provider)
            for batch in (1, 256):
                x = np.ascontiguousarray(inputs[:batch])
                repeats = args.repeats if batch == 1 else max(20, args.repeats // 5)
                session, feed = sessions[batch].session, {sessions[batch].input_name: x}
                ort_ms = median_ms(lambda: session.run(None, feed), repeats)  # the engine, as eager is timed
                checked_ms = median_ms(lambda: sessions[batch].run(x), repeats)  # + tinyzoo's input checks
                torch_ms = median_ms(lambda: eager(x), repeats) if eager else float("nan")
                rows.append((model_id, model.provider, batch, ort_ms, checked_ms, torch_ms))

    print(f"\n{os.cpu_count()} CPU cores{', GPU present' if gpu_present() else ''}; median of repeated runs, "
          "same batch for both engines")
    print_table(["model", "ORT provider", "batch", "ORT session.run ms", "tinyzoo run (checked) ms", "PyTorch eager ms",
                 "eager / ORT"],
                [(model_id, provider, batch, f"{ort_ms:.3f}", f"{checked_ms:.3f}", f"{torch_ms:.3f}",
                  f"{torch_ms / ort_ms:.1f}x") for model_id, provider, batch, ort_ms, checked_ms, torch_ms in rows],
                text_columns=2)
    if parity_rows:
        print()
        print_table(["model", "provider", "max abs diff vs ORT CPU (logits)", "argmax agreement", "test accuracy"],
                    [(model_id, provider, f"{diff:.2e}", f"{agree:.2%}", f"{acc:.2%}")
                     for model_id, provider, diff, agree, acc in parity_rows], text_columns=2)


if __name__ == "__main__":
    main()
