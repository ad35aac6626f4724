"""Torch-free ONNX Runtime serving: load a model by id, read everything from its metadata.

CUDA is used only when a GPU is really there and the session really got the CUDA provider
(`session.get_providers()`); otherwise CPU, quietly. The provider a session got is reported.
"""
import ctypes
import difflib
import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from demo.contract import METADATA_KEY, ContractError, Feature, ModelMetadata, read_manifest
from demo.contract.manifest import MANIFEST_NAME, REBUILD_HINT, SHA256_HEX, check_served_rows
from demo.imaging.prepare import Preprocessed, preprocess
from demo.inference.json_numbers import as_float32
from demo.inference import pipeline
from demo.inference.pipeline import Prediction
from demo.settings import MODELS_DIR, PROVIDER, TOP_K

PROJECT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


class ModelError(RuntimeError):
    """A model file is missing, corrupt or doesn't match the manifest."""


class AnswerError(ModelError):
    """A remote backend's answer to one request (demo/inference/remote.py) is missing or not what
    the model's metadata promises: the inputs of that request get no result, the others are unaffected."""


class InputError(ValueError):
    """An input tensor the model can't take; the message says what was expected."""


def default_models_dir() -> Path:
    env = MODELS_DIR.get()
    if env:
        return Path(env)
    if PROJECT_MODELS_DIR.is_dir():  # a checkout / editable install
        return PROJECT_MODELS_DIR
    return Path.cwd() / "models"


@lru_cache(maxsize=1)
def gpu_present() -> bool:
    """True when the NVIDIA driver sees at least one device (cheap; loads no CUDA runtime)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


CUDA_ALTERNATIVE = "--provider auto uses the CPU where CUDA cannot run, --provider cpu always"
# ORT's own log: a CUDA provider that fails to load prints coloured C++ errors, then the session runs on
# the CPU. What the session got is reported (get_providers), and a refusal of explicit CUDA is ours.
ort.set_default_logger_severity(4)


def provider_preference(preference: str | None = None) -> str:
    """'auto' (default, env TINYZOO_PROVIDER), 'cpu' or 'cuda'."""
    preference = (preference or PROVIDER.get()).lower()
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"provider must be auto, cpu or cuda, got {preference!r}")
    return preference


def requested_providers(preference: str | None = None) -> list:
    """The providers a session asks for. 'auto' takes CUDA where it can and the CPU quietly where it
    cannot; 'cuda' asked for in so many words is refused where no GPU or CUDA provider is."""
    preference = provider_preference(preference)
    if preference == "cuda" and not gpu_present():
        raise ModelError(f"CUDA was asked for, but the NVIDIA driver reports no GPU here: {CUDA_ALTERNATIVE}")
    if preference == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ModelError(f"CUDA was asked for, but this ONNX Runtime has no CUDA provider (pip install "
                         f"'tinyzoo[cuda]'): {CUDA_ALTERNATIVE}")
    if preference == "cuda" or (preference == "auto" and gpu_present()
                                and "CUDAExecutionProvider" in ort.get_available_providers()):
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from pip's nvidia-* wheels, when present
        # TF32 off: measured 1e-2 logit drift vs CPU with it on (argmax 99.99%); exact > fast for these nets
        return [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(threads: int = 0, arena: bool = False) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads  # 0: ORT's default (one per physical core)
    # no busy-waiting between runs: a server is idle most of the time, and the CLI's decode
    # workers need the cores ORT's spinning threads would burn
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ORT's CPU memory arena keeps the memory of the largest batch a session ever ran (mnist-resnet
    # batch 1024: +204 MiB held for good). A server goes without: its RSS returns to idle after each
    # request, and batch-1 latency is the same (mnist-cnn 0.056 vs 0.060 ms). A batch job's sessions
    # (arena=True) run chunks of one bounded size again and again, and without the arena each run
    # maps its buffers afresh, page by page (mnist-cnn, 125 images: 1,829 page faults and 15.6 ms a
    # run without, none and 6.8 ms with it)
    opts.enable_cpu_mem_arena = arena
    opts.log_severity_level = 3  # errors only: provider fallbacks are reported by us, not as log spam
    return opts


def softmax(logits: np.ndarray) -> np.ndarray:
    """Logits that are not finite (a char RNN fed a state far outside its range) give NaN here, quietly:
    the caller refuses non-finite answers in words, and numpy's warning was two more lines of log."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


class OnnxModel:
    """One verified ONNX file with its metadata and an ORT session on the best real provider."""

    task = ""  # the metadata task a subclass serves

    def __init__(self, path: Path, expected_sha256: str, provider: str | None = None, threads: int = 0,
                 arena: bool = False):
        """expected_sha256: the manifest's digest; there is no way to skip verification. arena: keep
        ORT's CPU memory arena (session_options), for a batch job's sessions."""
        path = Path(path)
        if not isinstance(expected_sha256, str) or not SHA256_HEX.fullmatch(expected_sha256):
            raise ModelError(f"{path}: no valid sha256 to verify it against ({expected_sha256!r}); refusing to "
                             f"serve an unverified model; {REBUILD_HINT}")
        if not path.is_file():
            raise ModelError(f"{path}: model file missing; {REBUILD_HINT}")
        data = path.read_bytes()  # hash and load the same bytes: nothing can change in between
        if hashlib.sha256(data).hexdigest() != expected_sha256:
            raise ModelError(f"{path}: sha256 does not match models/manifest.json (corrupt or replaced); {REBUILD_HINT}")
        providers = requested_providers(provider)
        try:
            # from bytes, ORT has no folder to resolve external-data files against: such models fail here
            self.session = ort.InferenceSession(data, sess_options=session_options(threads, arena), providers=providers)
            raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        except Exception as e:  # ORT raises its own exception types for unreadable graphs
            if "external" in str(e).lower():
                raise ModelError(f"{path}: refers to external data files; tinyzoo serves single-file models only; "
                                 f"{REBUILD_HINT}") from None
            raise ModelError(f"{path}: not a loadable ONNX model ({e}); {REBUILD_HINT}") from None
        if provider_preference(provider) == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise ModelError(f"CUDA was asked for, but ONNX Runtime could not start it on this GPU (the CUDA 13 "
                             f"runtime and cuDNN 9: pip install 'tinyzoo[cuda]'): {CUDA_ALTERNATIVE}")
        if not raw:
            raise ModelError(f"{path}: no '{METADATA_KEY}' metadata: not a tinyzoo export; {REBUILD_HINT}")
        try:
            self.meta = ModelMetadata.from_json(raw)  # older layouts are migrated, newer ones refused
        except ContractError as e:
            raise ModelError(f"{path}: {e}; {REBUILD_HINT}") from None
        if self.meta.task != self.task:
            raise ModelError(f"{path}: metadata says a {self.meta.task} model, loaded as {self.task}; {REBUILD_HINT}")
        self.path = path
        self.id: str = self.meta.id
        self.input_name: str = self.meta.tensors.input
        self.output_name: str = self.meta.tensors.output
        self.provider: str = self.session.get_providers()[0]  # what we really got, not what we asked for

    def run_checked(self, batch, sample_shape: list[int], chunk: int = 1000) -> np.ndarray:
        """[N, *sample_shape] numbers -> the first output, run `chunk` rows at a time (bounded memory
        for big batches; rows are independent). Wrong shape, type or non-finite values: InputError."""
        batch = np.asarray(batch)
        if batch.dtype.kind not in "fiu":  # float, signed or unsigned int
            raise InputError(f"{self.id}: input must be numeric, got dtype {batch.dtype}")
        if batch.ndim != len(sample_shape) + 1 or list(batch.shape[1:]) != list(sample_shape):
            raise InputError(f"{self.id}: input must have shape [N, {', '.join(map(str, sample_shape))}], "
                             f"got {list(batch.shape)}")
        if batch.shape[0] == 0:
            raise InputError(f"{self.id}: empty batch")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not np.isfinite(batch).all():
            raise InputError(f"{self.id}: input contains NaN or infinity")
        if len(batch) <= chunk:  # the common case: one call, no copy
            return self.session.run([self.output_name], {self.input_name: batch})[0]
        return np.concatenate([self.session.run([self.output_name], {self.input_name: batch[i:i + chunk]})[0]
                               for i in range(0, len(batch), chunk)])


class ImageClassifier(OnnxModel):
    task = "image-classification"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.labels: list[str] = list(self.meta.labels)
        self.input_shape: list[int] = list(self.meta.input.shape)  # one sample, no batch axis
        # temperature scaling fitted by export/calibrate.py; 1.0 (raw softmax) for an uncalibrated file
        self.temperature: float = self.meta.calibration.temperature if self.meta.calibration else 1.0

    def run(self, batch: np.ndarray) -> np.ndarray:
        """[N, *input_shape] float32 -> [N, classes] logits."""
        return self.run_checked(batch, self.input_shape)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """[N, classes] logits -> calibrated probabilities: softmax(logits / T)."""
        return softmax(logits / np.float32(self.temperature))

    def prepare(self, image) -> Preprocessed:
        """A picture -> the tensor this model takes, by the recipe its metadata names."""
        return preprocess(image, self.meta.input)

    def classify(self, image, top_k: int = TOP_K) -> Prediction:
        """One picture through the classification pipeline (inference/pipeline.py)."""
        return pipeline.classify(self, image, top_k)


@dataclass
class SequencePrediction:
    model: str
    text: str
    predicted: str
    probabilities: np.ndarray  # [T, V]: per position, per vocab character
    vocab: list[str]
    state: dict[str, np.ndarray]  # final state, feed it back to continue the sequence
    provider: str
    latency_ms: float


class CharPredictor(OnnxModel):
    """Char RNN: text over the model's vocab -> the next-character prediction at each position."""

    task = "sequence-prediction"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sequence = self.meta.sequence
        self.vocab: list[str] = list(sequence.idx_to_char)
        self.char_to_index: dict[str, int] = sequence.vocab
        self.max_length: int = sequence.max_length
        self.state_inputs: list[str] = list(self.meta.tensors.state_inputs)
        self.state_outputs: list[str] = list(self.meta.tensors.state_outputs)
        self.state_size = (sequence.layers, sequence.hidden)

    def encode(self, text: str) -> np.ndarray:
        if not isinstance(text, str) or not text:
            raise InputError(f"{self.id}: type some text using the characters {', '.join(map(repr, self.vocab))}")
        if len(text) > self.max_length:
            raise InputError(f"{self.id}: text is {len(text)} characters; the limit is {self.max_length}")
        unknown = sorted(set(text) - set(self.vocab))
        if unknown:
            lower = text.lower()  # "Hello": the course's vocabulary is lowercase, and a learner types capitals
            hint = f" (it knows no capitals: try {lower!r})" if set(lower) <= set(self.vocab) else ""
            raise InputError(f"{self.id}: {', '.join(map(repr, unknown))} not in the model's vocabulary; "
                             f"allowed characters: {', '.join(map(repr, self.vocab))}{hint}")
        return np.array([[self.char_to_index[c] for c in text]], dtype=np.int64)

    def zero_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        layers, hidden = self.state_size
        return {name: np.zeros((layers, batch, hidden), np.float32) for name in self.state_inputs}

    def predict(self, text: str, state: dict[str, np.ndarray] | None = None) -> SequencePrediction:
        """state: the previous call's final state (continue a sequence); omitted -> zeros."""
        started = time.perf_counter()
        tokens = self.encode(text)
        feeds = {self.input_name: tokens, **self.zero_state()}
        for name, value in (state or {}).items():
            if name not in self.state_inputs:
                raise InputError(f"{self.id}: unknown state {name!r}; its state is {', '.join(self.state_inputs)}")
            if np.shape(value) != feeds[name].shape:
                raise InputError(f"{self.id}: state {name!r} has shape {list(np.shape(value))}, "
                                 f"not {list(feeds[name].shape)} (as an answer of this model returned it)")
            feeds[name] = np.asarray(value, np.float32)
        logits, *final = self.session.run([self.output_name, *self.state_outputs], feeds)
        probs = softmax(logits[0])
        predicted = "".join(self.vocab[i] for i in probs.argmax(-1))
        latency_ms = (time.perf_counter() - started) * 1000
        return SequencePrediction(self.id, text, predicted, probs, self.vocab,
                                  dict(zip(self.state_inputs, final)), self.provider, latency_ms)


class TabularModel(OnnxModel):
    """The lessons' small models: raw feature values -> a value, a probability or class logits."""

    task = "tabular"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.features: tuple[Feature, ...] = self.meta.features
        self.output: str = self.meta.output  # value | probability | logits
        self.labels: list[str] = list(self.meta.labels)

    def validate(self, values) -> np.ndarray:
        """A dict {name: value} or a sequence in feature order -> float32 [1, F], or a clear InputError."""
        names = [f.name for f in self.features]
        if isinstance(values, dict):
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise InputError(f"{self.id}: unknown field(s) {', '.join(unknown)}; expected {', '.join(names)}")
            values = [values.get(n) for n in names]
        values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else None
        if values is None or len(values) != len(names):
            raise InputError(f"{self.id}: expected {len(names)} value(s): {', '.join(names)}")
        missing = [f.name for f, v in zip(self.features, values) if v is None or (isinstance(v, str) and not v.strip())]
        if missing:
            raise InputError(f"{self.id}: missing {', '.join(missing)}")
        row = []
        for feature, value in zip(self.features, values):
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or not np.isfinite(number):
                raise InputError(f"{self.id}: {feature.name} must be a finite number, got {value!r}")
            if not feature.min <= number <= feature.max:
                raise InputError(f"{self.id}: {feature.name}, {feature.help}, must be between "
                                 f"{feature.min:g} and {feature.max:g}, got {number:g}")
            row.append(number)
        return np.array([row], np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """[N, features] raw values -> [N, outputs]."""
        return self.run_checked(batch, [len(self.features)])

    def predict(self, values) -> dict:
        """-> {"value"} | {"probability", "label"} | {"label", "probabilities"} for one input."""
        out = self.run(self.validate(values))[0]
        if self.output == "value":
            return {"value": as_float32(out[0])}
        if self.output == "probability":
            return {"probability": as_float32(out[0]), "label": self.labels[int(out[0] >= 0.5)]}
        probs = softmax(out)
        return {"label": self.labels[int(probs.argmax())],
                "probabilities": dict(zip(self.labels, map(as_float32, probs)))}


MODEL_CLASSES = {cls.task: cls for cls in (ImageClassifier, CharPredictor, TabularModel)}


class ModelZoo:
    """Loads models by id from a models dir, verified against its manifest, once each."""

    def __init__(self, models_dir: Path | None = None, provider: str | None = None, threads: int = 1,
                 arena: bool = False):
        """threads: ORT intra-op threads per session. 1 by default: a request is one small input, and
        with spinning off a second thread only adds wake-up latency (mnist-cnn batch 1: 0.05 ms on
        one thread, 0.14 ms on two); concurrent requests use the other cores. arena: each session
        keeps ORT's CPU memory arena (batch jobs; see session_options)."""
        self.models_dir = Path(models_dir or default_models_dir())
        self.provider = provider
        self.threads, self.arena = threads, arena
        if not self.models_dir.is_dir():
            raise ModelError(f"{self.models_dir}: no such models folder (--models-dir / TINYZOO_MODELS)")
        try:
            self.manifest = read_manifest(self.models_dir)
            check_served_rows(self.manifest, self.models_dir / MANIFEST_NAME)
        except ValueError as e:
            raise ModelError(str(e)) from None
        self._loaded: dict[str, OnnxModel] = {}

    def ids(self, task: str | None = None) -> list[str]:
        rows = self.manifest["models"]
        return [i for i, row in rows.items() if task is None or row.get("task") == task]

    def unknown(self, model_id: str, task: str | None = None) -> str:
        """An id the manifest lacks -> the message: the likeliest meant (MNIST-CNN, mnist_cnn), and the
        ids of `task` (all when None). A caller's long id is not echoed whole."""
        ids = self.ids(task)
        if not ids:
            return (f"unknown model {model_id[:60]!r}; available: none: {self.models_dir / MANIFEST_NAME} "
                    f"is missing or empty")
        close = difflib.get_close_matches(model_id[:60].lower().replace("_", "-"), ids, n=1, cutoff=0.75)
        meant = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown model {model_id[:60]!r}{meant}; available: {', '.join(ids)}"

    def get(self, model_id: str) -> ImageClassifier | CharPredictor | TabularModel:
        if model_id not in self._loaded:
            row = self.manifest["models"].get(model_id)
            if row is None:
                raise ModelError(self.unknown(model_id))
            model_class = MODEL_CLASSES.get(row.get("task"))
            if model_class is None:
                raise ModelError(f"{model_id}: manifest task {row.get('task')!r} is not one this runtime serves")
            path = self.models_dir / row["onnx"]
            try:
                model = model_class(path, row["sha256"], self.provider, self.threads, self.arena)
            except (KeyError, TypeError, ValueError) as e:  # the file's metadata lacks what its task needs
                raise ModelError(f"{path}: '{METADATA_KEY}' metadata incomplete ({type(e).__name__}: {e}); "
                                 f"{REBUILD_HINT}") from None
            if model.id != model_id:
                raise ModelError(f"{model.path}: metadata says it is {model.id!r}, manifest says {model_id!r}; {REBUILD_HINT}")
            self._loaded[model_id] = model
        return self._loaded[model_id]

    def describe(self) -> list[dict]:
        """Every model's manifest row plus its ONNX metadata, for `GET /api/models` and the app."""
        return [{"id": i, **self.manifest["models"][i], "metadata": self.get(i).meta.to_dict()} for i in self.ids()]
