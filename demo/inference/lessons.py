"""The toy lessons' gradient descent in numpy: two parameters (w, b), the whole data set each step,
the same arithmetic as the PyTorch lesson (float32, nn.functional.mse_loss / binary_cross_entropy
with plain SGD), so the app can step it and a test can hold it to the steps PyTorch recorded."""
from dataclasses import dataclass

import numpy as np

F32 = np.float32
LOG_FLOOR = F32(-100.0)  # torch's binary_cross_entropy clamps each log at -100: a saturated sigmoid gives 100, not inf


@dataclass(frozen=True)
class GDLesson:
    """One lesson's problem as shipped in its metadata: data, loss, the shipped learning rate and start."""
    kind: str  # "linear" (MSE on w x + b) or "logistic" (BCE on sigmoid(w x + b))
    x: np.ndarray
    y: np.ndarray
    lr: float
    start: tuple[float, float]  # (w, b) before the first step: PyTorch's seeded initialisation
    recorded: tuple[tuple[int, float, float, float], ...] = ()  # PyTorch's (epoch, w, b, loss) after epoch steps

    @classmethod
    def from_results(cls, results: dict) -> "GDLesson":
        """The lesson's `results["gd"]` (written by training/lessons) -> a GDLesson; ValueError if absent."""
        gd = results.get("gd")
        if not isinstance(gd, dict):
            raise ValueError("this lesson file records no gradient-descent history: re-export it")
        return cls(kind=gd["kind"], x=np.asarray(gd["x"], F32), y=np.asarray(gd["y"], F32), lr=float(gd["lr"]),
                   start=(float(gd["start"][0]), float(gd["start"][1])),
                   recorded=tuple((int(e), float(w), float(b), float(loss)) for e, w, b, loss in gd["path"]))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) in float32, e^-z rounded from float64: numpy's own float32 exp can be an ulp off
    the correctly rounded value PyTorch's gets."""
    e = np.exp(-z.astype(np.float64)).astype(F32)
    return (F32(1) / (F32(1) + e)).astype(F32)


def prediction(kind: str, w: float, b: float, x: np.ndarray) -> np.ndarray:
    z = (x * F32(w) + F32(b)).astype(F32)
    return sigmoid(z) if kind == "logistic" else z


def loss(lesson: GDLesson, w: float, b: float) -> float:
    """MSE (linear) or binary cross-entropy (logistic) over the lesson's points; inf once w, b overflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = prediction(lesson.kind, w, b, lesson.x)
        if lesson.kind == "logistic":
            logs = lesson.y * np.maximum(np.log(p), LOG_FLOOR) + (1 - lesson.y) * np.maximum(np.log1p(-p), LOG_FLOOR)
            value = -np.mean(logs, dtype=F32)
        else:
            value = np.mean((p - lesson.y) ** 2, dtype=F32)
    return float(value) if np.isfinite(value) else float("inf")


def step(lesson: GDLesson, w: float, b: float, lr: float) -> tuple[float, float]:
    """One full-batch SGD step, the gradient taken in PyTorch's order (mean's 1/n, the loss's backward,
    the sigmoid's p (1 - p)) so that float32 rounding matches the recorded run step for step."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = prediction(lesson.kind, w, b, lesson.x)
        n = F32(len(lesson.x))
        if lesson.kind == "logistic":
            dp = (p - lesson.y) / np.maximum((F32(1) - p) * p, F32(1e-12)) / n
            dz = (dp * (F32(1) - p) * p).astype(F32)
        else:
            dz = (F32(2) / n * (p - lesson.y)).astype(F32)
        gw, gb = np.sum(dz * lesson.x, dtype=F32), np.sum(dz, dtype=F32)
        return sgd_update(w, gw, lr), sgd_update(b, gb, lr)


def sgd_update(value: float, grad, lr: float) -> float:
    """value - lr * grad rounded once to float32, as PyTorch's SGD does it (a fused multiply-add;
    the float32 product is exact in float64)."""
    return float(F32(np.float64(F32(value)) - np.float64(F32(lr)) * np.float64(grad)))


def run(lesson: GDLesson, lr: float, epochs: int, start: tuple[float, float] | None = None):
    """-> [(epoch, w, b, loss)] for epoch 0 (the start) .. epochs."""
    w, b = start or lesson.start
    path = [(0, w, b, loss(lesson, w, b))]
    for epoch in range(1, epochs + 1):
        w, b = step(lesson, w, b, lr)
        path.append((epoch, w, b, loss(lesson, w, b)))
    return path


def loss_over_w(lesson: GDLesson, ws: np.ndarray, b: float) -> np.ndarray:
    """The grid search: the loss at each w with b held fixed, the exact curve (float64; cross-entropy
    as softplus(z) - y z). In float32 a saturated sigmoid rounds 1 - p to steps, and the curve got a
    jagged kink far out on w that the function does not have."""
    z = np.outer(np.asarray(ws, np.float64), lesson.x) + b
    if lesson.kind == "logistic":
        return np.mean(np.logaddexp(0.0, z) - lesson.y * z, axis=1)
    return np.mean((z - lesson.y) ** 2, axis=1)


DIVERGED = "diverged: the loss overflowed — press reset, then try a lower learning rate"
CONVERGED = "converged: the loss no longer moves"


def finished(path) -> bool:
    """No step will change what the learner sees: the loss overflowed, or it no longer moves."""
    return verdict(path) in (DIVERGED, CONVERGED)


def verdict(path) -> str:
    """How a run is going, in a learner's words, from its last losses."""
    losses = [row[3] for row in path]
    if not np.isfinite(losses[-1]):  # no step can come back from here, whatever the rate
        return DIVERGED
    if len(losses) > 3 and losses[-1] > 10 * max(losses[0], 1e-12):
        return "diverging: each step overshoots further, the loss grows — lower the learning rate"
    if len(losses) < 3:
        return "step to see where it goes"
    w_moves = np.diff([row[1] for row in path[-4:]])
    if len(w_moves) >= 2 and np.all(w_moves[1:] * w_moves[:-1] < 0):
        return "oscillating: w jumps back and forth across the minimum"
    if losses[-1] < 1e-4 or abs(losses[-1] - losses[-2]) < 1e-7:
        return CONVERGED
    return "converging: the loss falls step by step"
