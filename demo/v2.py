"""The Open Inference Protocol (KServe v2, Triton's HTTP API) under /v2, for every served model.

    GET  /v2                          server metadata (name, version, extensions)
    GET  /v2/health/live | ready      200 when live / when every model is loaded
    GET  /v2/models/{id}              inputs and outputs: name, datatype, shape (-1: any size)
    GET  /v2/models/{id}/ready        200 when that model is loaded
    POST /v2/models/{id}/infer        JSON tensors, or the binary tensor extension

The tensors are the ONNX graph's own (an image model takes the normalized float [N, 1, 28, 28]
the runtime would feed it; a char RNN takes tokens plus its state), so any client of Triton or
KServe, `tritonclient.http` included, talks to this server unchanged. Binary tensor extension:
the JSON header's length is in `Inference-Header-Content-Length`, each binary input says its
`binary_data_size` and the bytes follow the header in input order, little-endian, row-major;
a BYTES element is a 4-byte little-endian length and then its bytes. Errors are
`{"error": "..."}` with a 4xx status.
"""
import json
import math
import struct
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from demo.preprocess import MAX_BYTES
from demo.runtime import CharPredictor, ModelError, ModelZoo

HEADER_LENGTH = "Inference-Header-Content-Length"
MODEL_VERSION = "1"  # `tinyzoo export --triton` writes each model as version 1
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


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def tensor_metadata(args) -> list[dict]:
    """ORT NodeArgs -> protocol tensor metadata; a named (dynamic) axis is -1."""
    return [{"name": a.name, "datatype": ORT_TO_V2[a.type],
             "shape": [d if isinstance(d, int) and d >= 0 else -1 for d in a.shape]} for a in args]


# --- tensors on the wire ---------------------------------------------------------------------

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


def check_tokens(model, feeds: dict[str, np.ndarray]) -> None:
    """A char RNN's token ids index its vocab; an embedding would fail on one out of range, but a
    one-hot encoder silently reads it as all zeros, so the range is checked here for every cell."""
    if isinstance(model, CharPredictor):
        tokens = feeds[model.input_name]
        if tokens.min() < 0 or tokens.max() >= len(model.vocab):
            raise ProtocolError(f"input {model.input_name!r}: token ids must be 0..{len(model.vocab) - 1} "
                                f"(the model's vocab {model.vocab})")


def requested_outputs(request: dict, expected: list[dict]) -> list[tuple[str, bool]]:
    """-> [(output name, send as binary)]; no 'outputs' list means every output."""
    default_binary = bool((request.get("parameters") or {}).get("binary_data_output", False))
    outputs = request.get("outputs")
    if outputs is None:
        return [(t["name"], default_binary) for t in expected]
    names = [t["name"] for t in expected]
    chosen = []
    for output in outputs if isinstance(outputs, list) else [None]:
        if not isinstance(output, dict) or output.get("name") not in names:
            raise ProtocolError(f"requested output {output!r} is not one of the model's: {', '.join(names)}")
        chosen.append((output["name"], bool((output.get("parameters") or {}).get("binary_data", default_binary))))
    return chosen


def infer_response(model_id: str, request: dict, outputs: list[tuple[str, bool]], arrays: list[np.ndarray]) -> Response:
    tensors, chunks = [], []
    for (name, binary), array in zip(outputs, arrays):
        datatype = NUMPY_TO_V2[array.dtype]
        tensor = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = encode_bytes_elements(array) if datatype == "BYTES" else np.ascontiguousarray(array).astype(
                array.dtype.newbyteorder("<"), copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = [x.decode() if isinstance(x, bytes) else x for x in array.reshape(-1).tolist()]
        tensors.append(tensor)
    body = {"model_name": model_id, "model_version": MODEL_VERSION, "outputs": tensors}
    if "id" in request:
        body["id"] = request["id"]
    header = json.dumps(body).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(header + b"".join(chunks), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


# --- routes -----------------------------------------------------------------------------------

def build_v2_router(zoo: ModelZoo) -> APIRouter:
    router = APIRouter(prefix="/v2")

    def loaded(model_id: str, model_version: str | None = None):
        if model_version is not None and model_version != MODEL_VERSION:
            raise ProtocolError(f"model {model_id!r} has version {MODEL_VERSION} only, not {model_version!r}", 404)
        try:
            return zoo.get(model_id)
        except ModelError as e:
            raise ProtocolError(str(e), 404) from None

    def metadata(model_id: str, model_version: str | None = None) -> dict:
        session = loaded(model_id, model_version).session
        return {"name": model_id, "versions": [MODEL_VERSION], "platform": "onnxruntime_onnx",
                "inputs": tensor_metadata(session.get_inputs()), "outputs": tensor_metadata(session.get_outputs())}

    def answer(call, *args):
        try:
            return call(*args)
        except ProtocolError as e:
            return error(e.status, str(e))

    @router.get("")
    def server_metadata():
        try:
            server_version = version("tinyzoo")
        except PackageNotFoundError:  # run from a checkout that was never pip-installed
            server_version = "0"
        return {"name": "tinyzoo", "version": server_version, "extensions": ["binary_tensor_data"]}

    @router.get("/health/live")
    def live():
        return {"live": True}

    @router.get("/health/ready")
    def ready():
        try:
            for model_id in zoo.ids():
                zoo.get(model_id)
        except ModelError as e:
            return error(503, str(e))
        return {"ready": True}

    @router.get("/models/{model_id}")
    def model_metadata(model_id: str):
        return answer(metadata, model_id)

    @router.get("/models/{model_id}/versions/{model_version}")
    def model_version_metadata(model_id: str, model_version: str):
        return answer(metadata, model_id, model_version)

    @router.get("/models/{model_id}/ready")
    def model_ready(model_id: str):
        return answer(lambda: loaded(model_id) and {"name": model_id, "ready": True})

    @router.get("/models/{model_id}/versions/{model_version}/ready")
    def model_version_ready(model_id: str, model_version: str):
        return answer(lambda: loaded(model_id, model_version) and {"name": model_id, "ready": True})

    async def infer(request: Request, model_id: str, model_version: str | None):
        if request.headers.get("content-encoding", "identity") != "identity":
            return error(415, "compressed requests are not supported; send the body uncompressed")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BYTES:
                return error(413, f"body larger than {MAX_BYTES // 2**20} MiB")
        try:
            model = loaded(model_id, model_version)
            spec = metadata(model_id)
            inference, binary = split_body(bytes(body), request.headers.get(HEADER_LENGTH))
            feeds = read_inputs(inference, binary, spec["inputs"])
            check_tokens(model, feeds)
            outputs = requested_outputs(inference, spec["outputs"])
        except ProtocolError as e:
            return error(e.status, str(e))
        try:
            arrays = await run_in_threadpool(model.session.run, [name for name, _ in outputs], feeds)
        except Exception as e:  # ORT rejects what metadata can't express (batch sizes that disagree)
            return error(400, f"{model_id} could not run on these inputs: {str(e).splitlines()[0][:300]}")
        return infer_response(model_id, inference, outputs, arrays)

    @router.post("/models/{model_id}/infer")
    async def model_infer(request: Request, model_id: str):
        return await infer(request, model_id, None)

    @router.post("/models/{model_id}/versions/{model_version}/infer")
    async def model_version_infer(request: Request, model_id: str, model_version: str):
        return await infer(request, model_id, model_version)

    return router
