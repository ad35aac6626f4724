"""The models' float32 outputs as JSON numbers: the shortest decimal that reads back as the same
float32 (0.9999783, not 0.9999783039093018, which is float64's widening of it). A state or a
probability sent back in a later request is the same float32 the model computed."""
import numpy as np


def as_float32(value) -> float:
    return float(str(np.float32(value)))


def float32_lists(values: np.ndarray) -> list:
    """A float32 array as nested lists of as_float32 numbers."""
    return np.array([as_float32(v) for v in values.ravel()]).reshape(values.shape).tolist()
