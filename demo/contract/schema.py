"""The ONNX metadata schema: what an exported file says about itself, typed and versioned.

Version history (SCHEMA_VERSION is in version.py; bump it and add a step to migrate.py for any change a reader sees):
    1  the unversioned flat dict the first exporter wrote (input_name, state_shape, fp32_sha256, ...)
    2  grouped blocks (tensors, measurements, provenance, sequence, variant), `schema_version` key,
       optional `calibration` and `quantization.measured_with`
    3  optional `inspection`: the taps (named intermediate outputs of the graph, each with its per-layer
       parity against PyTorch, or its SQNR against the fp32 file for int8) and where the model fails
"""
from __future__ import annotations

import json
import types
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from demo.contract.migrate import upgrade
from demo.contract.version import SCHEMA_VERSION, ContractError

METADATA_KEY = "tinyzoo"  # the ONNX metadata_props key holding the JSON
TASKS = ("image-classification", "sequence-prediction", "tabular")
OUTPUT_KINDS = ("logits", "value", "probability")
PRECISIONS = ("fp32", "int8")
# what a tap shows: feature maps (conv, relu on maps, pool, residual), a strip of numbers (dense,
# relu on a vector) or the class scores before softmax (logits)
TAP_KINDS = ("conv", "relu", "pool", "residual", "dense", "logits")


@dataclass(frozen=True)
class InputSpec:
    """How an image model's input is made: uint8 pixels * scale, then (x - mean) / std per channel."""
    shape: tuple[int, ...]  # one sample, no batch axis: (C, H, W)
    mean: tuple[float, ...]  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...]
    polarity: str = "white-on-black"  # what the model was trained on: light ink, dark background
    # "mnist-digit": crop ink, fit 20x20, centre by mass in 28x28 (the MNIST recipe);
    # "fit-pad": fit the object into HxW keeping aspect, pad with background (Fashion-MNIST)
    recipe: str = "mnist-digit"
    scale: float = 1 / 255
    normalization: str = "runtime"  # mean/std are applied by the runtime, not inside the graph


@dataclass(frozen=True)
class Feature:
    """One input column of a tabular model, with the range the runtime accepts."""
    name: str
    min: float
    max: float
    help: str


@dataclass(frozen=True)
class TensorNames:
    input: str
    output: str
    state_inputs: tuple[str, ...] = ()  # sequence models: initial state in, final state out
    state_outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SequenceSpec:
    """Char RNNs: the vocabulary (index order), the longest text accepted, the state tensors' shape."""
    idx_to_char: tuple[str, ...]
    max_length: int
    layers: int  # each state tensor is [layers, batch, hidden]
    hidden: int
    trained_pair: dict[str, str]  # {"input_text", "target_text"}
    solved_at_epoch: int | None = None

    @property
    def vocab(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.idx_to_char)}


@dataclass(frozen=True)
class Parity:
    atol: float
    max_abs_diff: dict[str, float]  # case -> max |torch - ORT|
    argmax_agreement: float


@dataclass(frozen=True)
class Measurements:
    """Measured on the exported file itself (ONNX Runtime, CPU)."""
    test_accuracy: float | None  # None where the evaluation data has no targets (linear regression)
    test_examples: int
    params: int
    parity: Parity
    results: dict[str, Any] = field(default_factory=dict)  # a lesson's own figures (e.g. the crossing point)


@dataclass(frozen=True)
class TrainSummary:
    seconds_per_epoch: float
    epochs: int
    device: str
    config: dict[str, Any]
    selected_epoch: int | None = None
    history: tuple[dict[str, Any], ...] = ()  # per-epoch metrics, what the app plots


@dataclass(frozen=True)
class Provenance:
    checkpoint: str
    checkpoint_sha256: str
    model_args: dict[str, Any]
    versions: dict[str, Any]  # torch, onnx, onnxruntime, opset, exporter


@dataclass(frozen=True)
class MeasuredWith:
    """Where an int8 accuracy was measured: int8 sums differ by instruction set."""
    onnxruntime: str
    cpu: str
    cpu_flags: tuple[str, ...]


@dataclass(frozen=True)
class Quantization:
    method: str  # static | dynamic
    weights: str
    activations: str
    format: str | None = None
    calibration: str | None = None
    kept_fp32: tuple[str, ...] = ()
    measured_with: MeasuredWith | None = None


@dataclass(frozen=True)
class Variant:
    """An int8 file made from a shipped fp32 file."""
    variant_of: str
    fp32_test_accuracy: float
    fp32_sha256: str
    quantization: Quantization


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling of the logits, fitted after training."""
    temperature: float
    fitted_on: str
    nll_before: float
    nll_after: float


@dataclass(frozen=True)
class Tap:
    """One intermediate value of the graph a learner is shown, named as the course names the layer."""
    output: str  # the graph's value name: the inspection session adds it as an output
    name: str  # "conv1", "ReLU1", "pool1", "stage2", "fc1", ...
    kind: str  # one of TAP_KINDS
    shape: tuple[int, ...]  # one sample, no batch axis: (C, H, W) or (features,)
    max_abs_diff: float | None = None  # fp32: max |torch - ORT| over the parity batches
    sqnr_db: float | None = None  # int8: signal-to-quantization-noise ratio against the fp32 file's tap


@dataclass(frozen=True)
class Inspection:
    """The taps in forward order and how far they were checked: an fp32 tap passed
    |ORT - torch| <= atol + rtol * |torch| (numpy.allclose) element-wise at every batch in `batches`;
    an int8 tap carries its SQNR over the same inputs instead."""
    taps: tuple[Tap, ...]
    atol: float
    rtol: float
    batches: tuple[int, ...]
    mistakes: str | None = None  # file under the models dir: confusion matrix + most confident mistakes
    weights: str | None = None  # the first layer's float weights (a value the session can output), if any


@dataclass(frozen=True)
class ModelMetadata:
    id: str
    task: str  # one of TASKS
    dataset: str
    arch: str
    labels: tuple[str, ...]  # class names; empty for sequence models and regressions
    tensors: TensorNames
    output: str  # one of OUTPUT_KINDS
    measurements: Measurements
    provenance: Provenance
    train: TrainSummary | None = None
    input: InputSpec | None = None  # image models
    features: tuple[Feature, ...] = ()  # tabular models
    sequence: SequenceSpec | None = None  # sequence models
    precision: str = "fp32"
    variant: Variant | None = None  # int8 files
    calibration: Calibration | None = None
    inspection: Inspection | None = None  # image models exported with taps
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        check_consistent(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def to_dict(self) -> dict:
        """JSON-shaped (lists, not tuples): what from_dict reads and the HTTP API sends."""
        return json.loads(self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        return build(cls, upgrade(data), "metadata")

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise ContractError(f"metadata is not valid JSON ({e})") from None
        return cls.from_dict(data)

    def lesson_result(self, name: str) -> Any:
        """One of a lesson's own figures (logistic regression's 'crossing', diabetes' baselines)."""
        if name not in self.measurements.results:
            raise ContractError(f"{self.id}: metadata has no lesson result {name!r}; "
                                f"it has {', '.join(self.measurements.results) or 'none'}")
        return self.measurements.results[name]


def check_consistent(meta: ModelMetadata) -> None:
    """What the field types can't say: each task carries its own block, values from their lists."""
    where = f"metadata of {meta.id!r}"
    for name, value, allowed in (("task", meta.task, TASKS), ("output", meta.output, OUTPUT_KINDS),
                                 ("precision", meta.precision, PRECISIONS)):
        if value not in allowed:
            raise ContractError(f"{where}: {name} must be one of {', '.join(allowed)}, got {value!r}")
    needs = {"image-classification": ("input", meta.input is not None),
             "sequence-prediction": ("sequence", meta.sequence is not None),
             "tabular": ("features", bool(meta.features))}[meta.task]
    if not needs[1]:
        raise ContractError(f"{where}: a {meta.task} model needs a '{needs[0]}' block")
    if (meta.precision == "int8") != (meta.variant is not None):
        raise ContractError(f"{where}: an int8 file needs a 'variant' block, and only an int8 file has one")
    for tap in meta.inspection.taps if meta.inspection else ():
        if tap.kind not in TAP_KINDS:
            raise ContractError(f"{where}: tap {tap.name!r} kind must be one of {', '.join(TAP_KINDS)}, got {tap.kind!r}")
    if meta.schema_version != SCHEMA_VERSION:
        raise ContractError(f"{where}: built as schema version {meta.schema_version}, this is {SCHEMA_VERSION}")


def build(cls, data, where: str):
    """JSON data -> the dataclass `cls`, checking every field's presence and type on the way."""
    if not isinstance(data, dict):
        raise ContractError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ContractError(f"{where}: unknown field(s) {', '.join(unknown)} (schema version {SCHEMA_VERSION})")
    hints = get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name in data:
            values[f.name] = convert(data[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ContractError(f"{where}: required field '{f.name}' is missing")
    return cls(**values)


def convert(value, hint, where: str):
    """One JSON value -> `hint` (a dataclass, X | None, tuple[...], dict[...], str, int, float, bool, Any)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(value, inner, where)
    if is_dataclass(hint):
        return build(hint, value, where)
    if origin is tuple:
        expect(value, list, where)
        return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        expect(value, dict, where)
        value_hint = args[1] if args else Any
        return {expect(k, str, where): convert(v, value_hint, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        expect(value, (int, float), where)
        return float(value)
    return expect(value, hint, where)


def expect(value, kinds, where: str):
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("array" if k is list else "object" if k is dict else k.__name__ for k in kinds)
        raise ContractError(f"{where}: expected {names}, got {json.dumps(value)[:60]}")
    return value
