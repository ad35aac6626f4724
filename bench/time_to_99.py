"""Time to 99% MNIST test accuracy, side by side in one run:

  product  `tinyzoo train mnist-cnn --target-accuracy 0.99` (training.image): the whole dataset as
           in-memory tensors, per-sample affine augmentation, AdamW + OneCycle, on CUDA the step
           captured as a CUDA graph; it stops when the test accuracy, evaluated every --eval-every
           steps with the clock stopped, reaches the target, and records seconds_to_target
  course   torchvision MNIST + ToTensor/Normalize through a DataLoader, batch 64, SGD lr 0.01
           momentum 0.5, the course's CNN (pytorch/examples-style training loop)

The clock counts training only. Runs on CUDA when there is a GPU (--device), else CPU.

    python -m bench.time_to_99 --seeds 3                          # 2-core CPU settings
    python -m bench.time_to_99 --epochs 4 --batch-size 1024 --lr 2e-2 --augment none \
        --eval-every 10 --seeds 5 --course-cap 60                   # H100 settings
"""
import argparse
import gzip
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.report import print_table
from training.config import config_for
from training.data import SPLIT_FILES, find_dataset_dir
from training.distributed import pick_device
from training.models import CourseCNN
from training.train import train

TARGET = 0.99


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def product(args, seed: int, scratch: Path) -> dict:
    """One `tinyzoo train --target-accuracy` run in a scratch folder (no shared run state) -> its record."""
    cfg = config_for(args.model, {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                  "augment": args.augment, "target_accuracy": TARGET, "eval_every": args.eval_every,
                                  "device": args.device, "seed": seed})
    return train(cfg, out_dir=scratch / f"seed{seed}", log_dir=scratch / f"seed{seed}-log")


def course(device, cap_seconds: float, seed: int = 0):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    source = find_dataset_dir("mnist", splits=("train", "test"))
    with tempfile.TemporaryDirectory() as root:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for stem in (s for pair in SPLIT_FILES.values() for s in pair):  # torchvision reads raw IDX files
            gz = source / f"{stem}.gz"
            with (gzip.open(gz) if gz.exists() else open(source / stem, "rb")) as f, open(raw / stem, "wb") as out:
                shutil.copyfileobj(f, out)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        train_set = datasets.MNIST(root, train=True, download=False, transform=tf)
        test_set = datasets.MNIST(root, train=False, download=False, transform=tf)
        torch.manual_seed(seed)
        model = CourseCNN(hidden=50, dropout=0.5).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
        test_loader = DataLoader(test_set, batch_size=1000)
        clock, epoch, acc = 0.0, 0, 0.0
        while clock < cap_seconds:
            epoch += 1
            model.train()
            sync(device)
            t0 = time.perf_counter()
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
            sync(device)
            clock += time.perf_counter() - t0
            model.eval()
            with torch.no_grad():
                correct = sum((model(x.to(device)).argmax(1) == y.to(device)).sum().item() for x, y in test_loader)
            acc = correct / len(test_set)
            print(f"  course loop: epoch {epoch}, {clock:.0f} s training, test {acc:.2%}", flush=True)
            if acc >= TARGET:
                return clock, acc, epoch
        return float("nan"), acc, epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist-cnn")
    # defaults: the fastest of the settings tried on the 2-core CPU (H100: see the docstring)
    p.add_argument("--epochs", type=int, default=2, help="OneCycle length")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=6e-3)
    p.add_argument("--augment", default="affine", choices=("affine", "none"), help="per-sample random affine or none")
    p.add_argument("--eval-every", type=int, default=50, help="steps between test evaluations (clock stopped)")
    p.add_argument("--seeds", type=int, default=3, help="product runs (seeds 0..N-1); the table gives the median")
    p.add_argument("--course-cap", type=float, default=300,
                   help="seconds of course-loop training before giving up (0: skip the course loop)")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory(prefix="time_to_99-") as scratch:
        runs = [product(args, seed, Path(scratch)) for seed in range(args.seeds)]
    for seed, r in enumerate(runs):
        print(f"  product, seed {seed}: {r['accuracy_at_target'] or r['test_accuracy']:.2%} at step "
              f"{r['steps_to_target']} after {r['training_seconds']:.3f} s of training", flush=True)
    seconds = [r["seconds_to_target"] if r["seconds_to_target"] is not None else math.inf for r in runs]
    reached = [r for r in runs if r["seconds_to_target"] is not None]
    course_s, course_acc, course_epochs = course(device, args.course_cap) if args.course_cap > 0 else (None,) * 3
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{os.cpu_count()} CPU cores, no GPU lent"
    print(f"\n{device} ({where}), training seconds until the MNIST test set reaches {TARGET:.0%}")
    graph = ", CUDA graph" if device.type == "cuda" else ""
    table = [(f"tinyzoo train {args.model} --target-accuracy {TARGET} (batch {args.batch_size}, OneCycle "
              f"{args.epochs} ep, augment {args.augment}{graph})", f"{statistics.median(seconds):.3f}",
              ", ".join(f"{s:.2f}" for s in seconds), f"{len(reached)}/{len(runs)}",
              f"{statistics.median(r['steps_to_target'] for r in reached):.0f}" if reached else "-")]
    if course_s is not None:
        course_text = f"{course_s:.1f}" if course_s == course_s else f"> {args.course_cap:.0f} (not reached)"
        table.append(("course (DataLoader, batch 64, SGD 0.01 m0.5)", course_text, "seed 0",
                      f"{course_acc:.2%} at the end", f"epoch {course_epochs}"))
    print_table(["loop", "seconds to 99% (median)", "per seed", "runs reaching 99%", "steps (median)"], table)
    if course_s is not None and course_s == course_s and reached:
        print(f"\nthe product trainer is {course_s / statistics.median(seconds):.1f}x faster")


if __name__ == "__main__":
    main()
