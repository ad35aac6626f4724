"""The web app: Gradio UI plus a plain JSON HTTP API on one server, torch-free.

    python -m demo                     # http://127.0.0.1:7860 (PORT env or --port)
    curl -s --data-binary @digit.png 'http://127.0.0.1:7860/api/classify?model=mnist-cnn'
    curl -s http://127.0.0.1:7860/api/models
"""
import argparse
import base64
import binascii
import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool

from demo.preprocess import MAX_BYTES, EmptyImageError, ImageInputError
from demo.runtime import ImageClassifier, InputError, ModelError, ModelZoo, Prediction, SequencePrediction

UNSURE_BELOW = 0.6  # top-1 probability under which the answer is shown as unsure
TOP_K = 3
SEEN_DISPLAY = 224  # the 28x28 the model saw, shown enlarged with hard pixel edges

from gradio.events import Dependency

class UploadedImage(gr.Image):
    """gr.Image whose upload reaches our validating decoder untouched.

    Stock gr.Image opens the file with PIL before the handler runs, so a non-image or a
    decompression bomb fails inside Gradio with a generic error; here the handler gets the path
    (or the bytes of a data: URL) and demo.preprocess says precisely what is wrong.
    """

    is_template = True  # render with gr.Image's front end

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path:
            return payload.path
        if payload.url and payload.url.startswith("data:") and "," in payload.url:
            try:
                return base64.b64decode(payload.url.split(",", 1)[1], validate=True)
            except binascii.Error:
                raise gr.Error("the uploaded data URL is not valid base64") from None
        raise gr.Error("no image data in the upload")
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


def prediction_outputs(pred: Prediction):
    """-> (label dict for gr.Label, enlarged seen image, info markdown)."""
    probs = {p["label"]: p["confidence"] for p in pred.top_k}
    seen = Image.fromarray(pred.seen).resize((SEEN_DISPLAY, SEEN_DISPLAY), Image.Resampling.NEAREST)
    verdict = f"**{pred.label}**" if pred.confidence >= UNSURE_BELOW else f"unsure: maybe **{pred.label}**"
    info = (f"{verdict} ({pred.confidence:.1%}) · model `{pred.model}` · provider `{pred.provider}` · "
            f"{pred.latency_ms:.1f} ms")
    return probs, seen, info


def sketch_to_ink(sketch) -> np.ndarray | None:
    """Sketchpad value -> uint8 [H,W] ink (strokes bright on black), or None when nothing was drawn.

    Gradio 6 sends {background, layers, composite}; any of them may be None. The drawn layers'
    alpha is the cleanest ink; the composite is the fallback (e.g. a pasted background image).
    """
    if not isinstance(sketch, dict):
        return None
    layers = [np.asarray(layer) for layer in (sketch.get("layers") or []) if layer is not None]
    alphas = [layer[..., 3] for layer in layers if layer.ndim == 3 and layer.shape[-1] == 4]
    if alphas and max(int(a.max()) for a in alphas) > 0:
        return np.max(np.stack(alphas), axis=0).astype(np.uint8)
    composite = sketch.get("composite")
    if composite is None:
        return None
    composite = np.asarray(composite)
    if composite.ndim == 3 and composite.shape[-1] == 4 and composite[..., 3].max() == 0:
        return None  # fully transparent: an untouched canvas
    return composite


def make_classifier(zoo: ModelZoo, empty_message: str):
    """One handler shape for every image input: (model id, image) -> (label, seen, info)."""

    def classify(model_id: str, image):
        if image is None:
            return {}, None, empty_message
        try:
            return prediction_outputs(zoo.get(model_id).classify(image, TOP_K))
        except EmptyImageError:
            return {}, None, empty_message
        except (ImageInputError, InputError, ModelError) as e:
            raise gr.Error(str(e)) from None

    return classify


def example_images(dataset: str, labels: list[str]) -> list[str]:
    """One PNG per class from the real test set, written at start-up (datasets are never committed).
    None where the dataset isn't on this machine: the app works without examples."""
    from training.data import DataNotFoundError, load_split  # numpy-only reader

    try:
        images, targets = load_split(dataset, "test")
    except (DataNotFoundError, ValueError):
        return []
    folder = Path(tempfile.gettempdir()) / "tinyzoo-examples" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cls, name in enumerate(labels):
        index = int(np.flatnonzero(targets == cls)[0])
        path = folder / f"{index:05d}-{name.replace('/', '-').replace(' ', '-')}.png"
        if not path.exists():
            Image.fromarray(images[index]).save(path)
        paths.append(str(path))
    return paths


def image_tab(zoo: ModelZoo, dataset: str, title: str, sketch: bool, empty_message: str):
    ids = [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == dataset]
    if not ids:
        gr.Markdown(f"No {dataset} models in `{zoo.models_dir}`: run `make models`.")
        return
    classify = make_classifier(zoo, empty_message)
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(ids, value=next((i for i in ids if i.endswith("-cnn")), ids[0]), label="model")
            if sketch:
                pad = gr.Sketchpad(label="draw a digit", type="numpy", image_mode="RGBA", canvas_size=(280, 280))
            upload = UploadedImage(label=f"upload {title}" if not sketch else f"or upload {title}", type="filepath",
                                   sources=["upload", "clipboard"])
        with gr.Column():
            label = gr.Label(num_top_classes=TOP_K, label="top 3")
            seen = gr.Image(label="what the model saw (28x28)", interactive=False)
            info = gr.Markdown()
    outputs = [label, seen, info]
    examples = example_images(dataset, zoo.get(ids[0]).labels)
    if examples:
        gr.Examples(examples=[[p] for p in examples], inputs=[upload], label="test-set examples (click one)")
    upload.change(classify, [model, upload], outputs, api_name=f"classify_{dataset}_upload")
    if sketch:
        draw = lambda model_id, value: classify(model_id, sketch_to_ink(value))  # noqa: E731
        pad.change(draw, [model, pad], outputs, api_name=f"classify_{dataset}_sketch", trigger_mode="always_last")


def probability_table(pred: SequencePrediction) -> list[list]:
    """One row per position: input char, predicted char, then P(next = c) for each vocab char."""
    return [[i + 1, pred.text[i], pred.predicted[i], *[round(float(p), 4) for p in row]]
            for i, row in enumerate(pred.probabilities)]


def hello_tab(zoo: ModelZoo):
    ids = zoo.ids("sequence-prediction")
    if not ids:
        gr.Markdown(f"No sequence models in `{zoo.models_dir}`: run `make models`.")
        return

    def predict(model_id: str, text: str):
        try:
            pred = zoo.get(model_id).predict(text)
        except (InputError, ModelError) as e:
            raise gr.Error(str(e)) from None
        table = {"headers": ["#", "input", "predicted", *pred.vocab], "data": probability_table(pred)}
        info = f"model `{pred.model}` · provider `{pred.provider}` · {pred.latency_ms:.2f} ms"
        return pred.predicted, table, info

    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(ids, value=ids[0], label="model")
            vocab = ", ".join(repr(c) for c in zoo.get(ids[0]).vocab)
            text = gr.Textbox(value="hello", label=f"text over the model's vocabulary ({vocab})", max_length=256)
            button = gr.Button("predict", variant="primary")
        with gr.Column():
            predicted = gr.Textbox(label="predicted next characters", interactive=False)
            table = gr.Dataframe(label="per-position probabilities", interactive=False)
            info = gr.Markdown()
    button.click(predict, [model, text], [predicted, table, info], api_name="predict_hello")
    text.submit(predict, [model, text], [predicted, table, info], api_name=False)


def build_ui(zoo: ModelZoo) -> gr.Blocks:
    with gr.Blocks(title="tinyzoo") as ui:
        gr.Markdown("# tinyzoo\nThe course's models, exported to ONNX and served by ONNX Runtime. "
                    "HTTP API: `POST /api/classify?model=<id>` with image bytes, `GET /api/models`.")
        with gr.Tab("Digits"):
            image_tab(zoo, "mnist", "a handwritten digit", sketch=True, empty_message="draw a digit")
        with gr.Tab("Fashion"):
            image_tab(zoo, "fashion", "a clothing picture", sketch=False, empty_message="upload a clothing picture")
        with gr.Tab("Hello"):
            gr.Markdown("The course's char RNN learned `hello` → `ohlol`: at each position it predicts the next "
                        "character. Try other strings over its vocabulary.")
            hello_tab(zoo)
    return ui


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
            return error(400, f"{model} is a {onnx_model.meta['task']} model, not an image classifier")
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
        except (ImageInputError, InputError) as e:
            return error(415 if "format" in str(e) or "not an image" in str(e) else 400, str(e))
        return pred.to_json()

    return api


def create_app(zoo: ModelZoo) -> FastAPI:
    ui = build_ui(zoo)
    ui.queue(default_concurrency_limit=4, max_size=64)
    return gr.mount_gradio_app(build_api(zoo), ui, path="/", max_file_size=MAX_BYTES, show_error=True,
                               footer_links=["api"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="bind address (env HOST)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)), help="port (env PORT)")
    p.add_argument("--models-dir", default=None, help="folder with manifest.json and the .onnx files (env TINYZOO_MODELS)")
    p.add_argument("--provider", default=None, choices=["auto", "cpu", "cuda"], help="ONNX Runtime provider (env TINYZOO_PROVIDER)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    zoo = ModelZoo(args.models_dir, args.provider)
    for model_id in zoo.ids():  # load (and verify) every model up front: fail now, not on a first request
        zoo.get(model_id)
    providers = sorted({zoo.get(i).provider for i in zoo.ids()})
    print(f"tinyzoo: {len(zoo.ids())} models from {zoo.models_dir} on {', '.join(providers) or 'no provider'}; "
          f"serving http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(zoo), host=args.host, port=args.port, log_level="warning")
    return 0