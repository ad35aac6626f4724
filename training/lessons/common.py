"""What the lessons share: where plots go, a headless matplotlib, the lesson trainer."""
import argparse
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from training.config import DRY_RUN_STEPS, TrainConfig, config_for
from training.data import PROJECT_ROOT
from training.trainer import SHARED_OPTIONS, RunPaths, honoured_config, write_record

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


@dataclass
class LessonFit:
    """What a lesson's fit() hands the trainer."""
    model: torch.nn.Module  # the model the app serves
    results: dict  # the lesson's course figures (plots included), served as ONNX metadata 'results'
    measured: dict  # record top level, named by split: train_accuracy on the fitted points, test_* on held-out
    fixed: dict = field(default_factory=dict)  # settings the lesson fixes (its optimizer), recorded with the config


class LessonTrainer:
    """A lesson honours the hyper-parameters its registry recipe names (plus seed and dry run)."""
    family = "lesson"

    def honoured(self, entry) -> frozenset[str]:
        return SHARED_OPTIONS | set(entry.train)

    def fit(self, entry, cfg: TrainConfig, paths: RunPaths) -> dict:
        cfg = replace(cfg, epochs=DRY_RUN_STEPS if cfg.dry_run else cfg.epochs)
        started = time.perf_counter()
        fitted = entry.lesson.fit(entry, cfg, paths.run_dir(entry.id))
        return write_record(entry, fitted.model, paths.out_dir,
                            config=honoured_config(cfg, self.honoured(entry), fitted.fixed), history=[],
                            seconds=time.perf_counter() - started, epochs=cfg.epochs, results=fitted.results,
                            **fitted.measured)


TRAINER = LessonTrainer()


def recipe(model_id: str, seed: int):
    """-> (entry, the registry's recipe) for a lesson run on its own (`python -m training.lessons.<name>`)."""
    from training.registry import get_entry  # the registry lists the lessons: imported when run, not before

    return get_entry(model_id), config_for(model_id, {"seed": seed})


def fit_full_batch(model: torch.nn.Module, xs, ys, loss_fn, lr: float, epochs: int,
                   path: list | None = None) -> torch.nn.Module:
    """The course's loop for the toy lessons: whole data set each step, plain SGD. With `path`, a
    one-input model (model.linear) appends its (epoch, w, b, loss) at the epochs gd_epoch_recorded keeps."""
    x, y = (torch.tensor(v, dtype=torch.float32).view(-1, 1) for v in (xs, ys))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(epochs + 1):
        loss = loss_fn(model(x), y)  # at the weights after `epoch` steps
        if path is not None and gd_epoch_recorded(epoch, epochs):
            path.append([epoch, model.linear.weight.item(), model.linear.bias.item(), loss.item()])
        if epoch == epochs:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def gd_epoch_recorded(epoch: int, epochs: int) -> bool:
    """Every step of the first 100 (what a learner steps through), then every 50th and the last: a
    few kilobytes of metadata for thousands of steps."""
    return epoch <= 100 or epoch % 50 == 0 or epoch == epochs


def gd_results(kind: str, xs, ys, lr: float, path: list) -> dict:
    """The lesson's gradient descent as the app replays it (demo/inference/lessons.py reads this)."""
    return {"kind": kind, "x": list(xs), "y": list(ys), "lr": lr, "start": path[0][1:3], "path": path}


def lesson_main(doc: str, run):
    """`python -m training.lessons.<name> [--plots-dir DIR]` for a lesson's run()."""

    def main(argv=None) -> int:
        p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--plots-dir", default=None, help="where the PNGs go (default runs/lessons, env TINYZOO_PLOTS)")
        run(plots_dir=p.parse_args(argv).plots_dir)
        return 0

    return main
