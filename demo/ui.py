"""The Gradio UI: one tab per kind of model (Digits, Fashion, Hello, Lessons, Training), torch-free."""
import base64
import binascii
import functools
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demo.preprocess import EmptyImageError, ImageInputError
from demo.runtime import InputError, ModelError, ModelZoo, Prediction, SequencePrediction
from demo.uploads import read_upload

UNSURE_BELOW = 0.6  # top-1 probability under which the answer is shown as unsure
TOP_K = 3
STATIC = Path(__file__).with_name("static")  # the pad's script and the page's CSS


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


def app_css() -> str:
    """The page's own styles (static/app.css): the pad, the answer beside the seen picture, phones."""
    return (STATIC / "app.css").read_text()


def prediction_outputs(pred: Prediction):
    """-> (label dict for gr.Label, enlarged seen image, info markdown)."""
    probs = {p["label"]: p["confidence"] for p in pred.top_k}
    seen = Image.fromarray(pred.seen)  # 28x28; the page scales it up with hard pixel edges (CSS)
    verdict = f"**{pred.label}**" if pred.confidence >= UNSURE_BELOW else f"unsure: maybe **{pred.label}**"
    info = (f"{verdict} ({pred.confidence:.1%}) · model `{pred.model}` · provider `{pred.provider}` · "
            f"{pred.latency_ms:.1f} ms")
    return probs, seen, info


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
        except EmptyImageError:  # a blank upload: say so, not "draw a digit"
            return {}, None, "**Nothing to classify:** this picture is blank (one flat colour, nothing drawn on it)"
        except ImageInputError as e:  # the user's file: say what's wrong where the answer would be
            return {}, None, f"**Can't use this image:** {e}"
        except (InputError, ModelError) as e:
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


PAD_HTML = ('<div class="pad"><canvas width="560" height="560" aria-label="drawing pad"></canvas>'
            '<p class="pad-hint">draw a digit here</p><button class="pad-clear" type="button">Clear</button></div>')


def drawing_pad(elem_id: str) -> gr.HTML:
    """A canvas that sends one small PNG (data URL) per update: see static/sketchpad.js."""
    return gr.HTML(value="", html_template=PAD_HTML, js_on_load=(STATIC / "sketchpad.js").read_text(),
                   elem_id=elem_id, elem_classes=["sketch-pad"], label="draw a digit", show_label=False)


def pad_image(value) -> bytes | None:
    """The pad's value -> PNG bytes, or None when nothing is drawn ('' from an empty pad)."""
    if not value:
        return None
    head, _, data = str(value).partition(",")
    if head != "data:image/png;base64" or not data:
        raise ImageInputError("the drawing pad sent something that is not a PNG data URL")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise ImageInputError("the drawing pad's PNG is not valid base64") from None


def image_tab(zoo: ModelZoo, dataset: str, title: str, sketch: bool, empty_message: str):
    ids = [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == dataset]
    if not ids:
        gr.Markdown(f"No {dataset} models in `{zoo.models_dir}`: run `make models`.")
        return
    classify = make_classifier(zoo, empty_message)
    with gr.Row(equal_height=False, elem_classes=["image-tab"]):
        with gr.Column(scale=1, min_width=280):
            pad = drawing_pad(f"{dataset}-sketch") if sketch else gr.State(None)
            upload = UploadedImage(label=f"upload {title}" if not sketch else f"or upload {title}", type="filepath",
                                   sources=["upload", "clipboard"], elem_id=f"{dataset}-upload")
        with gr.Column(scale=1, min_width=280):
            with gr.Row(equal_height=False, elem_classes=["answer-row"]):
                label = gr.Label(num_top_classes=TOP_K, label="top 3", elem_id=f"{dataset}-label", min_width=150)
                seen = gr.Image(label="what the model saw (28x28)", interactive=False, elem_classes=["seen-pixels"],
                                elem_id=f"{dataset}-seen", height=150, min_width=110, buttons=[])
            info = gr.Markdown(elem_id=f"{dataset}-info")
            model = gr.Dropdown(ids, value=next((i for i in ids if i.endswith("-cnn")), ids[0]), label="model")
    outputs = [label, seen, info]
    source = gr.State("pad" if sketch else "upload")  # which input the answer shown is for
    examples = example_images(dataset, zoo.get(ids[0]).labels)
    if examples:
        gr.Examples(examples=[[p] for p in examples], inputs=[upload], label="test-set examples (click one)")

    def show_pad(model_id: str, drawn):
        try:
            drawing = pad_image(drawn)
        except ImageInputError as e:
            return {}, None, f"**Can't use this drawing:** {e}", "pad"
        return (*classify(model_id, drawing), "pad")

    def show_upload(model_id: str, uploaded):
        if uploaded is None:  # removed: .clear shows the pad's answer again
            return (gr.skip(),) * (len(outputs) + 1)
        return (*classify(model_id, uploaded), "upload")

    def rerun(model_id: str, drawn, uploaded, active: str):
        """A new model answers for the input the user touched last."""
        return show_upload(model_id, uploaded) if active == "upload" and uploaded is not None else show_pad(model_id, drawn)

    upload.change(show_upload, [model, upload], [*outputs, source], api_name=f"classify_{dataset}_upload")
    upload.clear(show_pad, [model, pad], [*outputs, source], api_name=False)
    model.change(rerun, [model, pad, upload, source], [*outputs, source], api_name=False, show_progress="hidden")
    if sketch:
        pad.input(show_pad, [model, pad], [*outputs, source], api_name=f"classify_{dataset}_sketch",
                  trigger_mode="always_last", show_progress="hidden")


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
            crossing = logistic.meta["results"]["crossing"]
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
            results = diabetes.meta["results"]
            gr.Markdown(f"The course's MLP on the Pima data (MASS Pima.tr → Pima.te): test accuracy "
                        f"{results['test_accuracy']:.1%}; logistic regression {results['logistic_test_accuracy']:.1%}; "
                        f"always-'No' {results['majority_test_accuracy']:.1%}.")
            fields = [gr.Number(label=f"{f['name']}: {f['help']}", minimum=f["min"], maximum=f["max"],
                                info=f"{f['min']:g} – {f['max']:g}") for f in diabetes.features]
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


def training_summary(model_id: str, meta: dict) -> str:
    """The numbers behind a shipped file: how it was trained and what it measured, as a table."""
    train = meta.get("train", {})
    cfg = train.get("config", {})
    recipe_keys = ("optimizer", "lr", "batch_size", "scheduler", "weight_decay", "l1", "label_smoothing", "augment",
                   "val_size", "patience", "amp", "seed")
    recipe = ", ".join(f"{k} {cfg[k]}" for k in recipe_keys if k in cfg)
    accuracy = meta.get("test_accuracy")
    rows = [
        ("test accuracy (this ONNX file)", "n/a" if accuracy is None else
         f"{accuracy:.2%} of {meta.get('test_examples', '?')} test examples"),
        ("int8 variant of", f"{meta['variant_of']} ({meta['fp32_test_accuracy']:.2%} in fp32; "
                            f"{meta['quantization']['method']} quantization)") if "variant_of" in meta else None,
        ("parameters", f"{meta.get('params', 0):,}"),
        ("model args", ", ".join(f"{k} {v}" for k, v in meta.get("model_args", {}).items()) or "none"),
        ("epochs", f"{train.get('epochs')}" + (f" (weights of epoch {train['selected_epoch']}, best on validation)"
                                               if cfg.get("val_size") and train.get("selected_epoch") else "")),
        ("seconds per epoch", f"{train.get('seconds_per_epoch', 0):.2f} on {train.get('device', '?')}"),
        ("recipe", recipe or "see the lesson"),
        ("parity with PyTorch", f"max abs diff {max(meta['parity']['max_abs_diff'].values()):.1e}, argmax agreement "
                                f"{meta['parity']['argmax_agreement']:.2%}" if meta.get("parity") else "n/a"),
        ("checkpoint sha256", f"`{meta.get('checkpoint_sha256', '')[:16]}…`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in filter(None, rows))
    return f"### {model_id}\n| | |\n|---|---|\n{table}"


def training_tab(zoo: ModelZoo):
    ids = [i for i in zoo.ids() if zoo.get(i).meta.get("train", {}).get("history")]
    if not ids:
        gr.Markdown(f"No training histories in `{zoo.models_dir}`: run `make models`.")
        return

    @guarded
    def show(model_id: str):
        meta = zoo.get(model_id).meta
        loss, accuracy = curve_frames(meta.get("train", {}).get("history", []))
        return loss, accuracy, training_summary(model_id, meta)

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
