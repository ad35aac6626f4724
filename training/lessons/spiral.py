"""The classic 3-class spiral (1,000 points per class, 2-D): a linear classifier against a
2-layer ReLU net (hidden 100), with both decision boundaries as images.

    python -m training.lessons.spiral                   # or: tinyzoo train spiral-linear spiral-mlp
"""
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.lessons.common import lesson_main, pyplot, save_figure, save_lesson_model
from demo.contract.datasets import SPIRAL_CLASSES as CLASSES, make_spiral

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


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 2000, lr: float = 0.01) -> float:
    """Full-batch Adam; -> training accuracy (the course reports accuracy on the spiral itself)."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


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


def run(entry=None, out_dir: Path | None = None, plots_dir: Path | None = None, seed: int = 0,
        archs=("linear", "mlp")) -> dict:
    if entry is not None:  # `tinyzoo train spiral-mlp` trains that one
        archs = (entry.arch,)
    x, y = make_spiral(seed)
    results = {}
    for arch in archs:
        started = time.perf_counter()
        torch.manual_seed(seed)
        model = ARCHS[arch]()
        accuracy = fit(model, x, y)
        plot = plot_boundary(model, x, y, f"spiral-{arch}: {accuracy:.1%}", f"spiral-{arch}-boundary", plots_dir)
        print(f"spiral-{arch}: accuracy {accuracy:.2%} on the 3,000 spiral points")
        results[arch] = {"test_accuracy": accuracy, "plots": [str(plot)]}
        if entry is not None and entry.arch == arch:
            save_lesson_model(entry, model, out_dir, results[arch], started, 2000,
                              {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "epochs": 2000, "seed": seed})
    return results


def eval_data():
    return make_spiral(0)


main = lesson_main(__doc__, run)


if __name__ == "__main__":
    raise SystemExit(main())
