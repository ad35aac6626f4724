"""The one classification pipeline: prepare (a photo: several candidate crops) -> run -> calibrated
probabilities (a photo's candidates blended, inference/candidates.py) -> top-k -> a typed result. The app, `/api/classify`, the CLI's local engine and the Ray actors all go through
`classify` (one picture) or `probabilities_of_seen` (a batch already prepared); /v2's classification
extension ranks with the same `best`.

A model here is anything with `prepare(source)`, `run(batch)`, `probabilities(logits)`, `labels`,
`meta.input`, `id` and `provider`: runtime.ImageClassifier, or the Triton backend's stand-in.
"""
import time
from dataclasses import dataclass

import numpy as np

from demo.inference.candidates import read_best
from demo.inference.json_numbers import as_float32
from demo.settings import UNSURE_BELOW


def best(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, classes] scores -> ([N, k] class indices, [N, k] their scores), best first; ties keep
    class order, so every caller ranks the same scores the same way."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@dataclass
class Prediction:
    model: str
    label: str
    confidence: float
    top_k: list[dict]  # [{"label", "confidence"}], best first
    provider: str
    latency_ms: float
    seen: np.ndarray | None = None  # the [H,W] picture the model saw
    ink_box: tuple[int, int, int, int] | None = None  # where the ink was found in the upright source image

    @property
    def unsure(self) -> bool:
        """No clear answer: the calibrated confidence is below UNSURE_BELOW."""
        return self.confidence < UNSURE_BELOW

    def to_json(self) -> dict:
        return {"model": self.model, "label": self.label, "confidence": self.confidence, "unsure": self.unsure,
                "top_k": self.top_k, "ink_box": list(self.ink_box) if self.ink_box else None,
                "provider": self.provider, "latency_ms": self.latency_ms}


def ranked(model, probs: np.ndarray, k: int) -> list[list[dict]]:
    """[N, classes] probabilities -> per row the top k as [{"label", "confidence"}], best first."""
    indices, confidences = best(probs, k)
    return [[{"label": model.labels[i], "confidence": as_float32(c)} for i, c in zip(row_i, row_c)]
            for row_i, row_c in zip(indices.tolist(), confidences.tolist())]


def probabilities_of_seen(model, stacks: list[np.ndarray]) -> np.ndarray:
    """Each input's candidate pictures as the model sees them (uint8 [K, H, W]) -> [N, classes]
    calibrated probabilities, every candidate in one run: what a batch engine ranks with `best`."""
    return read_best(model, stacks)[0]


def classify(model, source, k: int) -> Prediction:
    """One picture (bytes, path, PIL or array) through the shared preparation, timed end to end."""
    started = time.perf_counter()
    candidates = model.prepare(source).candidates
    probs, (chosen,) = read_best(model, [np.stack([c.seen for c in candidates])])
    top = ranked(model, probs, k)[0]
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    shown = candidates[chosen]
    return Prediction(model.id, top[0]["label"], top[0]["confidence"], top, model.provider, latency_ms,
                      shown.seen, shown.ink_box)
