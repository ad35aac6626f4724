"""The Gradio app and the HTTP API on a live local server (python -m demo in a subprocess)."""
import json
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from demo.ui import sketch_to_ink
from tests.conftest import drawn_digit_png, post


@pytest.fixture(scope="module")
def client(live_server):
    return Client(live_server, verbose=False)


def test_gradio_upload_endpoint(client, tmp_path):
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_digit_png())
    label, seen, info = client.predict("mnist-cnn", handle_file(str(image)), api_name="/classify_mnist_upload")
    assert label["label"] == "7"
    assert "CPUExecutionProvider" in info and "mnist-cnn" in info and " ms" in info
    assert seen  # the 28x28 the model saw comes back as an image file


def test_gradio_sketch_endpoint_with_composite_only(client, tmp_path):
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_digit_png(size=280, mode="RGBA"))
    sketch = {"background": None, "layers": [], "composite": handle_file(str(image))}
    label, _, info = client.predict("mnist-cnn", sketch, api_name="/classify_mnist_sketch")
    assert label["label"] == "7", info


def test_gradio_sketch_endpoint_with_layers_only(client, tmp_path):
    """What the browser sends after drawing: strokes in a transparent layer, no composite."""
    import io

    from PIL import Image

    stroke = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    alpha = Image.open(io.BytesIO(drawn_digit_png(size=280))).convert("L").point(lambda v: 255 - v)
    stroke.putalpha(alpha)  # ink only where the 7 is; colour channels stay black
    path = tmp_path / "layer.png"
    stroke.save(path)
    sketch = {"background": None, "layers": [handle_file(str(path))], "composite": None}
    label, _, info = client.predict("mnist-cnn", sketch, api_name="/classify_mnist_sketch")
    assert label["label"] == "7", info


def test_gradio_sketch_endpoint_empty_canvas_says_draw(client):
    sketch = {"background": None, "layers": [], "composite": None}
    label, seen, info = client.predict("mnist-cnn", sketch, api_name="/classify_mnist_sketch")
    assert info == "draw a digit" and seen is None


def test_sketch_layers_alpha_is_the_ink():
    layer = np.zeros((280, 280, 4), np.uint8)
    layer[60:220, 130:150, 3] = 255  # a vertical stroke, colour irrelevant
    ink = sketch_to_ink({"background": None, "layers": [layer], "composite": None})
    assert ink.shape == (280, 280) and ink[100, 140] == 255 and ink[0, 0] == 0
    assert sketch_to_ink({"background": None, "layers": [np.zeros((9, 9, 4), np.uint8)], "composite": None}) is None
    assert sketch_to_ink(None) is None


def test_http_api_classify(live_server):
    status, body = post(f"{live_server}/api/classify?model=mnist-cnn", drawn_digit_png())
    assert status == 200, body
    assert body["model"] == "mnist-cnn" and body["label"] == "7"
    assert set(body) == {"model", "label", "confidence", "unsure", "top_k", "ink_box", "provider", "latency_ms"}
    assert body["unsure"] is False and len(body["ink_box"]) == 4
    assert [t["label"] for t in body["top_k"]][0] == "7" and len(body["top_k"]) == 3


def test_http_api_models(live_server, zoo):
    with urllib.request.urlopen(f"{live_server}/api/models", timeout=30) as response:
        models = json.loads(response.read())["models"]
    assert sorted(m["id"] for m in models) == sorted(zoo.ids())
    assert all(m["sha256"] and m["metadata"]["id"] == m["id"] for m in models)
    assert all(m["metadata"]["labels"] for m in models if m["task"] == "image-classification")
    assert all(m["metadata"]["sequence"]["idx_to_char"] for m in models if m["task"] == "sequence-prediction")


@pytest.mark.parametrize("query, body, status, message", [
    ("model=mnist-cnn", b"not an image", 415, "not an image"),
    ("model=mnist-cnn", b"", 400, "empty body"),
    ("model=nope", drawn_digit_png(), 404, "unknown model"),
    ("model=mnist-cnn&top_k=0", drawn_digit_png(), 400, "top_k"),
    ("model=hello-rnn", drawn_digit_png(), 400, "not an image classifier"),
])
def test_http_api_errors_are_json_4xx(live_server, query, body, status, message):
    got_status, got = post(f"{live_server}/api/classify?{query}", body)
    assert got_status == status and message in got["error"]


def test_gradio_hello_endpoint(client):
    predicted, table, info = client.predict("hello-rnn", "hello", api_name="/predict_hello")
    assert predicted == "ohlol" and "hello-rnn" in info
    assert table["headers"] == ["#", "input", "predicted", "e", "h", "l", "o"] and len(table["data"]) == 5


def test_gradio_hello_endpoint_names_allowed_characters(client):
    with pytest.raises(AppError, match="allowed characters: 'e', 'h', 'l', 'o'"):
        client.predict("hello-rnn", "hi!", api_name="/predict_hello")


def test_gradio_training_curves_endpoint(client, zoo):
    """The Training tab: per-epoch curves from the ONNX metadata and the file's measured figures."""
    loss, accuracy, summary = client.predict("fashion-cnn", api_name="/training_curves")
    history = zoo.get("fashion-cnn").meta.train.history
    rows = [dict(zip(loss["columns"], r)) for r in loss["data"]]
    assert {r["split"] for r in rows} == {"train", "test"} and len(rows) == 2 * len(history)
    assert [r["loss"] for r in rows if r["split"] == "train"] == [h["train_loss"] for h in history]
    assert {dict(zip(accuracy["columns"], r))["split"] for r in accuracy["data"]} == {"train", "test"}
    shipped = zoo.get("fashion-cnn").meta.measurements.test_accuracy
    assert f"{shipped:.2%}" in summary and "dropout 0.25" in summary and "adamw" in summary
    hello_loss, hello_accuracy, _ = client.predict("hello-rnn", api_name="/training_curves")
    assert hello_loss["data"] and not hello_accuracy["data"]  # the char RNN logs a loss per epoch, no accuracy


def test_every_trained_model_carries_its_history(zoo):
    for model_id in zoo.ids():
        meta = zoo.get(model_id).meta
        if meta.task in ("image-classification", "sequence-prediction"):
            history = meta.train.history
            assert [h["epoch"] for h in history] == list(range(1, len(history) + 1)), model_id
            assert len(history) == meta.train.epochs, model_id
