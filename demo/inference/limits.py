"""How big one request may be: the server's limits per model kind, in one place.

/v2 states them in each model's metadata (`parameters`) and refuses a request over them with
413 before decoding a tensor. Each limit bounds a named axis of the ONNX graph ("batch",
"sequence"); together with the fixed axes they bound the elements of every input, and so the
JSON a request may send and the memory one inference may take.
"""
from dataclasses import dataclass

IMAGE_MAX_BATCH = 256  # export/triton.py's max_batch_size: a Triton client sends at most this many rows
TABULAR_MAX_BATCH = 256
SEQUENCE_MAX_BATCH = 64  # a char RNN answers batch x sequence x vocab logits: 64 x 256 x 4 stays ~1 MB of JSON
SEQUENCE_MAX_LENGTH = 256  # /api/predict's cap (the models' own max_length): one sentence, not a book

# the longest JSON number a client has a reason to send ("-1.2345678901234567e-05, "); the JSON part of a
# request is refused past this many bytes per element it may carry, before it is parsed
JSON_BYTES_PER_ELEMENT = 32
JSON_OVERHEAD_BYTES = 64 * 1024  # names, shapes, parameters, whitespace



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
