"""The Digits and Fashion tabs: the drawing pad, uploads, the examples gallery and the answer."""
import base64
import binascii

import gradio as gr
from PIL import Image, ImageDraw

from demo.contract import Example, read_examples
from demo.imaging.prepare import EmptyImageError, ImageInputError, open_image
from demo.imaging.shift import shift_and_scale
from demo.inference.pipeline import Prediction
from demo.inference.runtime import InputError, ModelError, ModelZoo
from demo.settings import TOP_K
from demo.web.refusals import refused
from demo.web.ui.common import STATIC, ClampingSlider, Click
from demo.web.ui.inside import UNCHANGED, inside_panel, wire_inside
from demo.web.uploads import read_upload


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


DRAWING, UPLOADED = "your drawing", "the uploaded picture"  # what the answer line says it is for


def prediction_outputs(pred: Prediction, input_name: str):
    """-> (label dict for gr.Label, enlarged seen image, info markdown naming the input answered)."""
    probs = {p["label"]: p["confidence"] for p in pred.top_k}
    seen = Image.fromarray(pred.seen)  # 28x28; the page scales it up with hard pixel edges (CSS)
    verdict = f"unsure: maybe **{pred.label}**" if pred.unsure else f"**{pred.label}**"
    info = (f"{verdict} ({pred.confidence:.1%}) for {input_name} · model `{pred.model}` · "
            f"provider `{pred.provider}` · {pred.latency_ms:.1f} ms")
    return probs, seen, info


def make_classifier(zoo: ModelZoo, empty_message: str):
    """One handler shape for every image input: (model id, image, what the answer line calls it) ->
    (label, seen, info, ink box or None)."""

    def classify(model_id: str, image, input_name: str):
        if image is None:
            return {}, None, empty_message, None
        try:
            pred = zoo.get(model_id).classify(image, TOP_K)
        except EmptyImageError as e:  # a blank or evenly shaded upload: the analysis says what it found
            return {}, None, f"**Nothing to classify:** {refused(e)}", None
        except ImageInputError as e:  # the user's file: say what's wrong where the answer would be
            return {}, None, f"**Can't use this image:** {refused(e)}", None
        except (InputError, ModelError) as e:
            raise gr.Error(refused(e), print_exception=False) from None
        return (*prediction_outputs(pred, input_name), pred.ink_box)

    return classify


def example_images(zoo: ModelZoo, dataset: str) -> list[Example]:
    """The committed test-set pictures, one per class (models/examples, `tinyzoo export --examples`):
    the app shows them without the dataset on this machine."""
    try:
        return read_examples(zoo.models_dir, dataset)
    except ValueError as e:  # a broken index costs the examples, not the app
        print(f"tinyzoo: no {dataset} examples: {e}", flush=True)
        return []


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


def examples_gallery(examples: list[Example], dataset: str, class_names: list[str], upload) -> None:
    """The committed test-set pictures, one per class in class order, each captioned with its class;
    a click puts the picture in the upload box."""
    if not examples:
        return
    gallery = gr.Gallery([(str(e.path), name) for e, name in zip(examples, class_names)],
                         label="test-set examples (click one)", columns=10, height="auto", allow_preview=False,
                         buttons=[], elem_id=f"{dataset}-examples",
                         elem_classes=["examples"])

    def pick(event: Click):
        index = event.index
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(examples):
            raise gr.Error(f"no example {str(index)[:20]!r} here: pick one of the {len(examples)} pictures",
                           print_exception=False)
        return str(examples[index].path)

    gallery.select(pick, None, [upload], api_name=False)
    # the example's highlight goes with the picture: an upload removed leaves no example marked as shown
    upload.clear(lambda: gr.Gallery(selected_index=None), None, [gallery], api_name=False, show_progress="hidden")


def model_choices(zoo: ModelZoo, ids: list[str]) -> list[tuple[str, str]]:
    """(label, id) for the model menu: each with its measured test accuracy, the fp32 models first
    and their int8 twins after them."""
    def label(model_id: str) -> str:
        entry = zoo.manifest["models"][model_id]
        accuracy = entry.get("test_accuracy")
        text = model_id if accuracy is None else f"{model_id} · {accuracy:.2%}"
        return text + (" · int8, smaller" if model_id.endswith("-int8") else "")

    ordered = [i for i in ids if not i.endswith("-int8")] + [i for i in ids if i.endswith("-int8")]
    return [(label(i), i) for i in ordered]


def image_tab(zoo: ModelZoo, dataset: str, title: str, sketch: bool, empty_message: str, intro: str):
    ids = [i for i in zoo.ids("image-classification") if zoo.manifest["models"][i]["dataset"] == dataset]
    if not ids:
        gr.Markdown(f"No {dataset} models in `{zoo.models_dir}`: run `make models`.")
        return
    gr.Markdown(intro, elem_classes=["intro"])
    with gr.Row(equal_height=False):  # a phone stacks these: the pad, then the answer, on one screen
        with gr.Column(scale=1, min_width=280):
            pad = drawing_pad(f"{dataset}-sketch") if sketch else gr.State(None)
            upload = None if sketch else image_upload(dataset, f"upload {title}")
        with gr.Column(scale=1, min_width=280):
            with gr.Row(equal_height=True, elem_classes=["answer-row"]):
                label = gr.Label(num_top_classes=TOP_K, label="top 3", elem_id=f"{dataset}-label", min_width=150)
                seen = gr.Image(label="what the model saw", interactive=False, elem_classes=["seen-pixels"],
                                elem_id=f"{dataset}-seen", height=150, min_width=110, buttons=[])
            info = gr.Markdown(elem_id=f"{dataset}-info")
            model = gr.Dropdown(model_choices(zoo, ids), value=next((i for i in ids if i.endswith("-cnn")), ids[0]),
                                label="model (test accuracy)", elem_id=f"{dataset}-model")
    inside = inside_panel(dataset)  # "Look inside", under the answer
    if sketch:
        upload = image_upload(dataset, f"or upload {title}")
    found = gr.Image(label="where the ink was found" if sketch else "where the garment was found",
                     interactive=False, height=240, visible=False, elem_id=f"{dataset}-found")  # photos
    examples = example_images(zoo, dataset)
    examples_gallery(examples, dataset, zoo.get(ids[0]).labels, upload)
    if sketch:
        shift_and_scale_panel(zoo, ids, pad)
    uploaded = wire_image_tab(make_classifier(zoo, empty_message), dataset, sketch,
                              dict(model=model, pad=pad, upload=upload, found=found,
                                   example_names=example_names(examples)),
                              [label, seen, info])
    # whole drawings (pen-up, Clear): the panel is too heavy to follow every stroke. An upload removed
    # hands the panel back to the drawing, as the answer above it goes back to it
    feeds = [(pad.release, pad, pad_image), (pad.clear, pad, pad_image),
             (upload.clear, pad, pad_image)] if sketch else []
    after_upload = (lambda picture: UNCHANGED if picture is None else picture) if sketch else (lambda picture: picture)
    wire_inside(zoo, dataset, model, inside, feeds + [(uploaded.then, upload, after_upload)])


def wire_image_tab(classify, dataset: str, sketch: bool, parts: dict, outputs: list):
    """The events: a drawing answers for the drawing (and takes the photo and its box away), an upload
    for the upload, a new model for whichever the user touched last. -> the upload's answering event:
    the Look inside panel follows it (.then), it does not race it."""
    model, pad, upload, found = parts["model"], parts["pad"], parts["upload"], parts["found"]
    source = gr.State("pad" if sketch else "upload")  # which input the answer shown is for
    ink_box = gr.State(None)  # the upload's, from its classification: the overlay needs no second one

    def show_pad(model_id: str, drawn):
        try:
            drawing = pad_image(drawn)
        except ImageInputError as e:
            return {}, None, f"**Can't use this drawing:** {refused(e)}", "pad"
        return (*classify(model_id, drawing, DRAWING)[:3], "pad")

    def drop_upload(uploaded):
        """Drawing means the drawing is the question now: the photo and its box leave the page."""
        return (gr.skip(), gr.skip()) if uploaded is None else (None, no_overlay())

    def show_upload(model_id: str, uploaded):
        if uploaded is None:  # removed: .clear shows the pad's answer again
            return (gr.skip(),) * (len(outputs) + 1) + (None,)
        *answer, box = classify(model_id, uploaded, parts["example_names"].get(uploaded, UPLOADED))
        return (*answer, "upload", box)

    def rerun(model_id: str, drawing, uploaded, active: str):
        """A new model answers for the input the user touched last."""
        if active == "upload" and uploaded is not None:
            return show_upload(model_id, uploaded)[:-1]
        return show_pad(model_id, drawing)

    uploaded = upload.change(show_upload, [model, upload], [*outputs, source, ink_box],
                             api_name=f"classify_{dataset}_upload")
    uploaded.then(ink_overlay, [upload, ink_box], found, api_name=False, show_progress="hidden")
    upload.clear(show_pad, [model, pad], [*outputs, source], api_name=False)
    model.change(rerun, [model, pad, upload, source], [*outputs, source], api_name=False, show_progress="hidden")
    if sketch:
        pad.input(show_pad, [model, pad], [*outputs, source], api_name=f"classify_{dataset}_sketch",
                  trigger_mode="always_last", show_progress="hidden")
        pad.input(drop_upload, [upload], [upload, found], api_name=False, show_progress="hidden")
    return uploaded


def example_names(examples: list[Example]) -> dict[bytes, str]:
    """What the answer line calls a gallery example's upload (a click puts its file in the upload box),
    by its file's bytes: its number in the test set. Read once, not at every upload."""
    return {example.path.read_bytes(): f"test-set example #{example.test_index}" for example in examples}


def shifted_answers(zoo: ModelZoo, ids: list[str], drawn, dx: int, dy: int, scale: float):
    """The drawing, centred once as the app does, then moved and resized without re-centring ->
    (the moved 28x28, one row per fp32 model: its answer and confidence)."""
    drawing = pad_image(drawn)
    if drawing is None:
        return None, {"headers": ["model", "answer", "confidence"], "data": []}
    centred = zoo.get(ids[0]).prepare(drawing).seen
    moved = shift_and_scale(centred, int(dx), int(dy), float(scale))
    rows = []
    for model_id in [i for i in ids if not i.endswith("-int8")]:  # the int8 twins answer alike
        top = zoo.get(model_id).classify(moved, 1)
        rows.append([model_id, top.label, f"{top.confidence:.0%}"])
    return Image.fromarray(moved), {"headers": ["model", "answer", "confidence"], "data": rows}


def shift_and_scale_panel(zoo: ModelZoo, ids: list[str], pad) -> None:
    """Why CNNs: move and resize the drawing (no re-centring) and see every model's answer side by side."""
    with gr.Accordion("shift and scale: why CNNs", open=False, elem_id="mnist-shift"):
        gr.Markdown("The pad centres every drawing, as MNIST's digits were. Move or resize yours here, with "
                    "no re-centring, and compare: the dense models (softmax, MLP) lose the digit within a few "
                    "pixels; the convolutional ones keep it longer (`python -m bench.shift` has the table).")
        with gr.Row():
            dx = ClampingSlider(-8, 8, value=0, step=1, label="move right (px of 28)", elem_id="shift-dx",
                                min_width=120)
            dy = ClampingSlider(-8, 8, value=0, step=1, label="move down (px)", elem_id="shift-dy", min_width=120)
            scale = ClampingSlider(0.5, 1.5, value=1.0, step=0.05, label="scale", elem_id="shift-scale", min_width=120)
        with gr.Row():
            moved = gr.Image(label="what every model gets", interactive=False, height=150, buttons=[],
                             elem_classes=["seen-pixels"], elem_id="shift-seen", min_width=110)
            # min_width: on a phone the table wraps below the picture, whole, instead of squeezed beside it
            table = gr.Dataframe(headers=["model", "answer", "confidence"], interactive=False, elem_id="shift-table",
                                 min_width=300, scale=3)

    def answer(drawn, x, y, s):
        try:
            return shifted_answers(zoo, ids, drawn, x, y, s)
        except ImageInputError as e:
            refused(e)
            return None, {"headers": ["model", "answer", "confidence"], "data": []}

    for control in (dx, dy, scale):
        control.change(answer, [pad, dx, dy, scale], [moved, table], api_name=False, show_progress="hidden",
                       trigger_mode="always_last")
    # whole strokes (pen-up, Clear), as Look inside: every model's answer at each point of a stroke
    # cost a queue job beside the answer's own, for a panel mostly closed
    for drawn in (pad.release, pad.clear):
        drawn(answer, [pad, dx, dy, scale], [moved, table], api_name=False, show_progress="hidden",
              trigger_mode="always_last")
