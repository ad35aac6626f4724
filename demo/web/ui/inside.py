"""The "Look inside" panel of the Digits and Fashion tabs: what every layer does with the current input,
what the first layer learned, why this answer (occlusion), all models at once, and where it fails.

Pictures are drawn here with numpy and Pillow from demo.inference.inside's numbers (the same ones
/api/inspect sends); `look_inside(...)` builds the panel's components inside the caller's Blocks and
wires them to the tab's inputs.
"""
import base64
import html
import io
import math
from collections.abc import Callable

import gradio as gr
import numpy as np
from PIL import Image

from demo.imaging.prepare import EmptyImageError, ImageInputError
from demo.inference.inside import Inspection, InspectionError, TapValue, all_models, inspector, mistakes
from demo.inference.runtime import InputError, ModelError, ModelZoo
from demo.web.ui.charts import labelled

TILE = 56  # pixels a feature map is enlarged to (nearest neighbour: each value stays a visible square)
GAP = 2
SEEN_SIDE = 224
MLP_UNITS_SHOWN = 16
GREY_BACKGROUND = 96
SCALE_LEGEND = ("Each layer on its own grey scale: black = its lowest value, white = its highest "
                "(the range is written above it).")
TABLE_HEADERS = ["model", "answer", "confidence", "ms", "parameters", "precision"]
CONFUSION_CELL = 26
CONFUSION_MARGIN = 18  # for the class numbers along the top and left edges


def enlarge(pixels: np.ndarray, side: int) -> Image.Image:
    factor = max(1, side // max(pixels.shape[:2]))
    return Image.fromarray(pixels).resize((pixels.shape[1] * factor, pixels.shape[0] * factor), Image.Resampling.NEAREST)


def grey(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values -> uint8 on one scale [low, high] (the layer's): the same value is the same grey in every map."""
    span = high - low if high > low else 1.0
    return np.clip((values - low) / span * 255, 0, 255).astype(np.uint8)


def diverging(values: np.ndarray, limit: float) -> np.ndarray:
    """Signed values -> RGB: red positive, blue negative, white zero, on the scale ±limit."""
    t = np.clip(values / (limit or 1.0), -1, 1)[..., None]
    white = np.ones(values.shape + (3,))
    red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.8])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    return (rgb * 255).astype(np.uint8)


def tiles(pictures: list[Image.Image], columns: int) -> Image.Image:
    """Equal-sized pictures in a grid with thin gaps."""
    w, h = pictures[0].size
    rows = math.ceil(len(pictures) / columns)
    mode = pictures[0].mode
    sheet = Image.new(mode, (columns * (w + GAP) - GAP, rows * (h + GAP) - GAP),
                      GREY_BACKGROUND if mode == "L" else (GREY_BACKGROUND,) * 3)
    for i, picture in enumerate(pictures):
        sheet.paste(picture, ((i % columns) * (w + GAP), (i // columns) * (h + GAP)))
    return sheet


def grid_columns(count: int) -> int:
    """One row up to 12 maps; else rows of 8 to 10 (16 past 64), a width that fills the last row when
    one does: an empty cell would read as a map."""
    if count <= 12:
        return count
    widest = 16 if count > 64 else 10
    return next((columns for columns in range(widest, 7, -1) if count % columns == 0), widest)


def feature_maps(tap: TapValue) -> Image.Image:
    """[C, H, W] -> every channel a small greyscale picture, one scale for the whole layer."""
    low, high = float(tap.values.min()), float(tap.values.max())
    maps = [enlarge(grey(channel, low, high), TILE) for channel in tap.values]
    return tiles(maps, grid_columns(len(maps)))


def strip(tap: TapValue) -> Image.Image:
    """[N] (a dense layer, or a map pooled to 1x1) -> one row of cells on the layer's scale, each framed
    in grey (a white cell, the layer's highest value, would otherwise read as a gap on the page)."""
    values = tap.values.reshape(-1)
    low, high = float(values.min()), float(values.max())
    width = max(3, min(24, 768 // len(values)))
    cells = np.repeat(np.repeat(grey(values, low, high)[None, :], 26, axis=0), width, axis=1)
    cells[:, ::width] = GREY_BACKGROUND
    return Image.fromarray(np.pad(cells, 1, constant_values=GREY_BACKGROUND))


def probability_bars(labels: list[str], probs: np.ndarray) -> Image.Image:
    picture = Image.new("RGB", (320, 20 * len(labels) + 4), "white")
    draw = labelled(picture)
    for i, (label, p) in enumerate(zip(labels, probs)):
        y = 2 + 20 * i
        draw.text((4, y + 3), label[:12], fill="black")
        draw.rectangle((100, y + 2, 100 + int(170 * p), y + 16), fill=(230, 120, 20) if p == probs.max() else "grey")
        draw.text((276, y + 3), f"{p:.0%}", fill="black")
    return picture


def tap_caption(tap: TapValue) -> str:
    shape = "×".join(map(str, tap.values.shape))
    return f"{tap.tap.name} ({tap.tap.kind}) · {shape} · range {tap.values.min():.3g} … {tap.values.max():.3g}"


def layer_pictures(inspection: Inspection, labels: list[str]) -> list[tuple[Image.Image, str]]:
    """The inside view, in forward order: input, every tap, softmax."""
    pictures = [(enlarge(inspection.seen, SEEN_SIDE), "input · what the model saw · 28×28 · pixels 0 … 255")]
    for tap in inspection.taps:
        spatial = tap.values.ndim == 3 and tap.values.shape[1] > 1
        pictures.append((feature_maps(tap) if spatial else strip(tap), tap_caption(tap)))
    pictures.append((probability_bars(labels, inspection.probabilities),
                     f"softmax · {len(labels)} probabilities (calibrated) · sum 1"))
    return pictures


def data_url(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def layers_html(pictures: list[tuple[Image.Image, str]]) -> str:
    """The layers as figures with their captions as text (readable, searchable, sized to the screen):
    a gallery would crop each into a square thumbnail."""
    figures = "".join(
        f'<figure class="inside-layer" style="margin:0 0 14px"><figcaption style="font-size:0.9em;margin:0 0 4px">'
        f'{html.escape(caption)}</figcaption><img src="{data_url(picture)}" alt="{html.escape(caption.split(" ")[0])}" '
        f'style="display:block;max-width:100%;height:auto;image-rendering:pixelated"></figure>'
        for picture, caption in pictures)
    return f'<div class="inside-layers"><p style="margin:0 0 8px">{SCALE_LEGEND}</p>{figures}</div>'


def weight_pictures(weights: np.ndarray | None, model_id: str) -> tuple[Image.Image | None, str]:
    """First-layer weights as pictures: conv kernels enlarged, or 28x28 templates of a dense layer."""
    if weights is None:
        return None, f"{model_id}: its first layer's weights are int8 in this file; see its fp32 model"
    limit = float(np.abs(weights).max())
    if weights.ndim == 4:  # [out, in, k, k]: the first input channel's kernel of each filter
        kernels = [enlarge(diverging(k[0], limit), TILE) for k in weights]
        return tiles(kernels, min(8, math.ceil(math.sqrt(2 * len(kernels))))), (
            f"first conv layer: {len(kernels)} kernels {weights.shape[2]}×{weights.shape[3]} (red +, blue −, ±{limit:.2g})")
    units = weights[:MLP_UNITS_SHOWN] if len(weights) > 10 else weights
    templates = [enlarge(diverging(u.reshape(28, 28), limit), 84) for u in units]
    what = "each class's 28×28 template" if len(weights) == 10 else f"{len(units)} of {len(weights)} first-layer units"
    return tiles(templates, min(len(templates), 8 if len(templates) > 10 else 5)), (
        f"first layer: {what}, as 28×28 weights (red +, blue −, ±{limit:.2g})")


def occlusion_overlay(seen: np.ndarray, occlusion: np.ndarray) -> Image.Image:
    """The seen picture in grey with the occlusion map over it: red where hiding the pixel lowers the
    answer's probability (evidence for it), blue where it raises it."""
    base = np.repeat(seen[..., None].astype(np.float64), 3, axis=2) / 255 * 0.6
    limit = float(np.abs(occlusion).max()) or 1.0
    t = np.clip(occlusion / limit, -1, 1)[..., None]
    red, blue = np.array([1.0, 0.15, 0.1]), np.array([0.1, 0.35, 1.0])
    colour = np.where(t >= 0, red, blue)
    rgb = base * (1 - np.abs(t) * 0.75) + colour * np.abs(t) * 0.75
    return enlarge((np.clip(rgb, 0, 1) * 255).astype(np.uint8), SEEN_SIDE)


def all_models_table(zoo: ModelZoo, image, dataset: str) -> str:
    """The same input through every model of the dataset, as a plain HTML table: a static view, lighter
    for the browser to redraw after every drawing than an interactive Dataframe, and narrow enough for a phone."""
    rows = [[r["model"], r["label"], f"{r['confidence']:.1%}", f"{r['latency_ms']:.1f}", f"{r['params']:,}",
             r["precision"]] for r in all_models(zoo, image, dataset)]
    head = "".join(f"<th>{name}</th>" for name in TABLE_HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return (f'<div class="inside-table"><table><caption>the same input through every {html.escape(dataset)} model'
            f'</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')


def png_bytes(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def confusion_picture(report: dict) -> Image.Image:
    """Rows = true class, columns = answer, numbered along both edges, on a grid (white cells are never
    confused with the page); the diagonal (right) in grey, mistakes in red by count."""
    matrix = np.asarray(report["confusion"], np.float64)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    rgb = np.full(matrix.shape + (3,), 255, np.uint8)
    shade = (off / (off.max() or 1.0) * 230).astype(np.uint8)
    rgb[..., 1] -= shade
    rgb[..., 2] -= shade
    classes = len(matrix)
    rgb[np.eye(classes, dtype=bool)] = 215
    side = CONFUSION_CELL * classes
    picture = Image.new("RGB", (CONFUSION_MARGIN + side + 1, CONFUSION_MARGIN + side + 1), "white")
    picture.paste(enlarge(rgb, side), (CONFUSION_MARGIN, CONFUSION_MARGIN))
    draw = labelled(picture)
    for i in range(classes + 1):
        edge = CONFUSION_MARGIN + i * CONFUSION_CELL
        draw.line((edge, CONFUSION_MARGIN, edge, CONFUSION_MARGIN + side), fill=(160, 160, 160))
        draw.line((CONFUSION_MARGIN, edge, CONFUSION_MARGIN + side, edge), fill=(160, 160, 160))
    for i in range(classes):
        middle = CONFUSION_MARGIN + i * CONFUSION_CELL + CONFUSION_CELL // 2
        draw.text((middle, CONFUSION_MARGIN // 2), str(i), fill="black", anchor="mm")
        draw.text((CONFUSION_MARGIN // 2, middle), str(i), fill="black", anchor="mm")
    return picture


def mistakes_view(zoo: ModelZoo, model_id: str):
    """-> (each mistake's 28x28 pixels, gallery items, the confusion picture, its caption)."""
    try:
        report = mistakes(zoo, model_id)
    except (InspectionError, ModelError) as e:
        return [], [], None, f"{e}"
    items = [(enlarge(np.asarray(m["pixels"], np.uint8), 84),
              f"#{m['index']}: {m['true_label']} → {m['predicted_label']} ({m['confidence']:.0%})")
             for m in report["mistakes"]]
    wrong = report["test_examples"] - int(np.trace(np.asarray(report["confusion"])))
    caption = (f"**{model_id}** gets {wrong} of {report['test_examples']:,} test images wrong "
               f"(accuracy {report['accuracy']:.2%}). Confusion matrix: rows = true class, columns = answer, "
               f"red = how often. Below: its {len(items)} most confident mistakes (click one to look inside).")
    if any(name != str(i) for i, name in enumerate(report["labels"])):  # not digits: say which number is what
        caption += " Classes: " + ", ".join(f"{i} {name}" for i, name in enumerate(report["labels"])) + "."
    return [m["pixels"] for m in report["mistakes"]], items, confusion_picture(report), caption


def learned_outputs(zoo: ModelZoo, model_id: str):
    """model -> (its first layer's weights as a picture, caption): they change with the model, never the input."""
    try:
        return weight_pictures(inspector(zoo, model_id).first_layer_weights(), model_id)
    except (InspectionError, ModelError) as e:
        return None, f"{e}"


def inside_outputs(zoo: ModelZoo, model_id: str, image, dataset: str):
    """(model, image) -> (layers HTML, occlusion, table, message)."""
    if image is None:
        return "", None, "", "Draw or upload something: its journey through the model shows here."
    try:
        looking = inspector(zoo, model_id)
        inspection = looking.inspect(image)
    except EmptyImageError:
        return "", None, "", "This picture is blank: nothing to look inside."
    except (ImageInputError, InputError, InspectionError) as e:
        return "", None, "", f"**Can't look inside:** {e}"
    pred = inspection.prediction
    message = (f"**{model_id}** says **{pred.label}** ({pred.confidence:.0%}). Occlusion: a "
               f"{looking.patch}×{looking.patch} patch slid by {looking.stride} px; red = hiding it lowers "
               f"P({pred.label}), blue = raises it.")
    return (layers_html(layer_pictures(inspection, looking.model.labels)),
            occlusion_overlay(inspection.seen, inspection.occlusion), all_models_table(zoo, image, dataset), message)


def panel_components(dataset: str) -> dict:
    """The panel's parts, created in the caller's layout (inside its Accordion)."""
    parts = {"message": gr.Markdown(elem_id=f"{dataset}-inside-message"),
             "layers": gr.HTML(label="every layer's output, in order (one grey scale per layer)",
                               elem_id=f"{dataset}-inside-layers")}
    with gr.Row(equal_height=False):
        parts["weights"] = gr.Image(label="what the first layer learned", interactive=False, buttons=[],
                                    elem_id=f"{dataset}-inside-weights", min_width=240, elem_classes=["inside-picture"])
        parts["occlusion"] = gr.Image(label="why this answer (occlusion)", interactive=False, buttons=[],
                                      elem_id=f"{dataset}-inside-occlusion", min_width=240,
                                      elem_classes=["inside-picture"])
    parts["weights_caption"] = gr.Markdown(elem_id=f"{dataset}-inside-weights-caption")
    parts["table"] = gr.HTML(elem_id=f"{dataset}-inside-table")
    parts["mistakes_caption"] = gr.Markdown(elem_id=f"{dataset}-inside-mistakes-caption")
    parts["confusion"] = gr.Image(label="confusion matrix (test set)", interactive=False, buttons=[], height=320,
                                  elem_id=f"{dataset}-inside-confusion", elem_classes=["inside-picture"])
    parts["mistakes"] = gr.Gallery(label="most confident mistakes (click one)", columns=8, height="auto",
                                   allow_preview=False, buttons=[], elem_id=f"{dataset}-inside-mistakes",
                                   elem_classes=["mistakes"])
    return parts


def inside_panel(dataset: str) -> tuple[gr.Accordion, dict]:
    """The "Look inside" accordion, closed, where the caller's layout puts it; wire it with wire_inside."""
    with gr.Accordion("Look inside: every layer, why this answer, all models, mistakes", open=False,
                      elem_id=f"{dataset}-inside") as accordion:
        parts = panel_components(dataset)
    return accordion, parts


UNCHANGED = object()  # a feed's value that leaves the panel as it is (another feed answers for it)


def wire_inside(zoo: ModelZoo, dataset: str, model: gr.Dropdown, panel: tuple[gr.Accordion, dict],
                feeds: list[tuple[Callable, gr.components.Component, Callable]]) -> None:
    """Computed only while open. feeds: (event listener, component, value -> image or None) for each
    input of the tab; the latest input is what the panel shows. What depends on the model alone (the
    weights, the mistakes) is sent when the panel opens or the model changes, never with each input:
    every picture sent costs the browser a fetch and a redraw."""
    accordion, parts = panel
    is_open, latest, shown = gr.State(False), gr.State(None), gr.State([])
    view = [parts[k] for k in ("layers", "occlusion", "table", "message")]
    of_model = [shown] + [parts[k] for k in ("mistakes", "confusion", "mistakes_caption", "weights", "weights_caption")]

    def show(opened: bool, model_id: str, image):
        return inside_outputs(zoo, model_id, image, dataset) if opened else (gr.skip(),) * len(view)

    def fed(to_image: Callable):
        def take(opened: bool, model_id: str, value):
            try:
                image = to_image(value)
            except ImageInputError as e:
                return (None, *[gr.skip()] * (len(view) - 1), f"**Can't look inside:** {e}")
            if image is UNCHANGED:
                return (gr.skip(),) * (1 + len(view))
            return (image, *show(opened, model_id, image))
        return take

    def model_parts(opened: bool, model_id: str):
        if not opened:
            return (gr.skip(),) * len(of_model)
        return (*mistakes_view(zoo, model_id), *learned_outputs(zoo, model_id))

    def open_panel(model_id: str, image):
        return (True, *show(True, model_id, image), *model_parts(True, model_id))

    def pick(opened: bool, model_id: str, pictures: list, event: gr.SelectData):
        """A mistake clicked: the panel looks inside it, and says which test image it is (the answer
        above the panel stays the tab's own picture's)."""
        image = png_bytes(np.asarray(pictures[event.index]))
        *views, message = show(True, model_id, image)
        caption = event.value.get("caption") if isinstance(event.value, dict) else None
        return (image, *views, f"The mistake clicked, test image {caption}. {message}" if caption else message)

    for listener, component, to_image in feeds:
        listener(fed(to_image), [is_open, model, component], [latest, *view], api_name=False,
                 trigger_mode="always_last", show_progress="hidden")
    model.change(show, [is_open, model, latest], view, api_name=False, show_progress="hidden")
    model.change(model_parts, [is_open, model], of_model, api_name=False, show_progress="hidden")
    accordion.expand(open_panel, [model, latest], [is_open, *view, *of_model], api_name=False)
    accordion.collapse(lambda: False, None, is_open, api_name=False)
    # the answer lands at the panel's top, a screen or more above the gallery clicked: it is brought into view
    parts["mistakes"].select(pick, [is_open, model, shown], [latest, *view], api_name=False).then(
        None, js=f"() => document.getElementById('{dataset}-inside-message')?.scrollIntoView({{block: 'start'}})")
