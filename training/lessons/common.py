"""What the lessons share: where plots go, a headless matplotlib, saving a lesson model."""
import argparse
import json
import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from training.data import PROJECT_ROOT
from training.models import count_parameters

PLOTS_DIR = Path(os.environ.get("TINYZOO_PLOTS", PROJECT_ROOT / "runs" / "lessons"))


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, name: str, plots_dir: Path | None = None) -> Path:
    plots_dir = Path(plots_dir or PLOTS_DIR)
    plots_dir.mkdir(parents=True, exist_ok=True)
    path = plots_dir / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    print(f"  plot: {path}")
    return path


def save_lesson_model(entry, model: torch.nn.Module, out_dir: Path, results: dict, started: float,
                      epochs: int, config: dict) -> dict:
    """Checkpoint (safetensors) + JSON record in the same shape the image/sequence trainers write."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out_dir / f"{entry.id}.safetensors")
    record = {
        "id": entry.id, "dataset": entry.dataset, "arch": entry.arch, "model_args": entry.model_args,
        "config": config, "params": count_parameters(model), "results": results,
        "test_accuracy": results.get("test_accuracy"),
        "seconds_per_epoch": (time.perf_counter() - started) / max(epochs, 1), "device": "cpu",
        "torch_version": torch.__version__, "epochs": epochs,
    }
    (out_dir / f"{entry.id}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"  model: {out_dir / entry.id}.safetensors")
    return record


def fit_full_batch(model: torch.nn.Module, xs, ys, loss_fn, lr: float, epochs: int) -> torch.nn.Module:
    """The course's loop for the toy lessons: whole data set each step, plain SGD."""
    x, y = (torch.tensor(v, dtype=torch.float32).view(-1, 1) for v in (xs, ys))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def lesson_main(doc: str, run):
    """`python -m training.lessons.<name> [--plots-dir DIR]` for a lesson's run()."""

    def main(argv=None) -> int:
        p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--plots-dir", default=None, help="where the PNGs go (default runs/lessons, env TINYZOO_PLOTS)")
        run(plots_dir=p.parse_args(argv).plots_dir)
        return 0

    return main
