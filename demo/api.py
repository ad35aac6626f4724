"""The plain JSON HTTP API beside the app: `POST /api/classify?model=<id>` with image bytes, `GET /api/models`."""
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from demo.preprocess import MAX_BYTES, EmptyImageError, ImageInputError, UnsupportedImageError
from demo.runtime import ImageClassifier, InputError, ModelError, ModelZoo
from demo.ui import TOP_K


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_api(zoo: ModelZoo) -> FastAPI:
    api = FastAPI(title="tinyzoo", docs_url=None, redoc_url=None)

    @api.get("/api/models")
    def models():
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
            return error(400, f"{model} is a {onnx_model.meta.task} model, not an image classifier")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BYTES:
                return error(413, f"body larger than {MAX_BYTES // 2**20} MiB")
        if not body:
            return error(400, "empty body: send the image file's bytes as the request body")
        try:
            pred = await run_in_threadpool(onnx_model.classify, bytes(body), top_k)
        except EmptyImageError as e:
            return error(422, str(e))
        except UnsupportedImageError as e:
            return error(415, str(e))
        except (ImageInputError, InputError) as e:
            return error(400, str(e))
        return pred.to_json()

    return api
