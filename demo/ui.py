"""The Gradio UI: one tab per kind of model (Digits, Fashion, Hello, Lessons, Training), torch-free."""
import base64
import binascii
import functools

import gradio as gr
import numpy as np
from PIL import Image

from demo.contract import ModelMetadata, read_examples
from demo.preprocess import EmptyImageError, ImageInputError
from demo.runtime import InputError, ModelError, ModelZoo, Prediction, SequencePrediction
from demo.uploads import read_upload

UNSURE_BELOW = 0.6  # top-1 probability under which the answer is shown as unsure
TOP_K = 3
PIXELATED = ".seen-pixels img { image-rendering: pixelated; }"  # the 28x28 the model saw, enlarged crisply


class UploadedImage(gr.Image):
    """gr.Image whose upload reaches our validating decoder untouched.

    Stock gr.Image opens the file with PIL before the handler runs, so a non-image or a
    decompression bomb fails inside Gradio with a generic error; here the handler gets the bytes
    (of the upload, read only from Gradio's upload folder, or of a data: URL) and
    demo.preprocess says precisely what is wrong.
    """

    is_template = True  # render with gr.Image's front end

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path:
            return read_upload(payload.path)
        if payload.url and payload.url.startswith("data:") and "," in payload.url:
            try:
                return base64.b64decode(payload.url.split(",", 1)[1], validate=True)
            except binascii.Error:
                raise gr.Error("the uploaded data URL is not valid base64") from None
        raise gr.Error("no image data in the upload")


def prediction_outputs(pred: Prediction):
    """-> (label dict for gr.Label, enlarged seen image, info markdown)."""
    probs = {p["label"]: p["confidence"] for p in pred.top_k}
    seen = Image.fromarray(pred.seen)  # 28x28; the page scales it up with hard pixel edges (CSS)
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


def guarded(fn):
    """A handler whose bad input or broken model shows as a Gradio error message, not a traceback."""
    @functools.wraps(fn)  # Gradio reads the handler's signature
    def call(*args):
        try:
            return fn(*args)
        except (InputError, ModelError) as e:
            raise gr.Error(str(e)) from None
    return call


def make_classifier(zoo: ModelZoo, empty_message: str):
    """One handler shape for every image input: (model id, image) -> (label, seen, info)."""

    def classify(model_id: str, image):
        if image is None:
            return {}, None, empty_message
        try:
            return prediction_outputs(zoo.get(model_id).classify(image, TOP_K))
        except EmptyImageError:
            return {}, None, empty_message
        except ImageInputError as e:  # the user's file: say what's wrong where the answer would be
            return {}, None, f"**Can't use this image:** {e}"
        except (InputError, ModelError) as e:
            raise gr.Error(str(e)) from None

    return classify


def example_images(zoo: ModelZoo, dataset: str) -> list[str]:
    """The committed test-set pictures, one per class (models/examples, `tinyzoo export --examples`):
    the app shows them without the dataset on this machine."""
    try:
        return [str(e.path) for e in read_examples(zoo.models_dir, dataset)]
    except ValueError as e:  # a broken index costs the examples, not the app
        print(f"tinyzoo: no {dataset} examples: {e}", flush=True)
        return []


# --- photos: where the ink was found (issue 15; one function, one output, one event) ---------------

def ink_overlay(zoo: ModelZoo, model_id: str, image) -> Image.Image | None:
    """The uploaded picture, downscaled, with the box where the preprocessing found the ink."""
    from PIL import ImageDraw

    from demo.preprocess import open_image

    try:
        pred = zoo.get(model_id).classify(image) if image is not None else None
        picture = open_image(image).convert("RGB") if pred and pred.ink_box else None
    except (ImageInputError, InputError, ModelError):
        return None
    if picture is None:
        return None
    ImageDraw.Draw(picture).rectangle(pred.ink_box, outline=(230, 30, 30), width=max(2, max(picture.size) // 120))
    picture.thumbnail((320, 320))
    return picture


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
                                   sources=["upload", "clipboard"], elem_id=f"{dataset}-upload")
        with gr.Column():
            label = gr.Label(num_top_classes=TOP_K, label="top 3", elem_id=f"{dataset}-label")
            seen = gr.Image(label="what the model saw (28x28)", interactive=False, elem_classes=["seen-pixels"])
            info = gr.Markdown(elem_id=f"{dataset}-info")
    outputs = [label, seen, info]
    examples = example_images(zoo, dataset)
    if examples:
        gr.Examples(examples=[[p] for p in examples], inputs=[upload], label="test-set examples (click one)")
    upload.change(classify, [model, upload], outputs, api_name=f"classify_{dataset}_upload")
    found = gr.Image(label="where the ink was found", interactive=False, height=240)  # issue 15
    upload.change(functools.partial(ink_overlay, zoo), [model, upload], found, api_name=False)
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

    @guarded
    def predict(model_id: str, text: str):
        pred = zoo.get(model_id).predict(text)
        table = {"headers": ["#", "input", "predicted", *pred.vocab], "data": probability_table(pred)}
        info = f"model `{pred.model}` · provider `{pred.provider}` · {pred.latency_ms:.2f} ms"
        return pred.predicted, table, info

    with gr.Row():
        with gr.Column():
            first = "hello-rnn" if "hello-rnn" in ids else ids[0]  # the lecture's own model
            model = gr.Dropdown(ids, value=first, label="model")
            vocab = ", ".join(repr(c) for c in zoo.get(first).vocab)
            text = gr.Textbox(value="hello", label=f"text over the model's vocabulary ({vocab})", max_length=256)
            button = gr.Button("predict", variant="primary")
        with gr.Column():
            predicted = gr.Textbox(label="predicted next characters", interactive=False)
            table = gr.Dataframe(label="per-position probabilities", interactive=False)
            info = gr.Markdown()
    button.click(predict, [model, text], [predicted, table, info], api_name="predict_hello")
    text.submit(predict, [model, text], [predicted, table, info], api_name=False)


SPIRAL_VIEW = 1.2  # the boundary image spans [-1.2, 1.2] on both axes
SPIRAL_PIXELS = 300
SPIRAL_COLORS = np.array([[214, 39, 40], [44, 160, 44], [31, 119, 180]], np.uint8)  # class 0, 1, 2


def spiral_boundary(model, point: tuple[float, float] | None) -> Image.Image:
    """Each pixel coloured by the class the model gives its (x, y); the point marked in black."""
    axis = np.linspace(-SPIRAL_VIEW, SPIRAL_VIEW, SPIRAL_PIXELS, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis[::-1])  # row 0 is the top: y = +1.2
    zone = model.run(np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
    pixels = (255 - (255 - SPIRAL_COLORS[zone].astype(np.float32)) * 0.35).astype(np.uint8)  # pale zones
    if point is not None:
        col = int(round((point[0] + SPIRAL_VIEW) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1)))
        row = int(round((SPIRAL_VIEW - point[1]) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1)))
        pixels[max(row - 4, 0):row + 5, max(col - 4, 0):col + 5] = 0
    return Image.fromarray(pixels)


def lessons_tab(zoo: ModelZoo):
    ids = set(zoo.ids("tabular"))
    if not ids:
        gr.Markdown(f"No lesson models in `{zoo.models_dir}`: run `make models`.")
        return

    if "linear-regression" in ids:
        with gr.Tab("Linear regression"):
            gr.Markdown("nn.Linear trained on x = 1, 2, 3 → y = 2, 4, 6 (the course's first model).")
            x = gr.Number(value=4, label="x")
            y = gr.Number(label="predicted y", interactive=False)
            gr.Button("predict").click(guarded(lambda v: zoo.get("linear-regression").predict([v])["value"]),
                                       [x], [y], api_name="predict_linear")

    if "logistic-regression" in ids:
        with gr.Tab("Logistic regression"):
            logistic = zoo.get("logistic-regression")
            crossing = logistic.meta.lesson_result("crossing")
            gr.Markdown(f"Trained with BCE on x = 1, 2, 3 → 0, 0, 1; P(y=1) crosses 0.5 at x = {crossing:.2f}.")
            xs = np.linspace(0, 10, 101, dtype=np.float32)
            curve = {"x": xs.tolist(), "P(y=1)": logistic.run(xs[:, None])[:, 0].tolist()}
            gr.LinePlot(value=pd_frame(curve), x="x", y="P(y=1)", label="probability curve over [0, 10]")
            x = gr.Slider(0, 10, value=2.5, step=0.05, label="x")
            out = gr.Markdown()
            x.change(guarded(lambda v: f"P(y=1 | x={v:g}) = **{logistic.predict([v])['probability']:.3f}**"),
                     [x], [out], api_name="predict_logistic")

    if "diabetes-mlp" in ids:
        with gr.Tab("Diabetes"):
            diabetes = zoo.get("diabetes-mlp")
            result = diabetes.meta.lesson_result
            gr.Markdown(f"The course's MLP on the Pima data (MASS Pima.tr → Pima.te): test accuracy "
                        f"{result('test_accuracy'):.1%}; logistic regression {result('logistic_test_accuracy'):.1%}; "
                        f"always-'No' {result('majority_test_accuracy'):.1%}.")
            fields = [gr.Number(label=f"{f.name}: {f.help}", minimum=f.min, maximum=f.max,
                                info=f"{f.min:g} – {f.max:g}") for f in diabetes.features]
            out = gr.Markdown()

            def diabetes_form(*values):
                try:
                    pred = diabetes.predict(list(values))
                except InputError as e:
                    return f"**Check the form:** {e}"
                return f"P(diabetes) = **{pred['probability']:.1%}** → {pred['label']}"

            gr.Button("predict", variant="primary").click(diabetes_form, fields, [out], api_name="predict_diabetes")

    spirals = sorted(i for i in ids if i.startswith("spiral-"))
    if spirals:
        with gr.Tab("Spiral"):
            gr.Markdown("Three spiral arms: a linear classifier can't separate them, a 2-layer ReLU net can. "
                        "Type a point or click the map.")
            choice = gr.Dropdown(spirals, value=spirals[-1], label="model")
            px, py = gr.Number(value=0.5, label="x"), gr.Number(value=0.2, label="y")
            out = gr.Markdown()
            board = gr.Image(spiral_boundary(zoo.get(spirals[-1]), (0.5, 0.2)), interactive=False,
                             label="decision regions (x, y in [-1.2, 1.2])")

            def classify_point(model_id, x, y):
                model = zoo.get(model_id)
                pred = model.predict([x, y])
                return (f"class **{pred['label']}** ({pred['probabilities'][pred['label']]:.1%})",
                        spiral_boundary(model, (float(x), float(y))))

            def clicked(model_id, event: gr.SelectData):
                col, row = event.index
                x = -SPIRAL_VIEW + 2 * SPIRAL_VIEW * col / (SPIRAL_PIXELS - 1)
                y = SPIRAL_VIEW - 2 * SPIRAL_VIEW * row / (SPIRAL_PIXELS - 1)
                return round(x, 3), round(y, 3), *classify_point(model_id, x, y)

            gr.Button("classify").click(guarded(classify_point), [choice, px, py], [out, board], api_name="predict_spiral")
            board.select(clicked, [choice], [px, py, out, board], api_name=False)


def curve_frames(history: list[dict]):
    """Per-epoch rows -> long tables (epoch, split, loss) and (epoch, split, accuracy) for gr.LinePlot."""
    frames = {"loss": {"epoch": [], "split": [], "loss": []}, "accuracy": {"epoch": [], "split": [], "accuracy": []}}
    for row in history:
        for key, value in row.items():
            metric = next((m for m in frames if key == m or key.endswith(f"_{m}")), None)
            if metric and isinstance(value, (int, float)):
                frame = frames[metric]
                frame["epoch"].append(row["epoch"])
                frame["split"].append(key.removesuffix(metric).rstrip("_") or "train")  # hello logs plain 'loss'
                frame[metric].append(value)
    return pd_frame(frames["loss"]), pd_frame(frames["accuracy"])


def training_summary(meta: ModelMetadata) -> str:
    """The numbers behind a shipped file: how it was trained and what it measured, as a table."""
    train, measured = meta.train, meta.measurements
    cfg = train.config  # the trainer's config as recorded: its keys are the recipe's knobs
    recipe_keys = ("optimizer", "lr", "batch_size", "scheduler", "weight_decay", "l1", "label_smoothing", "augment",
                   "val_size", "patience", "amp", "seed")
    recipe = ", ".join(f"{k} {cfg[k]}" for k in recipe_keys if k in cfg)
    variant = meta.variant
    rows = [
        ("test accuracy (this ONNX file)", "n/a" if measured.test_accuracy is None else
         f"{measured.test_accuracy:.2%} of {measured.test_examples} test examples"),
        ("int8 variant of", f"{variant.variant_of} ({variant.fp32_test_accuracy:.2%} in fp32; "
                            f"{variant.quantization.method} quantization)") if variant else None,
        ("parameters", f"{measured.params:,}"),
        ("model args", ", ".join(f"{k} {v}" for k, v in meta.provenance.model_args.items()) or "none"),
        ("epochs", f"{train.epochs}" + (f" (weights of epoch {train.selected_epoch}, best on validation)"
                                        if cfg.get("val_size") and train.selected_epoch else "")),
        ("seconds per epoch", f"{train.seconds_per_epoch:.2f} on {train.device}"),
        ("recipe", recipe or "see the lesson"),
        ("parity with PyTorch", f"max abs diff {max(measured.parity.max_abs_diff.values()):.1e}, argmax agreement "
                                f"{measured.parity.argmax_agreement:.2%}"),
        ("checkpoint sha256", f"`{meta.provenance.checkpoint_sha256[:16]}…`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in filter(None, rows))
    return f"### {meta.id}\n| | |\n|---|---|\n{table}"


def training_tab(zoo: ModelZoo):
    ids = [i for i in zoo.ids() if zoo.get(i).meta.train and zoo.get(i).meta.train.history]
    if not ids:
        gr.Markdown(f"No training histories in `{zoo.models_dir}`: run `make models`.")
        return

    @guarded
    def show(model_id: str):
        meta = zoo.get(model_id).meta
        loss, accuracy = curve_frames(list(meta.train.history))
        return loss, accuracy, training_summary(meta)

    first = "mnist-cnn" if "mnist-cnn" in ids else ids[0]
    loss, accuracy, summary = show(first)
    choice = gr.Dropdown(ids, value=first, label="model")
    with gr.Row():
        loss_plot = gr.LinePlot(loss, x="epoch", y="loss", color="split", label="loss per epoch")
        accuracy_plot = gr.LinePlot(accuracy, x="epoch", y="accuracy", color="split", label="accuracy per epoch")
    table = gr.Markdown(summary)
    choice.change(show, [choice], [loss_plot, accuracy_plot, table], api_name="training_curves")


def pd_frame(columns: dict):
    import pandas as pd  # a Gradio dependency

    return pd.DataFrame(columns)


def build_ui(zoo: ModelZoo) -> gr.Blocks:
    # uploads and outputs in Gradio's cache are deleted after an hour, checked hourly
    with gr.Blocks(title="tinyzoo", delete_cache=(3600, 3600)) as ui:
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
        with gr.Tab("Lessons"):
            lessons_tab(zoo)
        with gr.Tab("Training"):
            gr.Markdown("How each shipped model was trained: its per-epoch curves (from the checkpoint, carried "
                        "in the ONNX metadata) and the figures measured on the exported file.")
            training_tab(zoo)
    return ui
