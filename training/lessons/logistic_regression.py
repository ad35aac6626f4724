"""Logistic regression on the course's x = 1, 2, 3 -> 0, 0, 1 with BCE; the probability curve
over [0, 10] and where it crosses 0.5.

    python -m training.lessons.logistic_regression      # or: tinyzoo train logistic-regression
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.lessons.common import LessonFit, fit_full_batch, gd_results, lesson_main, pyplot, recipe, save_figure

X_DATA, Y_DATA = [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]


class Logistic(nn.Module):
    """[N, 1] -> [N, 1] probability: sigmoid(w x + b), sigmoid inside so the ONNX file outputs P(y=1)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


def fit(entry, cfg, plots_dir=None) -> LessonFit:
    """BCE + full-batch SGD at the run's lr/epochs/seed; accuracy is on the 3 training points (no held-out set)."""
    torch.manual_seed(cfg.seed)
    path = []
    model = fit_full_batch(Logistic(), X_DATA, Y_DATA, nn.functional.binary_cross_entropy, cfg.lr, cfg.epochs, path)
    w, b = model.linear.weight.item(), model.linear.bias.item()
    crossing = -b / w  # sigmoid(w x + b) = 0.5 where w x + b = 0
    xs = np.linspace(0, 10, 201, dtype=np.float32)
    with torch.no_grad():
        probs = model(torch.from_numpy(xs).view(-1, 1)).view(-1).numpy()
        train_probs = model(torch.tensor(X_DATA).view(-1, 1)).view(-1).tolist()
    print(f"Logistic regression on x = 1, 2, 3 -> 0, 0, 1 (BCE, SGD lr {cfg.lr:g}, {cfg.epochs} epochs)")
    print(f"  w = {w:.3f} b = {b:.3f}; P(y=1 | x=1, 2, 3) = {', '.join(f'{p:.3f}' for p in train_probs)}")
    print(f"  P(y=1) crosses 0.5 at x = {crossing:.3f}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, probs, label="P(y=1 | x)")
    ax.scatter(X_DATA, Y_DATA, color="black", zorder=3, label="training data")
    ax.axhline(0.5, color="gray", lw=0.8)
    ax.axvline(crossing, color="gray", lw=0.8, ls="--")
    ax.set(xlabel="x", ylabel="probability", title=f"logistic regression: 0.5 at x = {crossing:.2f}")
    ax.legend()
    plots = [save_figure(fig, "logistic-regression-curve", plots_dir)]
    train_accuracy = float(np.mean([(p >= 0.5) == bool(y) for p, y in zip(train_probs, Y_DATA)]))
    results = {"w": w, "b": b, "crossing": crossing, "train_probabilities": train_probs,
               "train_accuracy": train_accuracy, "plots": [str(p) for p in plots],
               "gd": gd_results("logistic", X_DATA, Y_DATA, cfg.lr, path)}
    return LessonFit(model, results, {"train_accuracy": train_accuracy}, {"optimizer": "sgd"})


def run(plots_dir: Path | None = None, seed: int = 0) -> dict:
    return fit(*recipe("logistic-regression", seed), plots_dir).results


def eval_data():
    return np.linspace(0, 10, 101, dtype=np.float32).reshape(-1, 1), None


main = lesson_main(__doc__, run)


if __name__ == "__main__":
    raise SystemExit(main())
