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

import numpy as np

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


def tensor_metadata(args) -> list[dict]:
    """ORT NodeArgs -> protocol tensor metadata; a named (dynamic) axis is -1."""
    return [{"name": a.name, "datatype": ORT_TO_V2[a.type],
             "shape": [d if isinstance(d, int) and d >= 0 else -1 for d in a.shape]} for a in args]


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
            array = array.astype(wanted)
    except (ValueError, TypeError, OverflowError):
        raise ProtocolError(f"input {name!r}: data must be a (nested) list of {datatype} values") from None
    if array.size != math.prod(shape):
        raise ProtocolError(f"input {name!r}: {array.size} element(s) in data, but shape {shape} needs "
                            f"{math.prod(shape)}")
    return array.reshape(shape)


def split_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """-> (the JSON inference request, the binary bytes after it)."""
    if header_length is None:
        header, rest = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 < size <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH} is {size} but the body has {len(body)} bytes")
        header, rest = body[:size], body[size:]
    try:
        request = json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(f"the inference request is not valid JSON: {e}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise ProtocolError("the inference request must be a JSON object with a non-empty 'inputs' list")
    return request, rest


def read_inputs(request: dict, binary: bytes, expected: list[dict]) -> dict[str, np.ndarray]:
    """The request's inputs -> {name: array}, checked against the model's metadata."""
    wanted = {t["name"]: t for t in expected}
    feeds, offset = {}, 0
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict):
            raise ProtocolError("each input must be a JSON object with name, shape, datatype and data")
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if name not in wanted:
            raise ProtocolError(f"unexpected input {name!r}; the model's inputs are {', '.join(wanted)}")
        if name in feeds:
            raise ProtocolError(f"input {name!r} given twice")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                  for d in shape):
            raise ProtocolError(f"input {name!r}: shape must be a list of positive integers, got {shape!r}")
        if datatype not in V2_TO_NUMPY:
            raise ProtocolError(f"input {name!r}: unknown datatype {datatype!r}")
        parameters = tensor.get("parameters") or {}
        if "binary_data_size" in parameters:
            size = parameters["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ProtocolError(f"input {name!r}: binary_data_size {size!r} but only {len(binary) - offset} "
                                    f"binary byte(s) left in the body (truncated?)")
            array = decode_binary(binary[offset:offset + size], datatype, shape, name)
            offset += size
        elif "data" in tensor:
            array = decode_json(tensor["data"], datatype, shape, name)
        else:
            raise ProtocolError(f"input {name!r}: no 'data' and no binary_data_size parameter")
        check_against(array, datatype, wanted[name])
        feeds[name] = array
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} byte(s) of binary data that no input claims")
    missing = [n for n in wanted if n not in feeds]
    if missing:
        raise ProtocolError(f"missing input(s) {', '.join(missing)}; the model's inputs are {', '.join(wanted)}")
    return feeds


def check_against(array: np.ndarray, datatype: str, spec: dict) -> None:
    name = spec["name"]
    if datatype != spec["datatype"]:
        raise ProtocolError(f"input {name!r}: datatype {datatype}, the model expects {spec['datatype']}")
    shape = list(array.shape)
    if len(shape) != len(spec["shape"]) or any(w != -1 and w != d for w, d in zip(spec["shape"], shape)):
        raise ProtocolError(f"input {name!r}: shape {shape}, the model expects {spec['shape']} (-1: any size)")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ProtocolError(f"input {name!r} contains NaN or infinity")


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool  # send as binary data after the JSON header
    class_count: int = 0  # Triton's classification extension: the top k as BYTES instead of the tensor


def requested_outputs(request: dict, expected: list[dict]) -> list[RequestedOutput]:
    """No 'outputs' list means every output, as the tensors."""
    default_binary = bool((request.get("parameters") or {}).get("binary_data_output", False))
    outputs = request.get("outputs")
    if outputs is None:
        return [RequestedOutput(t["name"], default_binary) for t in expected]
    names = [t["name"] for t in expected]
    chosen = []
    for output in outputs if isinstance(outputs, list) else [None]:
        if not isinstance(output, dict) or output.get("name") not in names:
            raise ProtocolError(f"requested output {output!r} is not one of the model's: {', '.join(names)}")
        parameters = output.get("parameters") or {}
        count = parameters.get("classification", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ProtocolError(f"output {output['name']!r}: classification must be a count >= 0, got {count!r}")
        chosen.append(RequestedOutput(output["name"], bool(parameters.get("binary_data", default_binary)), count))
    return chosen


def classification(array: np.ndarray, count: int, labels: list[str], name: str) -> np.ndarray:
    """[N, classes] scores -> [N, count] BYTES "value:index:label" (":label" when the model has
    one per class), best first: Triton's classification extension."""
    if array.ndim != 2:
        raise ProtocolError(f"output {name!r}: classification needs a [batch, classes] output, it is {list(array.shape)}")
    named = len(labels) == array.shape[1]
    order = np.argsort(-array, axis=1, kind="stable")[:, :count]
    return np.array([[f"{row[i]:f}:{i}{f':{labels[i]}' if named else ''}".encode() for i in indices]
                     for row, indices in zip(array, order)], dtype=np.object_)
