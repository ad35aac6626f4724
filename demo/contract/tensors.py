"""The graph's tensor names, and the one normalize(): uint8 pixels -> what an image model takes.

Export names the tensors and measures accuracy with normalize(); the runtime, the batch CLI and
int8 calibration feed the graph through the same function, so no two of them can drift.
"""
import numpy as np

from demo.contract.schema import InputSpec

IMAGE_INPUT = "image"  # image models: float32 [N, C, H, W] -> LOGITS [N, classes]
TOKENS_INPUT = "tokens"  # sequence models: int64 [N, T] + state -> LOGITS [N, T, vocab] + state
FEATURES_INPUT = "features"  # tabular models: float32 [N, F] raw values -> one of TABULAR_OUTPUTS
LOGITS = "logits"
TABULAR_OUTPUTS = {"value": "y", "probability": "probability", "logits": LOGITS}  # output kind -> tensor name


def state_names(cell_states: list[str]) -> tuple[list[str], list[str]]:
    """["h", "c"] -> (["h0", "c0"], ["hn", "cn"]): a char RNN's state inputs and outputs."""
    return [f"{s}0" for s in cell_states], [f"{s}n" for s in cell_states]


def normalize(seen: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 [..., H, W] -> float32 [..., C, H, W] with the model's scale, mean and std (batched or not)."""
    channels = spec.shape[0]
    mean = np.asarray(spec.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(-1, 1, 1)
    x = seen[..., None, :, :].astype(np.float32)
    x = np.repeat(x, channels, axis=-3) if channels > 1 else x
    x *= np.float32(spec.scale)  # in place: no temporaries the size of the batch
    x -= mean
    x /= std
    return x
