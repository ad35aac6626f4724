"""The plain JSON HTTP API beside the app: `POST /api/classify?model=<id>` with image bytes,
`POST /api/predict?model=<id>` with JSON for the sequence and tabular models, `GET /api/models`."""
import functools
import json
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Route

from demo.imaging.prepare import EmptyImageError, ImageInputError, ServerBusyError, UnsupportedImageError
from demo.inference.json_numbers import float32_lists
from demo.inference.protocol import validation_message
from demo.inference.runtime import CharPredictor, ImageClassifier, InputError, ModelError, ModelZoo, TabularModel
from demo.settings import MAX_BYTES, PREDICT_MAX_BYTES, TOP_K
from demo.web.connections import read_body, too_large


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def invalid_parameters(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one line: "query parameter 'model' is required; ..."."""
    problems = []
    for e in exc.errors():
        source, *name = [str(part) for part in e.get("loc", ())] or ["request"]  # ('query', 'top_k')
        where = f"{source} parameter {'.'.join(name)!r}" if name else source
        if e.get("type") == "missing":
            problems.append(f"{where} is required")
        else:
            problems.append(f"{where}: {e.get('msg', 'invalid')} (got {str(e.get('input'))[:80]!r})")
    return "; ".join(problems) or "invalid request"


async def image_body(request: Request) -> bytes | JSONResponse:
    """The raw image bytes of the request, or the 4xx that refuses them."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return error(415, "send the image file's raw bytes as the request body "
                          "(curl --data-binary @digit.png), not a multipart form (curl -F)")
    body = await read_body(request, MAX_BYTES)
    if body is None:
        return error(413, too_large(MAX_BYTES, "one image file", MAX_BYTES))
    if not body:
        return error(400, "empty body: send the image file's bytes as the request body")
    return body


async def answered(work, respond=JSONResponse):
    """Run `work` (-> a JSON-able dict) off the event loop; a picture's refusal -> its 4xx."""
    try:
        return respond(await run_in_threadpool(work))
    except ServerBusyError as e:  # the decode memory budget stayed spent: come back, not a 500
        return error(503, str(e), {"Retry-After": "5"})
    except EmptyImageError as e:
        return error(422, str(e))
    except UnsupportedImageError as e:
        return error(415, str(e))
    except (ImageInputError, InputError) as e:
        return error(400, str(e))
    except ModelError as e:  # --backend triton: the server failed or its answer was refused
        return error(502, str(e))


def build_api(zoo: ModelZoo) -> FastAPI:
    api = FastAPI(title="tinyzoo", docs_url=None, redoc_url=None)

    @api.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):  # not FastAPI's {"detail": [...]}
        return error(400, invalid_parameters(exc))

    @functools.cache  # the zoo does not change while it serves: encoded once, not ~90 ms on the loop per call
    def described() -> bytes:
        return JSONResponse({"models": zoo.describe()}).body

    @api.get("/api/models")
    async def models():  # on the event loop: answers even while every worker thread waits on the decode budget
        return Response(described(), media_type="application/json")

    @api.post("/api/classify")
    async def classify(request: Request, model: str, top_k: int = TOP_K):
        if not 1 <= top_k <= 100:
            return error(400, "top_k must be between 1 and 100")
        try:
            onnx_model = zoo.get(model)
        except ModelError as e:
            return error(404, str(e))
        if not isinstance(onnx_model, ImageClassifier):
            return error(400, f"{model} is a {onnx_model.meta.task} model, not an image classifier")
        body = await image_body(request)
        if not isinstance(body, bytes):
            return body
        return await answered(lambda: onnx_model.classify(body, top_k).to_json())

    add_predict_route(api, zoo)
    return api


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def answer_unknown_routes(api: FastAPI, prefixes=("/api", "/v2")) -> None:
    """Under /api and /v2, a path or method no route takes gets a {"error"} (404, or 405 with Allow),
    not the web app's {"detail"} 404: Gradio is mounted at "/" and takes every request no route
    matched in full. Registered after every other route of `api`."""
    routes = list(api.routes)

    async def unknown(request: Request):
        allowed = [m for m in ALL_METHODS
                   if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)]
        what = f"{request.method[:20]} {request.url.path[:120]}"  # a caller's long path is not echoed whole
        if allowed:
            return error(405, f"{what}: this endpoint takes {' or '.join(allowed)}", {"Allow": ", ".join(allowed)})
        return error(404, f"{what}: no such endpoint (GET /api/models lists the models; docs/app-and-api.md "
                          "lists the endpoints)")

    for prefix in prefixes:
        api.router.routes.append(Route(prefix + "{rest:path}", AnyMethod(unknown), include_in_schema=False))


class AnyMethod:
    """A request handler as an ASGI app: Starlette's Route takes every method (one HTTP does not define,
    FOO, included) only for an app; for a function it takes GET alone."""

    def __init__(self, handler):
        self.handler = handler

    async def __call__(self, scope, receive, send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


# --- POST /api/predict's JSON: numbers are JSON numbers, finite (no 1e400, no 400-digit integer) --------
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
BY_NAME, IN_ORDER = "by name", "in order"  # the two ways to give features; tags left out of error messages


def features_form(value) -> str | None:
    return BY_NAME if isinstance(value, dict) else IN_ORDER if isinstance(value, list) else None


Features = Annotated[Annotated[dict[str, Number | None], Tag(BY_NAME)] | Annotated[list[Number | None], Tag(IN_ORDER)],
                     Discriminator(features_form, custom_error_type="features_form",
                                   custom_error_message="must be an object {name: number} or a list of numbers "
                                                        "in the model's feature order")]


class TextRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    text: str
    state: dict[str, list[list[list[Number]]]] | None = None  # [layers, batch, hidden], as an answer returned it


class FeaturesRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    features: Features


def add_predict_route(api: FastAPI, zoo: ModelZoo) -> None:
    """`POST /api/predict?model=<id>`: {"text": "hello"[, "state": {...}]} for a char RNN,
    {"features": {name: value} or [values]} for a tabular model."""

    @api.post("/api/predict")
    async def predict(request: Request, model: str):
        try:
            onnx_model = zoo.get(model)
        except ModelError as e:
            return error(404, str(e))
        if isinstance(onnx_model, ImageClassifier):
            return error(400, f"{model} is an image classifier: POST the image's bytes to /api/classify?model={model}")
        body = await read_body(request, PREDICT_MAX_BYTES)
        if body is None:
            return error(413, too_large(PREDICT_MAX_BYTES, "a JSON body", PREDICT_MAX_BYTES))
        try:
            return await run_in_threadpool(predict_json, onnx_model, body)
        except InputError as e:
            return error(400, str(e))
        except ModelError as e:  # --backend triton: the server failed or its answer was refused
            return error(502, str(e))


def predict_json(model: CharPredictor | TabularModel, body: bytes) -> dict:
    """The JSON body, checked by its schema (a depth-limited parse), through the model."""
    schema = TextRequest if isinstance(model, CharPredictor) else FeaturesRequest
    try:
        payload = schema.model_validate_json(body)
    except ValidationError as e:
        example = '{"text": "hello"}' if schema is TextRequest else json.dumps({"features": {
            f.name: round((f.min + f.max) / 2, 2) for f in model.features}})
        raise InputError(f"{model.id} takes a JSON object like {example}: "
                         f"{validation_message(e, 'the body', frozenset({BY_NAME, IN_ORDER}))}") from None
    if isinstance(payload, FeaturesRequest):
        return {"model": model.id, **model.predict(payload.features), "provider": model.provider}
    try:
        with np.errstate(over="ignore"):  # 1e39 is infinity in float32: refused below
            state = {name: np.asarray(value, np.float32) for name, value in (payload.state or {}).items()}
    except ValueError:  # ragged lists
        raise InputError(f"{model.id}: each state value must be a [layers, batch, hidden] list of numbers") from None
    if any(not np.isfinite(value).all() for value in state.values()):
        raise InputError(f"{model.id}: state values beyond float32's range")
    pred = model.predict(payload.text, state)
    if not all(np.isfinite(value).all() for value in (pred.probabilities, *pred.state.values())):
        raise InputError(f"{model.id}: this state is too large for the model (its answer would be NaN or infinite); "
                         f"send a state a previous answer returned")
    return {"model": model.id, "input": pred.text, "output": pred.predicted,
            "state": {name: float32_lists(value) for name, value in pred.state.items()},
            "provider": pred.provider, "latency_ms": round(pred.latency_ms, 3)}
