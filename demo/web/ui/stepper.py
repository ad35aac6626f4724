"""Gradient descent step by step for the toy lessons (linear and logistic regression): step, play,
reset, a learning rate to try; the loss over w with the path taken, the fit on the data, and the
course's printout. The arithmetic is demo.inference.lessons (numpy, equal to PyTorch's steps)."""
import gradio as gr
import numpy as np
from PIL import Image

from demo.inference import lessons as gd
from demo.web.ui.charts import Axes, Series, line_chart
from demo.web.ui.common import ClampingSlider

PRINTOUT_ROWS = 12
BLUE, ORANGE, RED, GREY = (31, 119, 180), (255, 127, 14), (214, 39, 40), (150, 150, 150)
LR_RANGE = {"linear": (0.001, 0.25), "logistic": (0.01, 5.0)}  # linear diverges above 2/11 (its curvature)
BLOWN_UP = 1e3  # a loss this many times its start: the run has left the landscape the chart shows


def loss_chart(lesson: gd.GDLesson, path) -> Image.Image:
    """The loss over w with b held at its current value (the course's grid search), and the (w, loss)
    of every step taken so far, the latest one larger; once the run has blown up, its growth."""
    _, w_now, b_now, loss_now, _ = path[-1]
    if not np.isfinite(loss_now) or loss_now > BLOWN_UP * max(path[0][3], 1e-12):
        return growth_chart(lesson, path)
    ws_taken = [row[1] for row in path if np.isfinite(row[1])]
    low, high = (-1.0, 5.0) if lesson.kind == "linear" else (-1.0, 8.0)
    low, high = max(min(low, *ws_taken) - 0.5, -60.0), min(max(high, *ws_taken) + 0.5, 60.0)
    grid = np.linspace(low, high, 161)
    curve = gd.loss_over_w(lesson, grid, b_now)
    finite = [v for v in (*curve, *(row[3] for row in path)) if np.isfinite(v)]
    top = min(max(finite), 3 * float(np.percentile(curve[np.isfinite(curve)], 60)) + 1e-3)
    series = [Series(tuple(grid), tuple(curve), BLUE, f"loss over w (b = {b_now:.3g})"),
              Series(tuple(r[1] for r in path[-200:]), tuple(r[3] for r in path[-200:]), ORANGE, "steps", "path", 1),
              Series((w_now,), (loss_now,), RED, "now", "points")]
    name = "MSE" if lesson.kind == "linear" else "BCE"
    return line_chart(series, Axes((low, high), (0.0, top), "w", name))


def growth_chart(lesson: gd.GDLesson, path) -> Image.Image:
    """A blown-up run's loss per epoch on a log scale, where each step's overshoot multiplying the
    loss shows as a straight climb. Over w, the curve would be drawn at a b of 1e18 on a 1e36 scale."""
    rows = [(float(r[0]), float(np.log10(r[3]))) for r in path if np.isfinite(r[3]) and r[3] > 0]
    epochs, logs = zip(*rows)
    name = "MSE" if lesson.kind == "linear" else "BCE"
    series = [Series(epochs, logs, RED, f"log10 {name} per epoch: the run blew up", "path", 1)]
    return line_chart(series, Axes((0.0, max(epochs[-1], 1.0)), (min(logs), max(max(logs), min(logs) + 1)),
                                   "epoch", f"log10 {name}"))


def fit_chart(lesson: gd.GDLesson, w: float, b: float) -> Image.Image:
    """The training points and the model's line (or probability curve) at the current w, b."""
    xs = np.linspace(0.0, 4.0 if lesson.kind == "linear" else 5.0, 121, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        ys = gd.prediction(lesson.kind, w, b, xs)
    y_axis = (0.0, 8.0) if lesson.kind == "linear" else (0.0, 1.0)
    series = [Series(tuple(xs.tolist()), tuple(ys.tolist()), BLUE, model_now_label(ys, y_axis)),
              Series(tuple(lesson.x.tolist()), tuple(lesson.y.tolist()), (0, 0, 0), "training points", "points")]
    return line_chart(series, Axes((float(xs[0]), float(xs[-1])), y_axis, "x", "y" if lesson.kind == "linear" else
                                   "P(y=1)"))


def model_now_label(ys: np.ndarray, y_axis: tuple[float, float]) -> str:
    """The legend's name for the model's line, which says so when a diverging run has taken it off the axes."""
    on_chart = np.isfinite(ys) & (ys >= y_axis[0]) & (ys <= y_axis[1])
    return "model now" if on_chart.any() else "model now: off this chart"


def printout(lesson: gd.GDLesson, path, lr: float) -> str:
    """The course's printout, the latest rows; at the shipped rate, PyTorch's recorded row beside it."""
    rows = [f"epoch {e:5d}: w = {w: .6f}  b = {b: .6f}  loss = {loss:.6g}" for e, w, b, loss, _ in path[-PRINTOUT_ROWS:]]
    epoch = path[-1][0]
    torch_row = next((r for r in lesson.recorded if r[0] == epoch), None)
    if torch_row and abs(lr - lesson.lr) < 1e-12 and all(r[4] == lesson.lr for r in path[1:]):
        rows.append(f"PyTorch at epoch {epoch}: w = {torch_row[1]: .6f}  b = {torch_row[2]: .6f}  (the shipped run)")
    return "\n".join(rows)


def advance(lesson: gd.GDLesson, path, lr: float, steps: int):
    """`steps` more steps at `lr` from the path's end; a diverged run stays where it blew up."""
    path = list(path)
    for _ in range(int(steps)):
        epoch, w, b, loss = path[-1][:4]
        if not np.isfinite(loss):
            break
        w, b = gd.step(lesson, w, b, lr)
        path.append((epoch + 1, w, b, gd.loss(lesson, w, b), lr))
    return path


def start_path(lesson: gd.GDLesson):
    w, b = lesson.start
    return [(0, w, b, gd.loss(lesson, w, b), lesson.lr)]


def view(lesson: gd.GDLesson, path, lr: float):
    """-> (state, loss chart, fit chart, printout, verdict line)."""
    _, w, b, _, _ = path[-1]
    status = f"**{gd.verdict([r[:4] for r in path])}** · epoch {path[-1][0]} at learning rate {lr:g}"
    return path, loss_chart(lesson, path), fit_chart(lesson, w, b), printout(lesson, path, lr), status


def stepper(lesson: gd.GDLesson, name: str):
    """The stepper's controls and views; `name` prefixes their element ids (linear, logistic)."""
    path = start_path(lesson)
    gr.Markdown(f"### Gradient descent, step by step\nFull-batch SGD on the {len(lesson.x)} training points from "
                f"PyTorch's starting weights. The shipped model used learning rate **{lesson.lr:g}**: at that rate "
                "each step here equals PyTorch's. Try a small rate (slow), a large one (oscillates), larger still "
                "(diverges).", elem_classes=["intro"])
    with gr.Row():
        lr = ClampingSlider(*LR_RANGE[lesson.kind], value=lesson.lr, step=0.001, label="learning rate",
                            elem_id=f"{name}-lr", min_width=220)
        per_click = gr.Radio([1, 10, 100], value=1, label="steps per click", elem_id=f"{name}-steps", min_width=160)
    with gr.Row():
        step_button = gr.Button("step", variant="primary", elem_id=f"{name}-step", min_width=80)
        play_button = gr.Button("play", elem_id=f"{name}-play", min_width=80)
        reset_button = gr.Button("reset", elem_id=f"{name}-reset", min_width=80)
    state, loss_img, fit_img, text, status = view(lesson, path, lesson.lr)
    status_md = gr.Markdown(status, elem_id=f"{name}-status")
    with gr.Row():
        loss_view = gr.Image(loss_img, label="the loss: over w, and the steps taken", interactive=False, buttons=[],
                             elem_id=f"{name}-loss", elem_classes=["chart"], format="png", min_width=280)
        fit_view = gr.Image(fit_img, label="the model on the training points", interactive=False, buttons=[],
                            elem_id=f"{name}-fit", elem_classes=["chart"], format="png", min_width=280)
    table = gr.Code(text, label="printout: epoch, w, b, loss", language=None, interactive=False, wrap_lines=True,
                    elem_id=f"{name}-printout")  # wrapped: a phone's box is narrower than one line
    wire_stepper(lesson, gr.State(state), (lr, per_click), (step_button, play_button, reset_button),
                 [status_md, loss_view, fit_view, table])


def wire_stepper(lesson: gd.GDLesson, state, knobs, buttons, views):
    lr, per_click = knobs
    step_button, play_button, reset_button = buttons
    timer = gr.Timer(0.4, active=False)
    outputs = [state, views[1], views[2], views[3], views[0]]

    def step(path, rate, steps):
        rate = float(rate)
        return view(lesson, advance(lesson, path, rate, steps), rate)

    def tick(path, rate, steps):
        """A step while playing; a run that overflowed or converged stops playing (no step moves it)."""
        shown = step(path, rate, steps)
        if not gd.finished([r[:4] for r in shown[0]]):
            return *shown, gr.skip(), gr.skip()
        return *shown, gr.Timer(active=False), gr.Button("play")

    def reset(rate):
        return view(lesson, start_path(lesson), float(rate))

    def toggle(label):
        playing = label == "play"
        return gr.Timer(active=playing), gr.Button("pause" if playing else "play")

    step_button.click(step, [state, lr, per_click], outputs, api_name=False, show_progress="hidden")
    timer.tick(tick, [state, lr, per_click], [*outputs, timer, play_button], api_name=False, show_progress="hidden")
    play_button.click(toggle, [play_button], [timer, play_button], api_name=False, show_progress="hidden")
    reset_button.click(reset, [lr], outputs, api_name=False, show_progress="hidden")
