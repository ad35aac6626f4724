"""Look-inside endpoints beside /api/classify:

    curl -s --data-binary @digit.png 'http://127.0.0.1:7860/api/inspect?model=mnist-cnn'
        -> the answer as /api/classify gives it, plus `input` (the 28x28 the model saw, 0-255),
           `taps` ([{name, kind, shape, min, max, values}], forward order, softmax last) and
           `occlusion` ([28][28]: how much hiding each pixel's neighbourhood lowers the answer)
    curl -s --data-binary @digit.png 'http://127.0.0.1:7860/api/inspect/all?dataset=mnist'
        -> {"rows": [{model, label, confidence, latency_ms, params, precision}], "total_ms"}
    curl -s http://127.0.0.1:7860/api/models/mnist-cnn/mistakes
        -> {"confusion": rows = true class, "mistakes": [{index, true, predicted, confidence, pixels, ...}]}

Bad input gets the same 4xx as /api/classify. Answers are encoded with orjson (Gradio's own JSON
library): a ResNet's taps are ~70,000 numbers, 6 ms with orjson, 45 ms with the json module.
"""
import time

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from demo.contract import DATASETS
from demo.inference.inside import InspectionError, all_models, dataset_models, inspector, mistakes
from demo.inference.runtime import ModelError, ModelZoo
from demo.settings import TOP_K
from demo.web.api import answered, error, image_body


def json_answer(data: dict) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def build_inspect_router(zoo: ModelZoo) -> APIRouter:
    router = APIRouter()

    @router.post("/api/inspect")
    async def inspect(request: Request, model: str, top_k: int = TOP_K):
        if not 1 <= top_k <= 100:
            return error(400, "top_k must be between 1 and 100")
        try:
            looking = inspector(zoo, model)
        except InspectionError as e:
            return error(400, str(e))
        except ModelError as e:
            return error(404, str(e))
        body = await image_body(request)
        if not isinstance(body, bytes):
            return body
        return await answered(lambda: looking.inspect(body, top_k).to_json(), json_answer)

    @router.post("/api/inspect/all")
    async def every_model(request: Request, dataset: str):
        if not dataset_models(zoo, dataset):
            served = sorted({d for d in DATASETS if dataset_models(zoo, d)})
            return error(404, f"no image models of dataset {dataset!r}; served: {', '.join(served) or 'none'}")
        body = await image_body(request)
        if not isinstance(body, bytes):
            return body

        def table():
            started = time.perf_counter()
            rows = all_models(zoo, body, dataset)
            return {"rows": rows, "total_ms": (time.perf_counter() - started) * 1000}

        return await answered(table, json_answer)

    @router.get("/api/models/{model_id}/mistakes")
    async def model_mistakes(model_id: str):
        try:
            report = await run_in_threadpool(mistakes, zoo, model_id)
        except InspectionError as e:
            return error(400, str(e))
        except ModelError as e:
            return error(404, str(e))
        return json_answer(report)

    return router
