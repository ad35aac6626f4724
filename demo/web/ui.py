"""The Gradio UI: one tab per kind of model (Digits, Fashion, Hello, Lessons, Training), torch-free."""
import base64
import binascii
import functools
import logging
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from demo.contract import ModelMetadata, read_examples
from demo.contract.datasets import make_spiral
from demo.imaging.prepare import EmptyImageError, ImageInputError, open_image
from demo.inference.runtime import InputError, ModelError, ModelZoo, Prediction, SequencePrediction
from demo.web.inside import inside_panel, wire_inside
from demo.web.uploads import read_upload

TOP_K = 3
STATIC = Path(__file__).with_name("static")  # the pad's script and the page's CSS
LOG = logging.getLogger("tinyzoo.ui")  # no handler: Python prints a warning as one plain line on stderr


class UploadedImage(gr.Image):
    """gr.Image whose upload reaches our validating decoder untouched.

    Stock gr.Image opens the file with PIL before the handler runs, so a non-image or a
    decompression bomb fails inside Gradio with a generic error; here the handler gets the bytes
    (of the upload, read only from Gradio's upload folder, or of a data: URL) and
    demo.imaging.prepare says precisely what is wrong.
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


# Gradio runs this page script once the app can take events (mount_gradio_app's js=). A component's
# trigger() before then is dropped without a word (its dispatcher is not wired yet): on a busy
# machine a digit drawn right after the page appeared got no answer. The pad waits for this.
APP_READY_JS = "() => { window.tinyzooReady = true; document.dispatchEvent(new Event('tinyzoo:ready')); }"


def prediction_outputs(pred: Prediction):
    """-> (label dict for gr.Label, enlarged seen image, info markdown)."""
    probs = {p["label"]: p["confidence"] for p in pred.top_k}
    seen = Image.fromarray(pred.seen)  # 28x28; the page scales it up with hard pixel edges (CSS)
    verdict = f"unsure: maybe **{pred.label}**" if pred.unsure else f"**{pred.label}**"
    info = (f"{verdict} ({pred.confidence:.1%}) · model `{pred.model}` · provider `{pred.provider}` · "
            f"{pred.latency_ms:.1f} ms")
    return probs, seen, info


def refused(error: Exception) -> str:
    """A user's input was refused: one line in the server log (no traceback), the message for the page."""
    LOG.warning("refused input: %s", error)
    return str(error)


def guarded(fn):
    """A handler whose bad input or broken model shows as a Gradio error message, not a traceback."""
    @functools.wraps(fn)  # Gradio reads the handler's signature
    def call(*args):
        try:
            return fn(*args)
        except (InputError, ModelError) as e:
            raise gr.Error(refused(e), print_exception=False) from None
    return call


def make_classifier(zoo: ModelZoo, empty_message: str):
    """One handler shape for every image input: (model id, image) -> (label, seen, info, ink box or None)."""

    def classify(model_id: str, image):
        if image is None:
            return {}, None, empty_message, None
        try:
            pred = zoo.get(model_id).classify(image, TOP_K)
        except EmptyImageError as e:  # a blank upload: say so, not "draw a digit"
            refused(e)
            return {}, None, "**Nothing to classify:** this picture is blank (one flat colour, nothing drawn on it)", None
        except ImageInputError as e:  # the user's file: say what's wrong where the answer would be
            return {}, None, f"**Can't use this image:** {refused(e)}", None
        except (InputError, ModelError) as e:
            raise gr.Error(refused(e), print_exception=False) from None
        return (*prediction_outputs(pred), pred.ink_box)

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

OVERLAY_SIDE = 320


def no_overlay() -> gr.Image:
    return gr.Image(value=None, visible=False)


def ink_overlay(image, ink_box) -> gr.Image:
    """The uploaded picture, downscaled, with the box where the preprocessing found the ink (the
    classification's own box: the picture is only decoded again, at reduced size, to be shown); the
    panel stays hidden when there is no such box (no upload, a refused one, a dataset-size picture)."""
    if image is None or not ink_box:
        return no_overlay()
    try:
        picture = open_image(image, reduce_to=OVERLAY_SIDE).convert("RGB")
    except ImageInputError:
        return no_overlay()
    scale = picture.info.get("decode_scale", 1.0)
    box = [v / scale for v in ink_box]
    ImageDraw.Draw(picture).rectangle(box, outline=(230, 30, 30), width=max(2, max(picture.size) // 120))
    picture.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE))
    return gr.Image(value=picture, visible=True)


PAD_HTML = ('<div class="pad"><canvas width="560" height="560" aria-label="drawing pad"></canvas>'
            '<p class="pad-hint">draw a digit here</p></div>'
            '<div class="pad-bar"><button class="pad-clear" type="button">Clear</button></div>')  # not over the pad


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


def image_upload(dataset: str, title: str) -> "UploadedImage":
    return UploadedImage(label=title, type="filepath", sources=["upload", "clipboard"], elem_id=f"{dataset}-upload",
                         height=220, elem_classes=["upload-preview"])


def image_tab(zoo: ModelZoo, dataset: str, title: str, sketch: bool, empty_message: str, intro: str):
    ids = [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == dataset]
    if not ids:
        gr.Markdown(f"No {dataset} models in `{zoo.models_dir}`: run `make models`.")
        return
    gr.Markdown(intro, elem_classes=["intro"])
    classify = make_classifier(zoo, empty_message)
    with gr.Row(equal_height=False):  # a phone stacks these: the pad, then the answer, on one screen
        with gr.Column(scale=1, min_width=280):
            pad = drawing_pad(f"{dataset}-sketch") if sketch else gr.State(None)
            upload = None if sketch else image_upload(dataset, f"upload {title}")
        with gr.Column(scale=1, min_width=280):
            with gr.Row(equal_height=False, elem_classes=["answer-row"]):
                label = gr.Label(num_top_classes=TOP_K, label="top 3", elem_id=f"{dataset}-label", min_width=150)
                seen = gr.Image(label="what the model saw", interactive=False, elem_classes=["seen-pixels"],
                                elem_id=f"{dataset}-seen", height=150, min_width=110, buttons=[])
            info = gr.Markdown(elem_id=f"{dataset}-info")
            model = gr.Dropdown(ids, value=next((i for i in ids if i.endswith("-cnn")), ids[0]), label="model")
    inside = inside_panel(dataset)  # "Look inside", under the answer
    if sketch:
        upload = image_upload(dataset, f"or upload {title}")
    found = gr.Image(label="where the ink was found", interactive=False, height=240, visible=False)  # photos
    outputs = [label, seen, info]
    source = gr.State("pad" if sketch else "upload")  # which input the answer shown is for
    class_names = zoo.get(ids[0]).labels
    examples = example_images(zoo, dataset)
    if examples:  # one per class, in class order: a gallery, so each is captioned with its class
        gallery = gr.Gallery(list(zip(examples, class_names)), label="test-set examples (click one)", columns=10,
                             height="auto", allow_preview=False, buttons=[], elem_id=f"{dataset}-examples",
                             elem_classes=["examples"])

        def pick(event: gr.SelectData):
            return examples[event.index]

        gallery.select(pick, None, [upload], api_name=False)

    def show_pad(model_id: str, drawn):
        try:
            drawing = pad_image(drawn)
        except ImageInputError as e:
            return {}, None, f"**Can't use this drawing:** {refused(e)}", "pad"
        return (*classify(model_id, drawing)[:3], "pad")

    def show_upload(model_id: str, uploaded):
        if uploaded is None:  # removed: .clear shows the pad's answer again
            return (gr.skip(),) * (len(outputs) + 1) + (None,)
        *answer, box = classify(model_id, uploaded)
        return (*answer, "upload", box)

    def rerun(model_id: str, drawn, uploaded, active: str):
        """A new model answers for the input the user touched last."""
        if active == "upload" and uploaded is not None:
            return show_upload(model_id, uploaded)[:-1]
        return show_pad(model_id, drawn)

    ink_box = gr.State(None)  # the upload's, from its classification: the overlay needs no second one
    upload.change(show_upload, [model, upload], [*outputs, source, ink_box], api_name=f"classify_{dataset}_upload"
                  ).then(ink_overlay, [upload, ink_box], found, api_name=False, show_progress="hidden")
    upload.clear(show_pad, [model, pad], [*outputs, source], api_name=False)
    model.change(rerun, [model, pad, upload, source], [*outputs, source], api_name=False, show_progress="hidden")
    if sketch:
        pad.input(show_pad, [model, pad], [*outputs, source], api_name=f"classify_{dataset}_sketch",
                  trigger_mode="always_last", show_progress="hidden")
    feeds = [(pad.input, pad, pad_image)] if sketch else []
    wire_inside(zoo, dataset, model, inside, feeds + [(upload.change, upload, lambda uploaded: uploaded)])


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
        """-> (predicted text, table, info); a refused input clears the old result and says why."""
        try:
            model = zoo.get(model_id)
            pred = model.predict(text)
        except (InputError, ModelError) as e:
            vocab = zoo.get(model_id).vocab if model_id in ids else []
            empty = {"headers": ["#", "input", "predicted", *vocab], "data": []}
            return "", empty, f"**Can't predict:** {refused(e)}"
        table = {"headers": ["#", "input", "predicted", *pred.vocab], "data": probability_table(pred)}
        info = f"model `{pred.model}` · provider `{pred.provider}` · {pred.latency_ms:.2f} ms"
        return pred.predicted, table, info

    first = "hello-rnn" if "hello-rnn" in ids else ids[0]  # the lecture's own model
    shown = predict(first, "hello")  # the page opens with the lecture's example answered
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(ids, value=first, label="model")
            vocab = ", ".join(repr(c) for c in zoo.get(first).vocab)
            text = gr.Textbox(value="hello", label=f"text over the model's vocabulary ({vocab}); Enter predicts")
            button = gr.Button("predict", variant="primary")
        with gr.Column():
            predicted = gr.Textbox(shown[0], label="predicted next characters", interactive=False,
                                   elem_id="hello-predicted")
            table = gr.Dataframe(shown[1], label="per-position probabilities", interactive=False, elem_id="hello-table")
            info = gr.Markdown(shown[2], elem_id="hello-info")
    outputs = [predicted, table, info]
    button.click(predict, [model, text], outputs, api_name="predict_hello")
    text.submit(predict, [model, text], outputs, api_name=False)
    model.change(predict, [model, text], outputs, api_name=False)


SPIRAL_VIEW = 1.2  # the map spans [-1.2, 1.2] on both axes
SPIRAL_PIXELS = 300
SPIRAL_MARGIN = (34, 8, 8, 26)  # left, top, right, bottom: room for the axes' numbers
SPIRAL_LEGEND = 22  # a row above the map naming the colours
SPIRAL_COLORS = np.array([[214, 39, 40], [44, 160, 44], [31, 119, 180]], np.uint8)  # class 0, 1, 2


def spiral_pixel(x: float, y: float) -> tuple[int, int]:
    """(x, y) -> (column, row) inside the map area."""
    return (int(round((x + SPIRAL_VIEW) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1))),
            int(round((SPIRAL_VIEW - y) / (2 * SPIRAL_VIEW) * (SPIRAL_PIXELS - 1))))


def spiral_point(col: int, row: int) -> tuple[float, float] | None:
    """A click on the picture -> (x, y), or None outside the map area."""
    col, row = col - SPIRAL_MARGIN[0], row - SPIRAL_MARGIN[1] - SPIRAL_LEGEND
    if not (0 <= col < SPIRAL_PIXELS and 0 <= row < SPIRAL_PIXELS):
        return None
    return (-SPIRAL_VIEW + 2 * SPIRAL_VIEW * col / (SPIRAL_PIXELS - 1),
            SPIRAL_VIEW - 2 * SPIRAL_VIEW * row / (SPIRAL_PIXELS - 1))


@functools.cache
def spiral_training_points() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_spiral(0)
    return x[::4], y[::4]  # every 4th of the 3,000: the arms stay readable over the zones


def spiral_boundary(model, point: tuple[float, float] | None) -> Image.Image:
    """Each pixel coloured by the class the model gives its (x, y), the training points on top, the
    point marked in black; axes with their numbers and a legend of the colours around the map."""
    axis = np.linspace(-SPIRAL_VIEW, SPIRAL_VIEW, SPIRAL_PIXELS, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis[::-1])  # row 0 is the top: y = +1.2
    zone = model.run(np.c_[gx.ravel(), gy.ravel()]).argmax(1).reshape(gx.shape)
    pixels = (255 - (255 - SPIRAL_COLORS[zone].astype(np.float32)) * 0.35).astype(np.uint8)  # pale zones
    left, top, right, bottom = SPIRAL_MARGIN
    picture = Image.new("RGB", (left + SPIRAL_PIXELS + right, SPIRAL_LEGEND + top + SPIRAL_PIXELS + bottom), "white")
    origin = (left, SPIRAL_LEGEND + top)
    picture.paste(Image.fromarray(pixels), origin)
    draw = ImageDraw.Draw(picture)
    at = lambda x, y: tuple(o + p for o, p in zip(origin, spiral_pixel(x, y)))  # noqa: E731
    for (x, y), cls in zip(*spiral_training_points()):
        cx, cy = at(x, y)
        draw.ellipse([cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5], fill=tuple(int(v) for v in SPIRAL_COLORS[cls]))
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        tx, ty = at(tick, -SPIRAL_VIEW)
        draw.line([tx, ty, tx, ty + 4], fill="black")
        draw.text((tx, ty + 6), f"{tick:g}", fill="black", anchor="mt")
        lx, ly = at(-SPIRAL_VIEW, tick)
        draw.line([lx - 4, ly, lx, ly], fill="black")
        draw.text((lx - 6, ly), f"{tick:g}", fill="black", anchor="rm")
    draw.rectangle([origin[0] - 1, origin[1] - 1, origin[0] + SPIRAL_PIXELS, origin[1] + SPIRAL_PIXELS], outline="black")
    draw.text((origin[0] + SPIRAL_PIXELS, origin[1] + SPIRAL_PIXELS + 14), "x", fill="black", anchor="rm")
    draw.text((4, origin[1]), "y", fill="black", anchor="lt")
    for cls, colour in enumerate(SPIRAL_COLORS):
        x0 = left + cls * 80
        draw.rectangle([x0, 5, x0 + 12, 17], fill=tuple(int(v) for v in colour))
        draw.text((x0 + 16, 11), f"class {cls}", fill="black", anchor="lm")
    draw.rectangle([left + 240, 7, left + 248, 15], fill="black")
    draw.text((left + 252, 11), "point", fill="black", anchor="lm")
    if point is not None:
        cx, cy = at(*point)
        draw.rectangle([cx - 4, cy - 4, cx + 4, cy + 4], fill="black")
    return picture


DIABETES_EXAMPLE = {"npreg": 2, "glu": 120, "bp": 70, "skin": 29, "bmi": 32.8, "ped": 0.44, "age": 28}  # a typical Pima.tr row


def logistic_frame(logistic, x: float):
    """The probability curve over [0, 10] and a vertical mark from 0 up to the curve at x."""
    xs = np.linspace(0, 10, 101, dtype=np.float32)
    p = logistic.predict([x])["probability"]
    return pd_frame({"x": [*xs.tolist(), x, x], "P(y=1)": [*logistic.run(xs[:, None])[:, 0].tolist(), 0.0, p],
                     "series": ["P(y=1)"] * len(xs) + [f"x = {x:g}"] * 2})


def lessons_tab(zoo: ModelZoo):
    ids = set(zoo.ids("tabular"))
    if not ids:
        gr.Markdown(f"No lesson models in `{zoo.models_dir}`: run `make models`.")
        return

    if "linear-regression" in ids:
        with gr.Tab("Linear regression"):
            gr.Markdown("nn.Linear trained on x = 1, 2, 3 → y = 2, 4, 6 (the course's first model). "
                        "Type x and press Enter.")
            linear = guarded(lambda v: round(zoo.get("linear-regression").predict([v])["value"], 3))
            x = gr.Number(value=4, label="x", elem_id="linear-x")
            y = gr.Number(linear(4), label="predicted y", interactive=False, elem_id="linear-y")
            gr.Button("predict").click(linear, [x], [y], api_name="predict_linear")
            x.submit(linear, [x], [y], api_name=False)

    if "logistic-regression" in ids:
        with gr.Tab("Logistic regression"):
            logistic = zoo.get("logistic-regression")
            crossing = logistic.meta.lesson_result("crossing")
            gr.Markdown(f"Trained with BCE on x = 1, 2, 3 → 0, 0, 1; P(y=1) crosses 0.5 at x = {crossing:.2f}.")

            @guarded
            def logistic_answer(v):
                return (logistic_frame(logistic, float(v)),
                        f"P(y=1 | x={v:g}) = **{logistic.predict([v])['probability']:.3f}**")

            frame, text = logistic_answer(2.5)
            plot = gr.LinePlot(frame, x="x", y="P(y=1)", color="series", label="probability curve over [0, 10]",
                               elem_id="logistic-plot")
            x = gr.Slider(0, 10, value=2.5, step=0.05, label="x")
            out = gr.Markdown(text, elem_id="logistic-out")
            x.change(logistic_answer, [x], [plot, out], api_name="predict_logistic")

    if "diabetes-mlp" in ids:
        with gr.Tab("Diabetes"):
            diabetes = zoo.get("diabetes-mlp")
            result = diabetes.meta.lesson_result
            gr.Markdown(f"The course's MLP on the Pima data (MASS Pima.tr → Pima.te): test accuracy "
                        f"{result('test_accuracy'):.1%}; logistic regression {result('logistic_test_accuracy'):.1%}; "
                        f"always-'No' {result('majority_test_accuracy'):.1%}. The form starts as a typical patient.")
            # no minimum/maximum on the fields: the model's own check names the field that is out of range
            fields = [gr.Number(DIABETES_EXAMPLE.get(f.name, (f.min + f.max) / 2),
                                label=f"{f.name}: {f.help}", info=f"{f.min:g} – {f.max:g}")
                      for f in diabetes.features]

            def diabetes_form(*values):
                try:
                    pred = diabetes.predict(list(values))
                except InputError as e:
                    return f"**Check the form:** {refused(e)}"
                return f"P(diabetes) = **{pred['probability']:.1%}** → {pred['label']}"

            out = gr.Markdown(diabetes_form(*(f.value for f in fields)), elem_id="diabetes-out")
            gr.Button("predict", variant="primary").click(diabetes_form, fields, [out], api_name="predict_diabetes")

    spirals = sorted(i for i in ids if i.startswith("spiral-"))
    if spirals:
        with gr.Tab("Spiral"):
            gr.Markdown("Three spiral arms (the dots: the training points): a linear classifier can't separate them, "
                        "a 2-layer ReLU net can. The colours are the class each model gives every point; type a "
                        "point or click the map.")

            @guarded
            def classify_point(model_id, x, y):
                model = zoo.get(model_id)
                pred = model.predict([x, y])
                return (f"({float(x):g}, {float(y):g}) → class **{pred['label']}** "
                        f"({pred['probabilities'][pred['label']]:.1%}) by `{model_id}`",
                        spiral_boundary(model, (float(x), float(y))))

            text, picture = classify_point(spirals[-1], 0.5, 0.2)
            choice = gr.Dropdown(spirals, value=spirals[-1], label="model")
            px, py = gr.Number(value=0.5, label="x"), gr.Number(value=0.2, label="y")
            out = gr.Markdown(text, elem_id="spiral-out")
            board = gr.Image(picture, interactive=False, label="decision regions (x, y in [-1.2, 1.2])",
                             elem_id="spiral-board", buttons=[])

            def clicked(model_id, event: gr.SelectData):
                point = spiral_point(*event.index)
                if point is None:  # the axes or the legend
                    return gr.skip(), gr.skip(), gr.skip(), gr.skip()
                x, y = round(point[0], 3), round(point[1], 3)
                return x, y, *classify_point(model_id, x, y)

            gr.Button("classify").click(classify_point, [choice, px, py], [out, board], api_name="predict_spiral")
            choice.change(classify_point, [choice, px, py], [out, board], api_name=False)
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
        # the figure recorded while the shipped file was trained: the one the README's model table quotes
        ("seconds per epoch", f"{train.seconds_per_epoch:.1f} on {train.device} (recorded while training)"),
        ("recipe", recipe or "see the lesson"),
        ("parity with PyTorch", f"max abs diff {max(measured.parity.max_abs_diff.values()):.1e}, argmax agreement "
                                f"{measured.parity.argmax_agreement:.2%}"),
        ("checkpoint sha256", f"`{meta.provenance.checkpoint_sha256[:16]}…`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in filter(None, rows))
    return f"### {meta.id}\n| measure | value |\n|---|---|\n{table}"


def training_tab(zoo: ModelZoo):
    ids = [i for i in zoo.ids() if zoo.get(i).meta.train and zoo.get(i).meta.train.history]
    if not ids:
        gr.Markdown(f"No training histories in `{zoo.models_dir}`: run `make models`.")
        return

    def curves(model_id: str):
        meta = zoo.get(model_id).meta
        return (*curve_frames(list(meta.train.history)), training_summary(meta))

    @guarded
    def show(model_id: str):
        """-> loss plot, accuracy plot (hidden for models that log no accuracy: hello-*), table."""
        loss, accuracy, summary = curves(model_id)
        return loss, gr.LinePlot(accuracy, visible=not accuracy.empty), summary

    first = "mnist-cnn" if "mnist-cnn" in ids else ids[0]
    loss, accuracy, summary = curves(first)
    choice = gr.Dropdown(ids, value=first, label="model")
    with gr.Row():
        loss_plot = gr.LinePlot(loss, x="epoch", y="loss", color="split", label="loss per epoch")
        accuracy_plot = gr.LinePlot(accuracy, x="epoch", y="accuracy", color="split", label="accuracy per epoch",
                                    visible=not accuracy.empty, elem_id="training-accuracy")
    table = gr.Markdown(summary, elem_id="training-table")
    choice.change(show, [choice], [loss_plot, accuracy_plot, table], api_name="training_curves")


def pd_frame(columns: dict):
    import pandas as pd  # a Gradio dependency

    return pd.DataFrame(columns)


def build_ui(zoo: ModelZoo) -> gr.Blocks:
    # uploads and outputs in Gradio's cache are deleted after an hour, checked hourly
    with gr.Blocks(title="tinyzoo", delete_cache=(3600, 3600)) as ui:
        gr.Markdown("# tinyzoo\nA deep-learning course's models, trained in PyTorch and served here by ONNX Runtime. "
                    "New here? The [README](/readme) explains each model and the HTTP API.",
                    elem_classes=["intro"], elem_id="header")
        with gr.Tab("Digits"):
            image_tab(zoo, "mnist", "a handwritten digit", sketch=True, empty_message="draw a digit",
                      intro="Draw a digit (0–9) on the pad: the model answers as you draw. Beside the answer: your "
                            "drawing as the model gets it, cropped and scaled to 28×28 like its MNIST training digits.")
        with gr.Tab("Fashion"):
            image_tab(zoo, "fashion", "a clothing picture", sketch=False, empty_message="upload a clothing picture",
                      intro="Upload a photo of one piece of clothing on a plain background, or click an example: "
                            "the model names which of the 10 Fashion-MNIST classes it looks like, from a 28×28 grey "
                            "copy (shown beside the answer).")
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
