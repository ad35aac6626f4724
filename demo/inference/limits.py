"""How big one request may be: the server's limits per model kind, in one place.

/v2 states them in each model's metadata (`parameters`) and refuses a request over them with
413 before decoding a tensor. Each limit bounds a named axis of the ONNX graph ("batch",
"sequence"); together with the fixed axes they bound the elements of every input, and so the
JSON a request may send and the memory one inference may take.
"""
from dataclasses import dataclass

from demo.settings import IMAGE_MAX_BATCH, SEQUENCE_MAX_BATCH, SEQUENCE_MAX_LENGTH, TABULAR_MAX_BATCH


@dataclass(frozen=True)
class AxisLimits:
    """The largest size of each named dynamic axis a request may use."""

    batch: int
    sequence: int | None = None

    def of(self, axis_name) -> int | None:
        return {"batch": self.batch, "sequence": self.sequence}.get(axis_name)

    def as_parameters(self) -> dict:
        """The model metadata's `parameters`: Triton's max_batch_size, plus the sequence limit."""
        limits = {"max_batch_size": self.batch}
        if self.sequence is not None:
            limits["max_sequence_length"] = self.sequence
        return limits


def axis_limits(task: str, model_max_length: int | None = None) -> AxisLimits:
    """The limits of a model of `task` (its metadata's task); a char RNN's sequence limit is also
    at most the length it was exported for."""
    if task == "sequence-prediction":
        return AxisLimits(SEQUENCE_MAX_BATCH, min(SEQUENCE_MAX_LENGTH, model_max_length or SEQUENCE_MAX_LENGTH))
    if task == "tabular":
        return AxisLimits(TABULAR_MAX_BATCH)
    return AxisLimits(IMAGE_MAX_BATCH)
