"""The course's lessons reproduce the course's numbers; their exported models match PyTorch and
reject bad form input with a clear message."""
import numpy as np
import pytest
import torch

from demo.inference.runtime import InputError
from export.onnx_export import load_checkpoint
from export.parity import BATCH_SIZES, check_names, compare, cpu_session
from training.lessons import diabetes, from_scratch, linear_regression, logistic_regression, spiral
from training.registry import REGISTRY
from tests.conftest import require_dataset

LESSON_MODELS = [i for i, e in REGISTRY.items() if e.lesson is not None]


def assert_plots(results):
    assert results["plots"]
    for path in results["plots"]:
        with open(path, "rb") as f:
            data = f.read()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000


def test_linear_regression(tmp_path):
    r = linear_regression.run(plots_dir=tmp_path)
    assert r["grid_w"] == pytest.approx(2.0)
    for w in (r["gd_w"], r["autograd_w"], r["nn_w"]):
        assert w == pytest.approx(2.0, abs=0.01)
    assert r["predict_4"] == pytest.approx(8.0, abs=0.05)
    # least squares on x=1..4 -> 6.8, 9.8, 13.2, 16.2 is w=3.16, b=3.60: 19.40 at x=5 (the course rounds to 19.3)
    assert r["exercise_predict_5"]["lstsq"] == pytest.approx(19.4, abs=1e-6)
    assert r["exercise_predict_5"]["gd"] == pytest.approx(19.4, abs=0.01)
    assert r["exercise_predict_5"]["grid"] == pytest.approx(19.4, abs=0.2)
    w, b = r["synthetic"]
    assert w == pytest.approx(2.0, abs=0.01) and b == pytest.approx(1.0, abs=0.05)
    assert_plots(r)


def test_logistic_regression(tmp_path):
    r = logistic_regression.run(plots_dir=tmp_path)
    p1, p2, p3 = r["train_probabilities"]
    assert p1 < p2 < 0.5 < p3 and 2.0 < r["crossing"] < 3.0
    assert_plots(r)


def test_diabetes(tmp_path):
    r = diabetes.run(plots_dir=tmp_path)
    assert (r["train_rows"], r["test_rows"]) == (200, 332)
    assert r["majority_test_accuracy"] == pytest.approx(223 / 332)
    assert r["test_accuracy"] > r["majority_test_accuracy"] + 0.05
    assert r["logistic_test_accuracy"] > r["majority_test_accuracy"] + 0.05
    assert_plots(r)


def test_spiral(tmp_path):
    r = spiral.run(plots_dir=tmp_path)  # test_accuracy: on a held-out spiral, train_accuracy: on the fitted one
    assert 0.4 < r["linear"]["test_accuracy"] < 0.6 and 0.4 < r["linear"]["train_accuracy"] < 0.6
    assert r["mlp"]["test_accuracy"] >= 0.95 and r["mlp"]["train_accuracy"] >= 0.95
    assert_plots(r["linear"])
    assert_plots(r["mlp"])


def test_from_scratch(tmp_path):
    require_dataset("fashion")
    r = from_scratch.run(plots_dir=tmp_path)
    assert r["softmax_accuracy"] >= 0.83
    assert r["mlp_fixed_accuracy"] >= 0.85
    # what the lesson teaches: clipped logits get no gradient, so classes die early. After the first
    # epoch the buggy MLP was 7-13 points behind on seeds 0-3 (on any CPU: it happens in the first
    # few hundred steps, before float differences grow); whether its dead classes come
    # back later varies with the seed and the CPU (final gap -0.7 to +8 points), so finals are not compared
    buggy, fixed = r["mlp_relu_logits_history"], r["mlp_fixed_history"]
    assert fixed[0] - buggy[0] >= 0.03, f"after epoch 1: fixed {fixed[0]:.4f}, ReLU on logits {buggy[0]:.4f}"
    assert_plots(r)


@pytest.mark.parametrize("model_id", LESSON_MODELS)
def test_exported_lesson_model_matches_pytorch(zoo, model_id):
    entry, module, _, _ = load_checkpoint(model_id, zoo.models_dir)
    served = zoo.get(model_id)
    session = cpu_session(str(zoo.models_dir / f"{model_id}.onnx"))
    check_names(session, [served.input_name], [served.output_name])
    inputs, targets = entry.lesson.eval_data()
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    for bs in BATCH_SIZES:
        assert compare(module, session, {served.input_name: inputs[:bs]}, [served.output_name], 1e-4, "") <= 1e-4
    with torch.no_grad():
        expected = module(torch.from_numpy(inputs)).numpy()
    np.testing.assert_allclose(served.run(inputs), expected, atol=1e-4)


def test_lesson_models_answer_like_the_course(zoo):
    assert zoo.get("linear-regression").predict([4])["value"] == pytest.approx(8.0, abs=0.05)
    assert zoo.get("logistic-regression").predict({"x": 1})["label"] == "0"
    assert zoo.get("logistic-regression").predict({"x": 3})["label"] == "1"
    spiral_mlp = zoo.get("spiral-mlp")
    x, y = spiral.make_spiral(0, held_out=True)
    assert np.mean([spiral_mlp.predict(p)["label"] == str(c) for p, c in zip(x[::50], y[::50])]) >= 0.95


GOOD = {"npreg": 2, "glu": 150, "bp": 70, "skin": 30, "bmi": 35.0, "ped": 0.5, "age": 45}


@pytest.mark.parametrize("change, message", [
    ({"glu": 900}, r"glu, plasma glucose \(mg/dl, 2 h OGTT\), must be between 40 and 250, got 900$"),
    ({"age": float("nan")}, "age must be a finite number"),
    ({"bmi": "heavy"}, "bmi must be a finite number, got 'heavy'"),
    ({"skin": None}, "missing skin"),
    ({"insulin": 80}, "unknown field"),
])
def test_bad_form_input_is_rejected_clearly(zoo, change, message):
    with pytest.raises(InputError, match=message):
        zoo.get("diabetes-mlp").predict({**GOOD, **change})


@pytest.mark.parametrize("model_id", ["linear-regression", "logistic-regression"])
def test_a_regressions_x_out_of_range_names_its_bounds(zoo, model_id):
    """Its metadata called x "any number" beside bounds of ±1e6."""
    message = r"^[a-z-]+: x, the input value, must be between -1e\+06 and 1e\+06, got 1e\+09$"
    with pytest.raises(InputError, match=message):
        zoo.get(model_id).predict([1e9])


def test_diabetes_form_accepts_raw_values(zoo):
    pred = zoo.get("diabetes-mlp").predict(GOOD)
    assert 0 <= pred["probability"] <= 1 and pred["label"] in ("No", "Yes")


def test_lessons_tab_endpoints(live_server):
    from gradio_client import Client

    client = Client(live_server, verbose=False)
    y, message = client.predict(4, api_name="/predict_linear")
    assert y == pytest.approx(8.0, abs=0.05) and message == ""
    assert client.predict(None, api_name="/predict_linear") == (None, "**Type a number for x** to get a prediction.")
    _curve, answer = client.predict(3, api_name="/predict_logistic")
    assert "P(y=1 | x=3)" in answer
    assert "P(diabetes)" in client.predict(*GOOD.values(), api_name="/predict_diabetes")
    # the model's own range check names the field (from the metadata's features)
    assert "glu, plasma glucose (mg/dl, 2 h OGTT), must be between 40 and 250, got 900" in client.predict(
        *{**GOOD, "glu": 900}.values(), api_name="/predict_diabetes")
    assert "missing skin" in client.predict(*{**GOOD, "skin": None}.values(), api_name="/predict_diabetes")
    text, linear_board, mlp_board = client.predict(0.5, 0.2, api_name="/predict_spiral")
    assert text.startswith("(0.5, 0.2) → `spiral-linear`: class **") and "`spiral-mlp`: class **" in text
    assert linear_board and mlp_board
    text, *_ = client.predict(100, 0.4, api_name="/predict_spiral")  # answered, and said to be off the maps
    assert text.startswith("(100, 0.4) → `spiral-linear`") and "off the maps" in text
    text, *_ = client.predict(2000, 0.2, api_name="/predict_spiral")  # the old answer is not left standing
    assert text.startswith("**Can't classify this point:** spiral-linear: x") and "between -1000 and 1000" in text


@pytest.mark.parametrize("model_id, module, loss_fn", [
    ("linear-regression", linear_regression, torch.nn.functional.mse_loss),
    ("logistic-regression", logistic_regression, torch.nn.functional.binary_cross_entropy)])
def test_app_gradient_descent_steps_equal_pytorchs(zoo, model_id, module, loss_fn):
    """The app's numpy stepper, from the shipped start at the shipped learning rate, lands on the
    (w, b, loss) PyTorch recorded in the shipped file at every recorded epoch, and a fresh PyTorch run
    records the same path (the file is not stale)."""
    from demo.inference import lessons as gd
    from training.lessons.common import fit_full_batch

    lesson = gd.GDLesson.from_results(zoo.get(model_id).meta.measurements.results)
    epochs = lesson.recorded[-1][0]
    assert lesson.recorded[0][0] == 0 and len(lesson.recorded) > 100 and epochs == zoo.get(model_id).meta.train.epochs
    numpy_path = {row[0]: row for row in gd.run(lesson, lesson.lr, epochs)}
    for epoch, w, b, loss in lesson.recorded:
        assert numpy_path[epoch][1:] == pytest.approx((w, b, loss), abs=1e-6), epoch
    torch.manual_seed(0)
    fresh = []
    fit_full_batch(module.Line() if module is linear_regression else module.Logistic(),
                   module.X_DATA, module.Y_DATA, loss_fn, lesson.lr, epochs, fresh)
    assert [tuple(row) for row in fresh] == list(lesson.recorded)


def test_a_blown_up_run_is_charted_as_its_growth(zoo):
    """Over w, a blown-up run's curve was drawn at b ≈ 1e18 on a 1e36 scale: it is charted as log10
    loss per epoch instead, up to the overflow; a run still in the landscape keeps its chart over w."""
    from demo.inference import lessons as gd
    from demo.web.ui.stepper import advance, growth_chart, loss_chart, start_path

    lesson = gd.GDLesson.from_results(zoo.get("linear-regression").meta.measurements.results)
    as_array = np.asarray
    for rate, steps in ((0.25, 400), (0.2, 60)):  # overflowed; grown a thousandfold
        path = advance(lesson, start_path(lesson), rate, steps)
        assert (as_array(loss_chart(lesson, path)) == as_array(growth_chart(lesson, path))).all()
    shipped = advance(lesson, start_path(lesson), lesson.lr, 50)
    assert not np.array_equal(as_array(loss_chart(lesson, shipped)), as_array(growth_chart(lesson, shipped)))


@pytest.mark.parametrize("model_id", ["linear-regression", "logistic-regression"])
def test_the_loss_over_w_is_the_exact_curve(zoo, model_id):
    """Convex in w, with no float32 steps (the cross-entropy's saturated sigmoid drew a jagged kink),
    and the stepper's own float32 loss wherever that is not saturated."""
    from demo.inference import lessons as gd

    lesson = gd.GDLesson.from_results(zoo.get(model_id).meta.measurements.results)
    ws = np.linspace(-1.0, 8.0, 161)
    curve = gd.loss_over_w(lesson, ws, 0.536)
    assert np.diff(curve, 2).min() > -1e-9
    near = ws[ws <= 3.0]
    assert curve[:len(near)] == pytest.approx([gd.loss(lesson, float(w), 0.536) for w in near], rel=1e-5)


def test_a_diverged_models_line_is_named_off_the_chart():
    from demo.web.ui.stepper import model_now_label

    assert model_now_label(np.array([1.0, 9.0]), (0.0, 8.0)) == "model now"
    assert model_now_label(np.array([-40.0, 90.0, np.inf]), (0.0, 8.0)) == "model now: off this chart"


def test_gradient_descent_shows_slow_oscillating_and_diverging_rates(zoo):
    """The learning rates the stepper offers show each behaviour on the course's line (the MSE's
    curvature along w is 2·mean(x²) ≈ 11: steps above 2/11 overshoot without end)."""
    from demo.inference import lessons as gd

    lesson = gd.GDLesson.from_results(zoo.get("linear-regression").meta.measurements.results)
    assert gd.verdict(gd.run(lesson, 0.2, 30)).startswith("diverging")
    assert gd.verdict(gd.run(lesson, 0.25, 100)).startswith("diverged: the loss overflowed — press reset")
    assert gd.verdict(gd.run(lesson, 0.17, 12)).startswith("oscillating")
    assert gd.verdict(gd.run(lesson, 0.01, 12)).startswith("converging")
    assert gd.verdict(gd.run(lesson, lesson.lr, 1000)).startswith("converged")
    assert gd.loss(lesson, 2.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="no gradient-descent history"):
        gd.GDLesson.from_results({"w": 1.0})
