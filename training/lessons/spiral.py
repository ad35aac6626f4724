"""The classic 3-class spiral (1,000 points per class, 2-D): a linear classifier against a
2-layer ReLU net (hidden 100), with both decision boundaries as images.

    python -m training.lessons.spiral                   # or: tinyzoo train spiral-linear spiral-mlp
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from demo.contract.datasets import SPIRAL_CLASSES as CLASSES
from demo.contract.datasets import make_spiral
from training.lessons.common import LessonFit, lesson_main, pyplot, recipe, save_figure


class SpiralLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, CLASSES)

    def forward(self, x):
        return self.linear(x)


class SpiralMLP(nn.Module):
    def __init__(self, hidden: int = 100):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, x):
        return self.net(x)


def fit_points(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg) -> nn.Module:
    """Full-batch Adam on the training spiral at the run's epochs/lr/weight decay."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(cfg.epochs):
        loss = nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1) == torch.from_numpy(y)).float().mean())


def plot_boundary(model: nn.Module, x: np.ndarray, y: np.ndarray, title: str, name: str, plots_dir) -> Path:
    plt = pyplot()
    gx, gy = np.meshgrid(np.linspace(-1.2, 1.2, 300), np.linspace(-1.2, 1.2, 300))
    grid = torch.from_numpy(np.c_[gx.ravel(), gy.ravel()].astype(np.float32))
    with torch.no_grad():
        zone = model(grid).argmax(1).numpy().reshape(gx.shape)
    from matplotlib.colors import ListedColormap

    colors = ListedColormap(["#d62728", "#2ca02c", "#1f77b4"])  # one colour per class, zone and points alike
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.contourf(gx, gy, zone, levels=[-0.5, 0.5, 1.5, 2.5], cmap=colors, alpha=0.25)
    ax.scatter(x[:, 0], x[:, 1], c=y, s=3, cmap=colors, vmin=0, vmax=2)
    ax.set(title=title, xlim=(-1.2, 1.2), ylim=(-1.2, 1.2))
    return save_figure(fig, name, plots_dir)


ARCHS = {"linear": SpiralLinear, "mlp": SpiralMLP}


def fit(entry, cfg, plots_dir=None) -> LessonFit:
    """Trained on the seed's spiral, tested on a held-out spiral drawn by the same generator."""
    x, y = make_spiral(cfg.seed)
    test_x, test_y = make_spiral(cfg.seed, held_out=True)
    torch.manual_seed(cfg.seed)
    model = fit_points(ARCHS[entry.arch](), x, y, cfg)
    measured = {"train_accuracy": accuracy(model, x, y), "test_accuracy": accuracy(model, test_x, test_y)}
    plot = plot_boundary(model, x, y, f"{entry.id}: {measured['test_accuracy']:.1%} held-out",
                         f"{entry.id}-boundary", plots_dir)
    print(f"{entry.id}: accuracy {measured['train_accuracy']:.2%} on the {len(y):,} training points, "
          f"{measured['test_accuracy']:.2%} on {len(test_y):,} held-out points")
    return LessonFit(model, {**measured, "plots": [str(plot)]}, measured,
                     {"optimizer": "adam", "train_points": len(y), "test_points": len(test_y)})


def run(plots_dir: Path | None = None, seed: int = 0, archs=tuple(ARCHS)) -> dict:
    return {arch: fit(*recipe(f"spiral-{arch}", seed), plots_dir).results for arch in archs}


def eval_data():
    """The held-out spiral (seed 0's other stream): what export's parity and test accuracy use."""
    return make_spiral(0, held_out=True)


main = lesson_main(__doc__, run)


if __name__ == "__main__":
    raise SystemExit(main())
