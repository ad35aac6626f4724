"""The Open Inference Protocol (KServe v2, Triton's HTTP API) under /v2, for every served model.

    GET  /v2                          server metadata (name, version, extensions)
    GET  /v2/health/live | ready      200 when live / when every model is loaded
    GET  /v2/models/{id}              inputs and outputs: name, datatype, shape (-1: any size), and
                                      the request limits under "parameters": max_batch_size,
                                      max_sequence_length (char RNNs), max_request_bytes
    GET  /v2/models/{id}/ready        200 when that model is loaded
    POST /v2/models/{id}/infer        JSON tensors, or the binary tensor extension

The tensors are the ONNX graph's own (an image model takes the normalized float [N, 1, 28, 28]
the runtime would feed it; a char RNN takes tokens plus its state), so any client of Triton or
KServe, `tritonclient.http` included, talks to this server unchanged. The wire format (JSON and
binary tensors) is demo/inference/protocol.py's. Errors are `{"error": "..."}` with a 4xx status.

Limits (demo/inference/limits.py): a body over max_request_bytes, or an axis over its limit, is a 413
before any tensor is decoded; a wrong datatype or shape a 400. The JSON is parsed, the tensors
decoded and the model run on a worker thread, so the health routes answer during any request; at
most V2_CONCURRENT requests are read and run at once, the rest wait with their bodies unread (a 503
after V2_WAIT_S).
An output that is NaN or infinite (inputs far outside the training range) is refused with 422:
JSON cannot carry it, and a NaN score ranks nothing.
"""
import asyncio
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from starlette.concurrency import run_in_threadpool

from demo.web.connections import read_body, skip_body
from demo.inference.limits import AxisLimits, axis_limits
from demo.settings import JSON_BYTES_PER_NUMBER, JSON_HEADER_BYTES, V2_CONCURRENT, V2_WAIT_S
from demo.inference.protocol import (HEADER_LENGTH, NUMPY_TO_V2, ProtocolError, RequestedOutput, TensorSpec, check_finite,
                           classification, encode_bytes_elements, parse_request, read_inputs, requested_outputs,
                           split_body, tensor_metadata, tensor_specs)
from demo.inference.runtime import CharPredictor, ModelError, ModelZoo, OnnxModel

MODEL_VERSION = "1"  # `tinyzoo export --triton` writes each model as version 1
# what session.run raises for inputs the graph refuses (ORT's own types), or the Triton backend's ModelError
ORT_RUN_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.RuntimeException, ModelError)


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@dataclass(frozen=True)
class Served:
    """A model as /v2 serves it: its tensors and how large a request to it may be."""

    model: OnnxModel
    inputs: list[TensorSpec]
    outputs: list[dict]
    limits: AxisLimits

    @classmethod
    def of(cls, model: OnnxModel) -> "Served":
        limits = axis_limits(model.meta.task, getattr(model, "max_length", None))
        # a dynamic axis the limits do not name is bounded like the batch
        inputs = tensor_specs(model.session.get_inputs(), lambda axis: limits.of(axis) or limits.batch)
        return cls(model, inputs, tensor_metadata(model.session.get_outputs()), limits)

    @property
    def max_request_bytes(self) -> int:
        """JSON is the longer encoding: a request of the largest allowed tensors, sent as JSON, fits."""
        return sum(t.max_elements for t in self.inputs) * JSON_BYTES_PER_NUMBER + JSON_HEADER_BYTES

    def metadata(self, model_id: str) -> dict:
        return {"name": model_id, "versions": [MODEL_VERSION], "platform": "onnxruntime_onnx",
                "inputs": [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in self.inputs],
                "outputs": self.outputs,
                "parameters": {**self.limits.as_parameters(), "max_request_bytes": self.max_request_bytes}}


def check_tokens(model, feeds: dict[str, np.ndarray]) -> None:
    """A char RNN's token ids index its vocab; an embedding would fail on one out of range, but a
    one-hot encoder silently reads it as all zeros, so the range is checked here for every cell. Its
    state holds one row per sequence: ONNX Runtime's own refusal of another count names graph nodes."""
    if isinstance(model, CharPredictor):
        tokens = feeds[model.input_name]
        for name in model.state_inputs:
            if feeds[name].shape[1] != tokens.shape[0]:
                raise ProtocolError(f"input {name!r}: its shape[1] ({feeds[name].shape[1]}) must be the batch of "
                                    f"{model.input_name!r} ({tokens.shape[0]}): one state row per sequence")
        if tokens.min() < 0 or tokens.max() >= len(model.vocab):
            raise ProtocolError(f"input {model.input_name!r}: token ids must be 0..{len(model.vocab) - 1} "
                                f"(the model's vocab {model.vocab})")


def run_inference(served: Served, model_id: str, body: bytes, header_length: str | None) -> Response:
    """One request, parsed, checked, run and answered: on a worker thread, never on the event loop."""
    header, binary = split_body(body, header_length)
    inference = parse_request(header)
    feeds = read_inputs(inference, binary, served.inputs)
    check_tokens(served.model, feeds)
    outputs = requested_outputs(inference, [t["name"] for t in served.outputs])
    try:
        arrays = served.model.session.run([o.name for o in outputs], feeds)
    except ORT_RUN_ERRORS as e:  # what metadata can't express (batch sizes that disagree); a Triton error
        raise ProtocolError(f"{model_id} could not run on these inputs: {str(e).splitlines()[0][:300]}") from None
    for output, array in zip(outputs, arrays):
        check_finite(output.name, array)
    labels = getattr(served.model, "labels", [])
    arrays = [classification(a, o.class_count, labels, o.name) if o.class_count else a for o, a in zip(outputs, arrays)]
    return infer_response(model_id, inference.id, outputs, arrays)


def infer_response(model_id: str, request_id: str | None, outputs: list[RequestedOutput],
                   arrays: list[np.ndarray]) -> Response:
    tensors, chunks = [], []
    for output, array in zip(outputs, arrays):
        datatype = NUMPY_TO_V2[array.dtype]
        tensor = {"name": output.name, "datatype": datatype, "shape": list(array.shape)}
        if output.binary:
            raw = encode_bytes_elements(array) if datatype == "BYTES" else np.ascontiguousarray(array).astype(
                array.dtype.newbyteorder("<"), copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = ([x.decode() for x in array.reshape(-1)] if datatype == "BYTES"
                              else np.ascontiguousarray(array).reshape(-1))
        tensors.append(tensor)
    body = {"model_name": model_id, "model_version": MODEL_VERSION, "outputs": tensors}
    if request_id is not None:
        body["id"] = request_id
    # orjson writes numpy arrays in C (65,536 logits: 8 ms; json.dumps of their floats held the GIL, and so
    # the event loop, for 170 ms) with float32's shortest exact digits; outputs were checked finite before
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(header + b"".join(chunks), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


# --- routes -----------------------------------------------------------------------------------

class Catalog:
    """The served models, each model's tensors and limits worked out once."""

    def __init__(self, zoo: ModelZoo):
        self.zoo, self.served = zoo, {}

    def serving(self, model_id: str, model_version: str | None = None) -> Served:
        if model_version is not None and model_version != MODEL_VERSION:
            raise ProtocolError(f"model {model_id!r} has version {MODEL_VERSION} only, not {model_version!r}", 404)
        try:
            model = self.zoo.get(model_id)
        except ModelError as e:
            raise ProtocolError(str(e), 404) from None
        if model_id not in self.served:
            self.served[model_id] = Served.of(model)
        return self.served[model_id]


def answer(call, *args):
    try:
        return call(*args)
    except ProtocolError as e:
        return error(e.status, str(e))


def build_v2_router(zoo: ModelZoo) -> APIRouter:
    router = APIRouter(prefix="/v2")
    catalog = Catalog(zoo)
    add_server_routes(router, zoo)
    add_model_routes(router, catalog)
    add_infer_routes(router, catalog)
    return router


def add_server_routes(router: APIRouter, zoo: ModelZoo) -> None:
    @router.get("")
    def server_metadata():
        try:
            server_version = version("tinyzoo")
        except PackageNotFoundError:  # run from a checkout that was never pip-installed
            server_version = "0"
        return {"name": "tinyzoo", "version": server_version, "extensions": ["binary_tensor_data", "classification"]}

    # health on the event loop itself: it answers while every worker thread is busy with inference
    @router.get("/health/live")
    async def live():
        return {"live": True}

    @router.get("/health/ready")
    async def ready():
        try:
            for model_id in zoo.ids():
                zoo.get(model_id)  # every model was loaded at start: a lookup
        except ModelError as e:
            return error(503, str(e))
        return {"ready": True}


def add_model_routes(router: APIRouter, catalog: Catalog) -> None:
    serving = catalog.serving

    @router.get("/models/{model_id}")
    def model_metadata(model_id: str):
        return answer(lambda: serving(model_id).metadata(model_id))

    @router.get("/models/{model_id}/versions/{model_version}")
    def model_version_metadata(model_id: str, model_version: str):
        return answer(lambda: serving(model_id, model_version).metadata(model_id))

    @router.get("/models/{model_id}/ready")
    def model_ready(model_id: str):
        return answer(lambda: serving(model_id) and {"name": model_id, "ready": True})

    @router.get("/models/{model_id}/versions/{model_version}/ready")
    def model_version_ready(model_id: str, model_version: str):
        return answer(lambda: serving(model_id, model_version) and {"name": model_id, "ready": True})


def add_infer_routes(router: APIRouter, catalog: Catalog) -> None:
    slots = asyncio.Semaphore(V2_CONCURRENT)

    async def infer(request: Request, model_id: str, model_version: str | None):
        if request.headers.get("content-encoding", "identity") != "identity":
            return error(415, "compressed requests are not supported; send the body uncompressed")
        try:
            model = catalog.serving(model_id, model_version)
        except ProtocolError as e:
            return error(e.status, str(e))
        try:
            await asyncio.wait_for(slots.acquire(), V2_WAIT_S)
        except TimeoutError:
            await skip_body(request, model.max_request_bytes)
            return error(503, f"the server is busy: {V2_CONCURRENT} inferences under way and more waiting for "
                              f"{V2_WAIT_S:g} s; retry", {"Retry-After": "5"})
        try:
            return await infer_in_slot(request, model, model_id)
        finally:
            slots.release()

    async def infer_in_slot(request: Request, model: Served, model_id: str):
        body = await read_body(request, model.max_request_bytes)
        if body is None:
            return error(413, f"body larger than {model.max_request_bytes} bytes, the most one request to {model_id} "
                              f"may send (max_request_bytes in GET /v2/models/{model_id}); split it")
        try:
            return await run_in_threadpool(run_inference, model, model_id, body, request.headers.get(HEADER_LENGTH))
        except ProtocolError as e:
            return error(e.status, str(e))

    @router.post("/models/{model_id}/infer")
    async def model_infer(request: Request, model_id: str):
        return await infer(request, model_id, None)

    @router.post("/models/{model_id}/versions/{model_version}/infer")
    async def model_version_infer(request: Request, model_id: str, model_version: str):
        return await infer(request, model_id, model_version)
