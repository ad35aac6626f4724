"""`tinyzoo classify` throughput against (a) a bare decode loop, open + decode + grayscale in N
processes with no model: the ceiling, and (b) the course-style loop: PIL per image ->
ToTensor/Normalize -> the PyTorch model at batch 1. One run, same files, side by side.

    python -m bench.classify_speed             # 10,000 28x28 PNGs + 2,000 256x256 JPEGs from MNIST test
    python -m bench.classify_speed --n-png 3000 --n-jpeg 300 --no-course   # a quick check
    python -m bench.classify_speed --n-png 2000 --n-jpeg 0 --no-course --repeat 3 --baseline /tmp/before

`tinyzoo classify` runs in a process of its own, in this checkout's code (and in --baseline's, in
turn with it), timed from its main() call to its return: the interpreter's start and imports are
left out, its workers' start and the model's loading are in.
"""
import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.photos import ROOT, classify_in
from bench.report import print_table
from demo.contract import load_split
from demo.inference.runtime import ModelZoo


def decode_gray(path: str) -> int:
    with Image.open(path) as img:
        return img.convert("L").size[0]


def bare_decode(files: list[str], workers: int) -> float:
    # fork, as the CLI's own pool: spawned workers would re-import this module (onnxruntime,
    # numpy, ...) inside the timed loop and make the ceiling look twice as low as it is
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    started = time.perf_counter()
    with context.Pool(workers) as pool:
        for _ in pool.imap(decode_gray, files, chunksize=64):
            pass
    return len(files) / (time.perf_counter() - started)


def course_loop(files: list[str], model_id: str, models_dir: Path) -> float:
    import torch
    from torchvision import transforms

    from export.onnx_export import load_checkpoint

    entry, module, _, _ = load_checkpoint(model_id, models_dir)
    to_tensor = transforms.Compose([transforms.Grayscale(), transforms.Resize((28, 28)), transforms.ToTensor(),
                                    transforms.Normalize(entry.input.mean, entry.input.std)])
    started = time.perf_counter()
    with torch.no_grad():
        for path in files:
            module(to_tensor(Image.open(path)).unsqueeze(0)).argmax(1)
    return len(files) / (time.perf_counter() - started)


TIMED_CLI = ("import sys, time; from demo.batch.classify import main; started = time.perf_counter(); "
             "status = main(sys.argv[1:]); print(time.perf_counter() - started); sys.exit(status)")


def cli_rate(checkout: Path, folder: Path, model_id: str, out: Path) -> float:
    """images/s of `tinyzoo classify` on the folder, in `checkout`'s code."""
    done, _ = classify_in(checkout, TIMED_CLI, [str(folder), "--model", model_id, "--out", str(out)])
    if done.returncode != 0:
        raise SystemExit(f"classify in {checkout} exited {done.returncode}: {done.stderr[-500:]}")
    return sum(1 for _ in folder.iterdir()) / float(done.stdout.split()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist-cnn")
    p.add_argument("--n-png", type=int, default=10_000)
    p.add_argument("--n-jpeg", type=int, default=2_000)
    p.add_argument("--course", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the course's PIL -> torch loop (--no-course: a quick check of classify alone)")
    p.add_argument("--repeat", type=int, default=1,
                   help="time the bare decode and classify this many times each, alternately, and report each "
                        "one's median rate (this machine's rates move by a fifth from run to run)")
    p.add_argument("--baseline", default=None,
                   help="a checkout whose code gives 'before' rows: its classify and this one's run in turn")
    args = p.parse_args()
    checkouts = {"before": Path(args.baseline), "after": ROOT} if args.baseline else {"": ROOT}
    zoo = ModelZoo(provider="cpu")
    images, labels = load_split(zoo.manifest["models"][args.model]["dataset"], "test")
    workers = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"28x28 PNG": (Path(tmp) / "png", args.n_png, "png", 28),
                "256x256 JPEG": (Path(tmp) / "jpeg", args.n_jpeg, "jpg", 256)}
        for name, (folder, n, ext, side) in sets.items():
            if n == 0:  # --n-jpeg 0: a PNG-only check
                continue
            folder.mkdir()
            for i in range(n):
                img = Image.fromarray(images[i])
                (img if side == 28 else img.resize((side, side), Image.Resampling.BICUBIC)).save(folder / f"{i:05d}.{ext}")
            files = sorted(str(f) for f in folder.iterdir())
            outs = {who: Path(tmp) / f"{ext}-{i}.csv" for i, who in enumerate(checkouts)}
            timed = [(bare_decode(files, workers),
                      {who: cli_rate(checkout, folder, args.model, outs[who]) for who, checkout in checkouts.items()})
                     for _ in range(args.repeat)]
            decode = float(np.median([d for d, _ in timed]))
            course = course_loop(files, args.model, zoo.models_dir) if args.course else float("nan")
            for who in checkouts:
                predicted = [line.split(",")[1] for line in outs[who].read_text().splitlines()[1:]]
                accuracy = float(np.mean([p == str(y) for p, y in zip(predicted, labels[:n])]))
                cli = float(np.median([c[who] for _, c in timed]))
                rows.append((f"{name} {who}".strip(), n, decode, cli, course, accuracy))
    print(f"\n{workers} CPU cores; model {args.model}; images/s (higher is better; median of {args.repeat})")
    print_table(["files", "count", "bare decode (no model)", "tinyzoo classify", "course loop (PIL -> torch, batch 1)",
                 "classify / decode", "classify / course", "classify accuracy"],
                [(name, f"{n:,}", f"{decode:,.0f}", f"{cli:,.0f}", f"{course:,.0f}", f"{cli / decode:.2f}",
                  f"{cli / course:.1f}x", f"{accuracy:.2%}") for name, n, decode, cli, course, accuracy in rows])


if __name__ == "__main__":
    main()
