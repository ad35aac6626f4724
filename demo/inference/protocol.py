"""The Open Inference Protocol's tensors on the wire (KServe v2 / Triton HTTP), no web framework:
datatypes, tensor metadata, JSON and binary tensor data, and the checks a request must pass.

Binary tensor extension: the JSON header's length is in `Inference-Header-Content-Length`, each
binary input says its `binary_data_size` and the bytes follow the header in input order,
little-endian, row-major; a BYTES element is a 4-byte little-endian length and then its bytes.
"""
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

from demo.inference.pipeline import best

HEADER_LENGTH = "Inference-Header-Content-Length"
ORT_TO_V2 = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16",
             "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int16)": "INT16", "tensor(int8)": "INT8",
             "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32",
             "tensor(uint64)": "UINT64", "tensor(bool)": "BOOL", "tensor(string)": "BYTES"}
V2_TO_NUMPY = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32,
               "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
               "UINT64": np.uint64, "BOOL": np.bool_, "BYTES": np.object_}
NUMPY_TO_V2 = {np.dtype(t): name for name, t in V2_TO_NUMPY.items()}


class ProtocolError(ValueError):
    """A request the protocol or the model can't take: 400 (or `status`) with the message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- the inference request's JSON, as the protocol defines it ----------------------------------------
# strict: a name is a JSON string, a shape JSON integers, a flag true/false (no "1" for 1, no 1 for true).
# Unknown keys are allowed where the protocol lets clients add their own (parameters, the request).

class Schema(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class Parameters(Schema):
    model_config = ConfigDict(extra="allow")


class InputParameters(Parameters):
    binary_data_size: NonNegativeInt | None = None


class InputTensor(Schema):
    name: str
    shape: list[PositiveInt]
    datatype: Literal[tuple(V2_TO_NUMPY)]
    parameters: InputParameters | None = None
    data: Any = None  # JSON elements, flat or nested; decoded once shape and datatype are checked


class OutputParameters(Parameters):
    binary_data: bool | None = None
    classification: NonNegativeInt = 0


class OutputTensor(Schema):
    name: str
    parameters: OutputParameters | None = None


class RequestParameters(Parameters):
    binary_data_output: bool = False


class InferenceRequest(Schema):
    id: str | None = None
    parameters: RequestParameters | None = None
    inputs: list[InputTensor] = Field(min_length=1)
    outputs: list[OutputTensor] | None = None


JSON_PROBLEMS = {"recursion limit exceeded": "nested too deeply",
                 "number out of range": "a number too large to represent"}


def field_path(loc: tuple, union_tags: frozenset = frozenset()) -> str:
    """('inputs', 0, 'datatype') -> 'inputs[0].datatype'; the tags of a tagged union are left out."""
    path = ""
    for part in loc:
        if part not in union_tags:
            path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def as_sent(value) -> str:
    """A refused value as the caller wrote it: JSON's true and null, not Python's True and None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "a number beyond float range"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def validation_message(error: ValidationError, what: str = "the request", union_tags: frozenset = frozenset()) -> str:
    """pydantic's errors in plain words, each naming its field: "inputs[0].name: Input should be a
    valid string (got [1])"; a body that is not JSON says where it stopped."""
    problems = []
    for e in error.errors(include_url=False):
        path = field_path(e["loc"], union_tags)
        if e["type"] == "json_invalid":
            detail = e["msg"].removeprefix("Invalid JSON: ")
            for words, plain in JSON_PROBLEMS.items():
                detail = detail.replace(words, plain)
            problems.append(f"{what} is not valid JSON: {detail}")
        elif e["type"] == "missing":
            problems.append(f"field {path!r} is required")
        else:
            got = as_sent(e.get("input"))
            where = f"field {path!r}" if path else what
            problems.append(f"{where}: {e['msg']} (got {got[:80]}{'...' if len(got) > 80 else ''})")
    return "; ".join(problems[:5])


def parse_request(header: bytes) -> InferenceRequest:
    """The JSON part of a request -> the checked request (depth-limited parse: no RecursionError)."""
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as e:
        raise ProtocolError(validation_message(e, "the inference request")) from None


# --- the model's side: tensor metadata and how large each axis may be -------------------------------

def tensor_metadata(args) -> list[dict]:
    """ORT NodeArgs -> protocol tensor metadata; a named (dynamic) axis is -1."""
    return [{"name": a.name, "datatype": ORT_TO_V2[a.type],
             "shape": [d if isinstance(d, int) and d >= 0 else -1 for d in a.shape]} for a in args]


@dataclass(frozen=True)
class TensorSpec:
    """One model input: its metadata, the names of its dynamic axes and the largest size of each axis."""

    name: str
    datatype: str
    shape: list[int]  # -1: any size up to max_shape
    axis_names: list[str | None]
    max_shape: list[int]

    @property
    def max_elements(self) -> int:
        return math.prod(self.max_shape)


def tensor_specs(args, axis_limit) -> list[TensorSpec]:
    """ORT NodeArgs -> TensorSpecs; axis_limit(axis name) -> the largest size of that dynamic axis."""
    specs = []
    for meta, arg in zip(tensor_metadata(args), args):
        names = [d if isinstance(d, str) else None for d in arg.shape]
        max_shape = [d if d != -1 else axis_limit(n) for d, n in zip(meta["shape"], names)]
        specs.append(TensorSpec(meta["name"], meta["datatype"], meta["shape"], names, max_shape))
    return specs


def check_header(tensor: InputTensor, spec: TensorSpec) -> None:
    """Datatype and shape against the model before any data is decoded: a wrong datatype is a 400,
    an axis over its limit a 413."""
    name, shape = tensor.name, tensor.shape
    if tensor.datatype != spec.datatype:
        raise ProtocolError(f"input {name!r}: datatype {tensor.datatype}, the model expects {spec.datatype}")
    if len(shape) != len(spec.shape) or any(w != -1 and w != d for w, d in zip(spec.shape, shape)):
        raise ProtocolError(f"input {name!r}: shape {shape}, the model expects {spec.shape} (-1: any size)")
    for size, largest, axis in zip(shape, spec.max_shape, spec.axis_names):
        if size > largest:
            raise ProtocolError(f"input {name!r}: {axis or 'an axis'} of {size} is over this server's limit of "
                                f"{largest} (the model metadata's parameters); send smaller requests", 413)


def decode_bytes_elements(raw: bytes, count: int, name: str) -> np.ndarray:
    """BYTES binary data: `count` elements, each a uint32 little-endian length then its bytes."""
    elements, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise ProtocolError(f"input {name!r}: BYTES data truncated (element {len(elements)} has no length)")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ProtocolError(f"input {name!r}: BYTES data truncated (element {len(elements)} wants {length} bytes)")
        elements.append(raw[offset:offset + length])
        offset += length
    if offset != len(raw):
        raise ProtocolError(f"input {name!r}: {len(raw) - offset} byte(s) after the last BYTES element")
    return np.array(elements, dtype=np.object_)


def encode_bytes_elements(array: np.ndarray) -> bytes:
    parts = []
    for element in array.reshape(-1):
        data = element if isinstance(element, bytes) else str(element).encode()
        parts += [struct.pack("<I", len(data)), data]
    return b"".join(parts)


def decode_binary(raw: bytes, datatype: str, shape: list[int], name: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        return decode_bytes_elements(raw, count, name).reshape(shape)
    dtype = np.dtype(V2_TO_NUMPY[datatype]).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(f"input {name!r}: {len(raw)} bytes of binary data, but shape {shape} of {datatype} "
                            f"needs {count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def decode_json(data, datatype: str, shape: list[int], name: str) -> np.ndarray:
    """`data`: the elements, flat or nested, row-major."""
    wanted = np.dtype(V2_TO_NUMPY[datatype])
    try:
        if datatype == "BYTES":
            array = np.array([str(x).encode() for x in np.asarray(data, dtype=object).reshape(-1)], dtype=np.object_)
        else:
            array = np.asarray(data)
            # JSON numbers only, and no silent truncation: 1.5 is not an INT64, a number is not a BOOL
            allowed = "b" if wanted.kind == "b" else "iu" if wanted.kind in "iu" else "iuf"
            if array.dtype.kind not in allowed:
                raise ProtocolError(f"input {name!r}: data must be a (nested) list of {datatype} values")
            with np.errstate(over="ignore"):  # 1e39 as FP32 is infinity: refused below as such, not a warning
                array = array.astype(wanted)
    except (ValueError, TypeError, OverflowError):
        raise ProtocolError(f"input {name!r}: data must be a (nested) list of {datatype} values") from None
    if array.size != math.prod(shape):
        raise ProtocolError(f"input {name!r}: {array.size} element(s) in data, but shape {shape} needs "
                            f"{math.prod(shape)}")
    return array.reshape(shape)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """-> (the JSON inference request, the binary bytes after it)."""
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length[:40]!r}") from None
    if not 0 < size <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {size} but the body has {len(body)} bytes")
    return body[:size], body[size:]


def read_inputs(request: InferenceRequest, binary: bytes, expected: list[TensorSpec]) -> dict[str, np.ndarray]:
    """The request's inputs -> {name: array}, each checked against the model's metadata before its
    data is decoded."""
    wanted = {t.name: t for t in expected}
    feeds, offset = {}, 0
    for tensor in request.inputs:
        name = tensor.name
        if name not in wanted:
            raise ProtocolError(f"unexpected input {name!r}; the model's inputs are {', '.join(wanted)}")
        if name in feeds:
            raise ProtocolError(f"input {name!r} given twice")
        check_header(tensor, wanted[name])
        size = tensor.parameters.binary_data_size if tensor.parameters else None
        if size is not None and "data" in tensor.model_fields_set:
            raise ProtocolError(f"input {name!r} has both 'data' and binary_data_size: send its values one way")
        if size is not None:
            if offset + size > len(binary):
                raise ProtocolError(f"input {name!r}: binary_data_size {size} but only {len(binary) - offset} "
                                    f"binary byte(s) left in the body (truncated?)")
            array = decode_binary(binary[offset:offset + size], tensor.datatype, tensor.shape, name)
            offset += size
        elif "data" in tensor.model_fields_set:
            array = decode_json(tensor.data, tensor.datatype, tensor.shape, name)
        else:
            raise ProtocolError(f"input {name!r}: no 'data' and no binary_data_size parameter")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ProtocolError(f"input {name!r} contains NaN, infinity or a value beyond {tensor.datatype}'s range")
        feeds[name] = array
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} byte(s) of binary data that no input claims")
    missing = [n for n in wanted if n not in feeds]
    if missing:
        raise ProtocolError(f"missing input(s) {', '.join(missing)}; the model's inputs are {', '.join(wanted)}")
    return feeds


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool  # send as binary data after the JSON header
    class_count: int = 0  # Triton's classification extension: the top k as BYTES instead of the tensor


def requested_outputs(request: InferenceRequest, names: list[str]) -> list[RequestedOutput]:
    """No 'outputs' list means every output, as the tensors."""
    default_binary = request.parameters.binary_data_output if request.parameters else False
    if request.outputs is None:
        return [RequestedOutput(name, default_binary) for name in names]
    chosen = []
    for output in request.outputs:
        if output.name not in names:
            raise ProtocolError(f"requested output {output.name!r} is not one of the model's: {', '.join(names)}")
        parameters = output.parameters or OutputParameters()
        binary = default_binary if parameters.binary_data is None else parameters.binary_data
        chosen.append(RequestedOutput(output.name, binary, parameters.classification))
    return chosen


def check_finite(name: str, array: np.ndarray) -> None:
    """JSON has no NaN or infinity, and a score of NaN ranks nothing: such an output is refused (422),
    never sent as invalid JSON or as a "nan:0:0" class."""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    bad = ~np.isfinite(array)
    first = [int(i) for i in np.argwhere(bad)[0]]
    raise ProtocolError(f"output {name!r} is NaN or infinite in {int(bad.sum())} of its {array.size} values "
                        f"(the first at index {first}): the input values are too large for this model", 422)


def classification(array: np.ndarray, count: int, labels: list[str], name: str) -> np.ndarray:
    """[N, classes] scores -> [N, count] BYTES "value:index:label" (":label" when the model has
    one per class), best first: Triton's classification extension."""
    if array.ndim != 2:
        raise ProtocolError(f"output {name!r}: classification needs a [batch, classes] output, it is {list(array.shape)}")
    named = len(labels) == array.shape[1]
    order, _ = best(array, count)
    return np.array([[f"{row[i]:f}:{i}{f':{labels[i]}' if named else ''}".encode() for i in indices]
                     for row, indices in zip(array, order)], dtype=np.object_)
