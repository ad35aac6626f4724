"""The Lessons tab: linear and logistic regression (each with a gradient-descent stepper), the diabetes
MLP, the spiral classifiers."""
import gradio as gr
import numpy as np

from demo.inference import lessons as gd
from demo.inference.runtime import InputError, ModelZoo
from demo.web.ui.charts import Axes, Series, line_chart
from demo.web.refusals import refused
from demo.web.ui.common import ClampingSlider, Click, guarded
from demo.web.ui.spiral_chart import SPIRAL_VIEW, spiral_boundary, spiral_point
from demo.web.ui.stepper import BLUE, RED, stepper


DIABETES_EXAMPLE = {"npreg": 2, "glu": 120, "bp": 70, "skin": 29, "bmi": 32.8, "ped": 0.44, "age": 28}  # a typical Pima.tr row


def logistic_chart(logistic, x: float):
    """The probability curve over [0, 10], the three training points, and the chosen x as a cross:
    a full-height line at x and a line across at P(y=1 | x), visible however small P is."""
    xs = np.linspace(0, 10, 201, dtype=np.float32)
    p = logistic.predict([x])["probability"]
    lesson = gd.GDLesson.from_results(logistic.meta.measurements.results)
    series = [Series(tuple(xs.tolist()), tuple(logistic.run(xs[:, None])[:, 0].tolist()), BLUE, "P(y=1 | x)"),
              Series(tuple(lesson.x.tolist()), tuple(lesson.y.tolist()), (0, 0, 0), "training points", "points"),
              Series((x, x), (0.0, 1.0), RED, f"x = {x:g}", width=2),
              Series((0.0, x), (p, p), RED, width=1),
              Series((x,), (p,), RED, style="points")]
    return line_chart(series, Axes((0.0, 10.0), (0.0, 1.0), "x", "P(y=1)"), size=(460, 300))


def lessons_tab(zoo: ModelZoo):
    ids = set(zoo.ids("tabular"))
    if not ids:
        gr.Markdown(f"No lesson models in `{zoo.models_dir}`: run `make models`.")
        return
    lessons = (("linear-regression", "Linear", linear_lesson),  # short names: all four fit a phone's width
               ("logistic-regression", "Logistic", logistic_lesson),
               ("diabetes-mlp", "Diabetes", diabetes_lesson))
    for model_id, title, lesson in lessons:
        if model_id in ids:
            with gr.Tab(title):
                lesson(zoo)
    spirals = sorted(i for i in ids if i.startswith("spiral-"))
    if spirals:
        with gr.Tab("Spiral"):
            spiral_lesson(zoo, spirals)


def linear_lesson(zoo: ModelZoo):
    model = zoo.get("linear-regression")
    gr.Markdown("Linear regression: nn.Linear trained on x = 1, 2, 3 → y = 2, 4, 6 (the course's first model). "
                "Type x and press Enter.", elem_classes=["intro"])

    def linear(v):
        """-> (predicted y, message); a cleared or refused x clears the old answer and says why, here."""
        if v is None:
            return None, "**Type a number for x** to get a prediction."
        try:
            return round(model.predict([v])["value"], 3), ""
        except InputError as e:
            return None, f"**Can't predict:** {refused(e)}"

    with gr.Row():
        x = gr.Number(value=4, label="x", elem_id="linear-x", min_width=120)
        y = gr.Number(linear(4)[0], label="predicted y", interactive=False, elem_id="linear-y", min_width=120)
    message = gr.Markdown("", elem_id="linear-message")
    gr.Button("predict").click(linear, [x], [y, message], api_name="predict_linear")
    x.submit(linear, [x], [y, message], api_name=False)
    stepper(gd.GDLesson.from_results(model.meta.measurements.results), "linear")


def logistic_lesson(zoo: ModelZoo):
    logistic = zoo.get("logistic-regression")
    crossing = logistic.meta.lesson_result("crossing")
    gr.Markdown(f"Logistic regression, trained with binary cross-entropy on x = 1, 2, 3 → 0, 0, 1: P(y=1) crosses "
                f"0.5 at x = {crossing:.2f}. Move x along the curve.", elem_classes=["intro"])

    def caption(v: float) -> str:
        return f"P(y=1 | x) over [0, 10], marked at x = {v:g}"

    def answer_text(v: float) -> str:
        return f"P(y=1 | x={v:g}) = **{logistic.predict([v])['probability']:.3f}**"

    @guarded
    def logistic_answer(v):
        v = float(v)
        return gr.Image(logistic_chart(logistic, v), label=caption(v)), answer_text(v)

    text = answer_text(2.5)
    with gr.Row():
        with gr.Column(min_width=280):
            plot = gr.Image(logistic_chart(logistic, 2.5), label=caption(2.5), interactive=False, buttons=[],
                            elem_id="logistic-plot", elem_classes=["chart"], format="png")
        with gr.Column(min_width=240):
            x = ClampingSlider(0, 10, value=2.5, step=0.05, label="x", elem_id="logistic-x")
            out = gr.Markdown(text, elem_id="logistic-out")
    x.change(logistic_answer, [x], [plot, out], api_name="predict_logistic", show_progress="hidden",
             trigger_mode="always_last")
    stepper(gd.GDLesson.from_results(logistic.meta.measurements.results), "logistic")


def diabetes_lesson(zoo: ModelZoo):
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
    for field in fields:  # Enter, or leaving a corrected field, answers again: no stale error
        field.submit(diabetes_form, fields, [out], api_name=False)
        field.blur(diabetes_form, fields, [out], api_name=False)


def spiral_lesson(zoo: ModelZoo, spirals: list[str]):
    gr.Markdown("Three spiral arms (the dots: the training points): a linear classifier can't separate them, "
                "a 2-layer ReLU net can. Side by side, the colours are the class each model gives every point; "
                "type a point or click either map.")

    @guarded
    def classify_point(x, y):
        """-> (each model's answer, then each model's map with the point marked); a point the models
        refuse replaces the answer with why (the maps keep the last point), as the other lessons do."""
        answers, boards = [], []
        for model_id in spirals:
            model = zoo.get(model_id)
            try:
                pred = model.predict([x, y])
            except InputError as e:
                return f"**Can't classify this point:** {refused(e)}", *(gr.skip() for _ in spirals)
            answers.append(f"`{model_id}`: class **{pred['label']}** ({pred['probabilities'][pred['label']]:.1%})")
            boards.append(spiral_boundary(model, (float(x), float(y))))
        off_map = max(abs(float(x)), abs(float(y))) > SPIRAL_VIEW
        note = (f" — off the maps (they show x, y in [-{SPIRAL_VIEW:g}, {SPIRAL_VIEW:g}]): far from every "
                "training point, both models only extrapolate") if off_map else ""
        return f"({float(x):g}, {float(y):g}) → " + " · ".join(answers) + note, *boards

    text, *pictures = classify_point(0.5, 0.2)
    px, py = gr.Number(value=0.5, label="x", elem_id="spiral-x"), gr.Number(value=0.2, label="y", elem_id="spiral-y")
    out = gr.Markdown(text, elem_id="spiral-out")
    with gr.Row():
        boards = [gr.Image(picture, interactive=False, label=f"{model_id}: decision regions (x, y in [-1.2, 1.2])",
                           elem_id=f"{model_id}-board", buttons=[], elem_classes=["chart"], format="png")
                  for model_id, picture in zip(spirals, pictures)]

    def clicked(event: Click):
        index = event.index  # [column, row] from the browser; a crafted event may send anything
        valid = isinstance(index, list) and len(index) == 2 and all(type(v) is int for v in index)
        point = spiral_point(*index) if valid else None
        if point is None:  # the axes, the legend, or not a point at all
            return (gr.skip(),) * (3 + len(boards))
        x, y = round(point[0], 3), round(point[1], 3)
        return x, y, *classify_point(x, y)

    gr.Button("classify").click(classify_point, [px, py], [out, *boards], api_name="predict_spiral")
    for box in (px, py):  # Enter in either box, as in the other lessons' boxes
        box.submit(classify_point, [px, py], [out, *boards], api_name=False)
    for board in boards:  # every map shares the same axes, so a click on either is the same point
        board.select(clicked, None, [px, py, out, *boards], api_name=False)
