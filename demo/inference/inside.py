"""Look inside a served image model, torch- and onnx-free: every named layer's output for one input,
an occlusion map of why it answered, every model of a dataset at once, and where it fails.

The serving session is never touched (the hot path stays as fast): an inspection session is built
lazily, once per model, from the same verified bytes with the taps export recorded (and checked
against PyTorch) appended as graph outputs (demo.contract.graph_outputs).
"""
import base64
import hashlib
import io
import json
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image

from demo.contract import Tap, normalize
from demo.contract.graph_outputs import with_outputs
from demo.contract.manifest import REBUILD_HINT
from demo.imaging.prepare import candidate_pictures
from demo.inference import pipeline
from demo.inference.json_numbers import as_float32
from demo.inference.pipeline import Prediction
from demo.inference.runtime import ImageClassifier, ModelError, ModelZoo, session_options

# occlusion (patch, stride) from finest to coarsest; a model takes the finest whose variants keep
# (variants x activation values per sample) within the budget: mnist-cnn gets 144 variants, the ResNet 36
OCCLUSION_GRIDS = ((6, 2), (8, 3), (8, 4))
OCCLUSION_BUDGET = 2_000_000
DECIMALS = 4  # tap values sent as JSON: four decimals are more than a picture shows


class InspectionError(ModelError):
    """A model that can't be looked inside (no taps in its file, not an image model)."""


@dataclass
class TapValue:
    tap: Tap
    values: np.ndarray  # one sample: the tap's shape

    def to_json(self) -> dict:
        return {"name": self.tap.name, "kind": self.tap.kind, "shape": list(self.values.shape),
                "min": float(self.values.min()), "max": float(self.values.max()),
                "values": np.round(self.values.astype(np.float64), DECIMALS).tolist()}


@dataclass
class Inspection:
    prediction: Prediction
    probabilities: np.ndarray  # [classes], calibrated, what the softmax row shows
    seen: np.ndarray  # [H, W] uint8, the picture the model saw
    taps: list[TapValue]
    occlusion: np.ndarray  # [H, W]: how much hiding each pixel's neighbourhood lowers the answer's probability

    def to_json(self) -> dict:
        softmax = {"name": "softmax", "kind": "softmax", "shape": [len(self.probabilities)],
                   "min": float(self.probabilities.min()), "max": float(self.probabilities.max()),
                   "values": np.round(self.probabilities.astype(np.float64), DECIMALS).tolist()}
        return {**self.prediction.to_json(), "input": self.seen.astype(int).tolist(),
                "taps": [t.to_json() for t in self.taps] + [softmax],
                "occlusion": np.round(self.occlusion.astype(np.float64), DECIMALS).tolist()}


def occlusion_grid(taps: tuple[Tap, ...]) -> tuple[int, int]:
    volume = sum(int(np.prod(t.shape)) for t in taps) or 1
    for patch, stride in OCCLUSION_GRIDS:
        if len(patch_starts(28, patch, stride)) ** 2 * volume <= OCCLUSION_BUDGET:
            return patch, stride
    return OCCLUSION_GRIDS[-1]


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Patch corners along one side, the last flush with the edge so every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    return starts if starts[-1] == size - patch else starts + [size - patch]


class Inspector:
    """One model's inspection session (the taps as extra outputs) and its occlusion settings."""

    def __init__(self, model: ImageClassifier, verified_bytes: bytes):
        inspection = model.meta.inspection
        if inspection is None:
            raise InspectionError(f"{model.id}: its file has no taps; {REBUILD_HINT} "
                                  f"(or `tinyzoo export --inside {model.id}`)")
        self.model = model
        self.taps = inspection.taps
        self.weights_name = inspection.weights
        extra = [t.output for t in self.taps] + ([self.weights_name] if self.weights_name else [])
        self.session = ort.InferenceSession(with_outputs(verified_bytes, extra), sess_options=session_options(1),
                                            providers=["CPUExecutionProvider"])
        self.patch, self.stride = occlusion_grid(self.taps)
        paper = 0 if model.meta.input.polarity == "white-on-black" else 255  # no ink, in the model's polarity
        self.background = normalize(np.full(model.input_shape[1:], paper, np.uint8), model.meta.input)
        self._weights: np.ndarray | None = None

    def tap_values(self, tensor: np.ndarray) -> tuple[np.ndarray, list[TapValue]]:
        """One normalized sample [C, H, W] -> (logits [classes], each tap's values for it)."""
        names = [self.model.output_name] + [t.output for t in self.taps]
        logits, *values = self.session.run(names, {self.model.input_name: tensor[None].astype(np.float32)})
        return logits[0], [TapValue(t, v[0]) for t, v in zip(self.taps, values)]

    def first_layer_weights(self) -> np.ndarray | None:
        """The first Conv/Gemm's weights ([out, in, kh, kw] or [out, 784]); None for a dynamic int8 file."""
        if self.weights_name and self._weights is None:
            feed = {self.model.input_name: np.zeros((1, *self.model.input_shape), np.float32)}
            self._weights = self.session.run([self.weights_name], feed)[0]
        return self._weights

    def occlusion(self, tensor: np.ndarray, class_index: int, probability: float) -> np.ndarray:
        """Every patch position hidden (set to the background) in one batch through the serving session;
        each pixel gets the mean drop of `class_index`'s probability over the patches covering it."""
        channels, height, width = tensor.shape
        corners = [(y, x) for y in patch_starts(height, self.patch, self.stride)
                   for x in patch_starts(width, self.patch, self.stride)]
        variants = np.repeat(tensor[None], len(corners), axis=0)
        for variant, (y, x) in zip(variants, corners):
            variant[:, y:y + self.patch, x:x + self.patch] = self.background[:, y:y + self.patch, x:x + self.patch]
        drops = probability - self.model.probabilities(self.model.run(variants))[:, class_index]
        total, covered = np.zeros((height, width)), np.zeros((height, width))
        for drop, (y, x) in zip(drops, corners):
            total[y:y + self.patch, x:x + self.patch] += drop
            covered[y:y + self.patch, x:x + self.patch] += 1
        return (total / covered).astype(np.float32)

    def inspect(self, image, top_k: int = 3) -> Inspection:
        """An image (bytes, path, PIL or array) -> the answer as /api/classify gives it (the one
        pipeline), every tap and the occlusion map of the picture that answer shows."""
        prediction = pipeline.classify(self.model, image, top_k)
        tensor = normalize(prediction.seen, self.model.meta.input)
        logits, taps = self.tap_values(tensor)
        probs = self.model.probabilities(logits[None])[0]
        top = int(probs.argmax())
        return Inspection(prediction, probs, prediction.seen, taps, self.occlusion(tensor, top, float(probs[top])))


_INSPECTORS: "weakref.WeakKeyDictionary[ModelZoo, dict[str, Inspector]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def inspector(zoo: ModelZoo, model_id: str) -> Inspector:
    """The model's inspector, built once per zoo from the file's bytes, verified against the manifest again."""
    model = zoo.get(model_id)  # ModelError for an unknown id
    if not isinstance(model, ImageClassifier):
        raise InspectionError(f"{model_id} is a {model.meta.task} model: only image classifiers can be looked inside")
    with _LOCK:
        built = _INSPECTORS.setdefault(zoo, {})
        if model_id not in built:
            data = model.path.read_bytes()
            if hashlib.sha256(data).hexdigest() != zoo.manifest["models"][model_id]["sha256"]:
                raise ModelError(f"{model.path}: sha256 does not match models/manifest.json (replaced while "
                                 f"serving?); {REBUILD_HINT}")
            built[model_id] = Inspector(model, data)
        return built[model_id]


def dataset_models(zoo: ModelZoo, dataset: str) -> list[str]:
    return [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i].get("dataset") == dataset]


def all_models(zoo: ModelZoo, image, dataset: str) -> list[dict]:
    """The same input through every image model of `dataset`: one row each (answer, confidence, the
    run's latency in ms, parameters, precision). The picture is prepared once per input recipe."""
    prepared: dict = {}
    rows = []
    for model_id in dataset_models(zoo, dataset):
        model = zoo.get(model_id)
        if model.meta.input not in prepared:
            prepared[model.meta.input] = candidate_pictures(image, model.meta.input)
        started = time.perf_counter()
        probs = pipeline.probabilities_of_seen(model, [prepared[model.meta.input]])[0]
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        top = int(probs.argmax())
        rows.append({"model": model_id, "label": model.labels[top], "confidence": as_float32(probs[top]),
                     "latency_ms": latency_ms, "params": model.meta.measurements.params,
                     "precision": model.meta.precision})
    return rows


def mistakes(zoo: ModelZoo, model_id: str) -> dict:
    """models/mistakes/<id>.json as export wrote it (verified against the manifest), each picture
    decoded to [28][28] pixels: {"confusion": rows = true class, "mistakes": [...], ...}."""
    zoo.get(model_id)
    row = zoo.manifest["models"][model_id]
    if row.get("task") != "image-classification":  # a confusion matrix of test images: image models only
        raise InspectionError(f"{model_id} is a {row.get('task')} model: mistakes are kept for image classifiers")
    if not row.get("mistakes"):
        raise InspectionError(f"{model_id}: no confusion matrix shipped; run `tinyzoo export --inside {model_id}`")
    path = zoo.models_dir / row["mistakes"]
    try:
        data = path.read_bytes()
    except OSError:
        raise ModelError(f"{path}: missing; {REBUILD_HINT}") from None
    if hashlib.sha256(data).hexdigest() != row.get("mistakes_sha256"):
        raise ModelError(f"{path}: sha256 does not match models/manifest.json; {REBUILD_HINT}")
    report = json.loads(data)
    for mistake in report["mistakes"]:
        picture = Image.open(io.BytesIO(base64.b64decode(mistake.pop("png"))))
        mistake["pixels"] = np.asarray(picture.convert("L")).tolist()
        mistake["true_label"] = report["labels"][mistake["true"]]
        mistake["predicted_label"] = report["labels"][mistake["predicted"]]
    return report
