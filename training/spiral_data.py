"""The 3-class spiral the spiral lesson trains on, numpy only: the app draws it under its map."""
import numpy as np

CLASSES, PER_CLASS = 3, 1000


def make_spiral(seed: int = 0, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """cs231n's spiral: arms of radius 0..1, angle noise 0.2. -> x float32 [N, 2], y int64 [N]."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(CLASSES):
        r = np.linspace(0.0, 1, per_class)
        t = np.linspace(c * 4, (c + 1) * 4, per_class) + rng.normal(0, 0.2, per_class)
        xs.append(np.c_[r * np.sin(t), r * np.cos(t)])
        ys.append(np.full(per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
