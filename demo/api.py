"""The plain JSON HTTP API beside the app: `POST /api/classify?model=<id>` with image bytes, `GET /api/models`."""
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from demo.preprocess import MAX_BYTES, EmptyImageError, ImageInputError, ServerBusyError, UnsupportedImageError
from demo.runtime import ImageClassifier, InputError, ModelError, ModelZoo
from demo.ui import TOP_K


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


def build_api(zoo: ModelZoo) -> FastAPI:
    api = FastAPI(title="tinyzoo", docs_url=None, redoc_url=None)

    @api.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):  # not FastAPI's {"detail": [...]}
        return error(400, invalid_parameters(exc))

    @api.get("/api/models")
    async def models():  # on the event loop: answers even while every worker thread waits on the decode budget
        return {"models": zoo.describe()}

    @api.post("/api/classify")
    async def classify(request: Request, model: str, top_k: int = TOP_K):
        if not 1 <= top_k <= 100:
            return error(400, "top_k must be between 1 and 100")
        try:
            onnx_model = zoo.get(model)
        except ModelError as e:
            return error(404, str(e))
        if not isinstance(onnx_model, ImageClassifier):
            return error(400, f"{model} is a {onnx_model.meta['task']} model, not an image classifier")
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return error(415, "send the image file's raw bytes as the request body "
                              "(curl --data-binary @digit.png), not a multipart form (curl -F)")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BYTES:
                return error(413, f"body larger than {MAX_BYTES // 2**20} MiB")
        if not body:
            return error(400, "empty body: send the image file's bytes as the request body")
        try:
            pred = await run_in_threadpool(onnx_model.classify, bytes(body), top_k)
        except ServerBusyError as e:  # the decode memory budget stayed spent: come back, not a 500
            return error(503, str(e), {"Retry-After": "5"})
        except EmptyImageError as e:
            return error(422, str(e))
        except UnsupportedImageError as e:
            return error(415, str(e))
        except (ImageInputError, InputError) as e:
            return error(400, str(e))
        return pred.to_json()

    return api
