"""Linear regression, four ways, on the course's x = 1, 2, 3 -> y = 2, 4, 6; then the exercise
(two parameters) and a noisy synthetic line.

    python -m training.lessons.linear_regression        # or: tinyzoo train linear-regression
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.lessons.common import LessonFit, fit_full_batch, gd_results, lesson_main, pyplot, recipe, save_figure

X_DATA, Y_DATA = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
EXERCISE_X, EXERCISE_Y = [1.0, 2.0, 3.0, 4.0], [6.8, 9.8, 13.2, 16.2]


class Line(nn.Module):
    """y = w x + b on [N, 1] -> [N, 1] (nn.Linear(1, 1), the course's model)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return self.linear(x)


def mse(w: float, b: float, xs, ys) -> float:
    return float(np.mean([(w * x + b - y) ** 2 for x, y in zip(xs, ys)]))


def grid_search(xs, ys, ws=np.arange(0.0, 4.0, 0.1)) -> tuple[float, list[float]]:
    """(a) try every w in [0, 4) step 0.1 -> (best w, loss per w)."""
    losses = [mse(w, 0.0, xs, ys) for w in ws]
    return float(ws[int(np.argmin(losses))]), losses


def gradient_descent(xs, ys, lr: float = 0.01, epochs: int = 100, w: float = 1.0) -> float:
    """(b) hand-written: dloss/dw = 2 x (x w - y), one step per sample, as in the course."""
    for _ in range(epochs):
        for x, y in zip(xs, ys):
            w -= lr * 2 * x * (x * w - y)
    return w


def autograd(xs, ys, lr: float = 0.01, epochs: int = 100) -> float:
    """(c) the same loop with requires_grad and .backward()."""
    w = torch.tensor([1.0], requires_grad=True)
    for _ in range(epochs):
        for x, y in zip(xs, ys):
            loss = (x * w - y) ** 2
            loss.backward()
            with torch.no_grad():
                w -= lr * w.grad
            w.grad.zero_()
    return w.item()


def fit_line(xs, ys, lr: float = 0.05, epochs: int = 1000, seed: int = 0, path: list | None = None) -> Line:
    """(d) nn.Linear + MSELoss + SGD on the whole batch; `path` collects its (epoch, w, b, loss)."""
    torch.manual_seed(seed)
    return fit_full_batch(Line(), xs, ys, nn.functional.mse_loss, lr, epochs, path)


def two_param_grid(xs, ys, step: float = 0.1) -> tuple[float, float, np.ndarray]:
    ws, bs = np.arange(0.0, 6.0, step), np.arange(0.0, 6.0, step)
    losses = np.array([[mse(w, b, xs, ys) for w in ws] for b in bs])
    bi, wi = np.unravel_index(np.argmin(losses), losses.shape)
    return float(ws[wi]), float(bs[bi]), losses


def two_param_gd(xs, ys, lr: float = 0.01, epochs: int = 5000) -> tuple[float, float]:
    w = b = 0.0
    n = len(xs)
    for _ in range(epochs):
        gw = sum(2 * x * (w * x + b - y) for x, y in zip(xs, ys)) / n
        gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys)) / n
        w, b = w - lr * gw, b - lr * gb
    return w, b


def synthetic(seed: int = 0, n: int = 100):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10, 10, n)
    return x, 2 * x + 1 + rng.normal(0, 0.2, n)


def fit(entry, cfg, plots_dir=None) -> LessonFit:
    """The served model is (d), trained with the run's epochs/lr/seed; (a)-(c), the exercise and the
    synthetic line are the course's other methods, at the course's settings."""
    plt = pyplot()
    print("Linear regression on x = 1, 2, 3 -> y = 2, 4, 6")
    w_grid, losses = grid_search(X_DATA, Y_DATA)
    w_gd = gradient_descent(X_DATA, Y_DATA)
    w_auto = autograd(X_DATA, Y_DATA)
    path = []
    model = fit_line(X_DATA, Y_DATA, lr=cfg.lr, epochs=cfg.epochs, seed=cfg.seed, path=path)
    w_nn, b_nn = model.linear.weight.item(), model.linear.bias.item()
    with torch.no_grad():
        predict_4 = model(torch.tensor([[4.0]])).item()
        train_mse = nn.functional.mse_loss(model(torch.tensor(X_DATA).view(-1, 1)), torch.tensor(Y_DATA).view(-1, 1))
    print(f"  (a) grid search      w = {w_grid:.2f}  predict(4) = {4 * w_grid:.2f}")
    print(f"  (b) hand-written GD  w = {w_gd:.4f}  predict(4) = {4 * w_gd:.4f}")
    print(f"  (c) autograd         w = {w_auto:.4f}  predict(4) = {4 * w_auto:.4f}")
    print(f"  (d) nn.Linear        w = {w_nn:.4f} b = {b_nn:.4f}  predict(4) = {predict_4:.4f} "
          f"(SGD lr {cfg.lr:g}, {cfg.epochs} epochs)")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(0.0, 4.0, 0.1), losses)
    ax.set(xlabel="w", ylabel="MSE", title="grid search: loss over w")
    plots = [save_figure(fig, "linear-regression-loss-curve", plots_dir)]

    ex_w, ex_b, ex_losses = two_param_grid(EXERCISE_X, EXERCISE_Y)
    gd_w, gd_b = two_param_gd(EXERCISE_X, EXERCISE_Y)
    ls_w, ls_b = np.polyfit(EXERCISE_X, EXERCISE_Y, 1)
    print("Exercise x = 1..4 -> y = 6.8, 9.8, 13.2, 16.2, predict x = 5:")
    print(f"  two-parameter grid  w = {ex_w:.2f} b = {ex_b:.2f}  predict(5) = {5 * ex_w + ex_b:.2f}")
    print(f"  gradient descent    w = {gd_w:.3f} b = {gd_b:.3f}  predict(5) = {5 * gd_w + gd_b:.3f}")
    print(f"  least squares       w = {ls_w:.3f} b = {ls_b:.3f}  predict(5) = {5 * ls_w + ls_b:.3f}")
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(np.log(ex_losses), origin="lower", extent=(0, 6, 0, 6), aspect="auto")
    ax.set(xlabel="w", ylabel="b", title="exercise: log MSE over (w, b)")
    fig.colorbar(image)
    plots.append(save_figure(fig, "linear-regression-exercise-surface", plots_dir))

    sx, sy = synthetic(cfg.seed)
    syn = fit_line(list(sx), list(sy), lr=0.005, epochs=2000, seed=cfg.seed)
    syn_w, syn_b = syn.linear.weight.item(), syn.linear.bias.item()
    print(f"Synthetic y = 2x + 1 + N(0, 0.2^2), 100 points: w = {syn_w:.3f} b = {syn_b:.3f}")

    results = {"grid_w": w_grid, "gd_w": w_gd, "autograd_w": w_auto, "nn_w": w_nn, "nn_b": b_nn, "predict_4": predict_4,
               "exercise_grid": [ex_w, ex_b], "exercise_gd": [gd_w, gd_b], "exercise_lstsq": [float(ls_w), float(ls_b)],
               "exercise_predict_5": {"grid": 5 * ex_w + ex_b, "gd": 5 * gd_w + gd_b, "lstsq": float(5 * ls_w + ls_b)},
               "synthetic": [syn_w, syn_b], "plots": [str(p) for p in plots],
               "gd": gd_results("linear", X_DATA, Y_DATA, cfg.lr, path)}
    return LessonFit(model, results, {"train_mse": train_mse.item()}, {"optimizer": "sgd"})


def run(plots_dir: Path | None = None, seed: int = 0) -> dict:
    return fit(*recipe("linear-regression", seed), plots_dir).results


def eval_data():
    """Parity inputs for the exported model: x over [-10, 10]."""
    x = np.linspace(-10, 10, 101, dtype=np.float32).reshape(-1, 1)
    return x, None


main = lesson_main(__doc__, run)


if __name__ == "__main__":
    raise SystemExit(main())
