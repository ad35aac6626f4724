"""The Open Inference Protocol (KServe v2, Triton's HTTP API) under /v2, for every served model.

    GET  /v2                          server metadata (name, version, extensions)
    GET  /v2/health/live | ready      200 when live / when every model is loaded
    GET  /v2/models/{id}              inputs and outputs: name, datatype, shape (-1: any size)
    GET  /v2/models/{id}/ready        200 when that model is loaded
    POST /v2/models/{id}/infer        JSON tensors, or the binary tensor extension

The tensors are the ONNX graph's own (an image model takes the normalized float [N, 1, 28, 28]
the runtime would feed it; a char RNN takes tokens plus its state), so any client of Triton or
KServe, `tritonclient.http` included, talks to this server unchanged. The wire format (JSON and
binary tensors) is demo/inference/protocol.py's. Errors are `{"error": "..."}` with a 4xx status.
"""
import json
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
from starlette.concurrency import run_in_threadpool

from demo.web.api import read_body
from demo.settings import MAX_BYTES
from demo.inference.protocol import (HEADER_LENGTH, NUMPY_TO_V2, ProtocolError, RequestedOutput, classification,
                           encode_bytes_elements, read_inputs, requested_outputs, split_body, tensor_metadata)
from demo.inference.runtime import CharPredictor, ModelError, ModelZoo

MODEL_VERSION = "1"  # `tinyzoo export --triton` writes each model as version 1
# what session.run raises for inputs the graph refuses (ORT's own types), or the Triton backend's ModelError
ORT_RUN_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.RuntimeException, ModelError)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def check_tokens(model, feeds: dict[str, np.ndarray]) -> None:
    """A char RNN's token ids index its vocab; an embedding would fail on one out of range, but a
    one-hot encoder silently reads it as all zeros, so the range is checked here for every cell."""
    if isinstance(model, CharPredictor):
        tokens = feeds[model.input_name]
        if tokens.min() < 0 or tokens.max() >= len(model.vocab):
            raise ProtocolError(f"input {model.input_name!r}: token ids must be 0..{len(model.vocab) - 1} "
                                f"(the model's vocab {model.vocab})")


def infer_response(model_id: str, request: dict, outputs: list[RequestedOutput], arrays: list[np.ndarray]) -> Response:
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
        return {"name": "tinyzoo", "version": server_version, "extensions": ["binary_tensor_data", "classification"]}

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
        body = await read_body(request, MAX_BYTES)
        if body is None:
            return error(413, f"body larger than {MAX_BYTES // 2**20} MiB")
        try:
            model = loaded(model_id, model_version)
            spec = metadata(model_id)
            inference, binary = split_body(body, request.headers.get(HEADER_LENGTH))
            feeds = read_inputs(inference, binary, spec["inputs"])
            check_tokens(model, feeds)
            outputs = requested_outputs(inference, spec["outputs"])
        except ProtocolError as e:
            return error(e.status, str(e))
        try:
            arrays = await run_in_threadpool(model.session.run, [o.name for o in outputs], feeds)
        except ORT_RUN_ERRORS as e:  # what metadata can't express (batch sizes that disagree); a Triton error
            return error(400, f"{model_id} could not run on these inputs: {str(e).splitlines()[0][:300]}")
        try:
            arrays = [classification(a, o.class_count, getattr(model, "labels", []), o.name) if o.class_count else a
                      for o, a in zip(outputs, arrays)]
        except ProtocolError as e:
            return error(e.status, str(e))
        return infer_response(model_id, inference, outputs, arrays)

    @router.post("/models/{model_id}/infer")
    async def model_infer(request: Request, model_id: str):
        return await infer(request, model_id, None)

    @router.post("/models/{model_id}/versions/{model_version}/infer")
    async def model_version_infer(request: Request, model_id: str, model_version: str):
        return await infer(request, model_id, model_version)

    return router
