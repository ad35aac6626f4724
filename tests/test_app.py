"""The Gradio app and the HTTP API on a live local server (python -m demo in a subprocess)."""
import base64
import contextlib
import http.client
import json
import posixpath
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file

from demo.imaging.prepare import ImageInputError
from demo.settings import SHUTDOWN_GRACE_S
from demo.web.ui.images import pad_image
from demo.web.ui.spiral_chart import SPIRAL_COLORS, SPIRAL_LEGEND, SPIRAL_MARGIN, SPIRAL_PIXELS, spiral_boundary, spiral_point
from demo.web.ui.training import comparable, training_runs, training_summary
from tests.conftest import ROOT, drawn_digit_png, post, running_server


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


def pad_value(png: bytes) -> str:
    """What the Digits pad sends: its drawing as a PNG data URL."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_gradio_sketch_endpoint_reads_the_pads_png(client):
    label, seen, info = client.predict("mnist-cnn", pad_value(drawn_digit_png(size=96)), api_name="/classify_mnist_sketch")
    assert label["label"] == "7", info
    assert seen and "mnist-cnn" in info


def test_gradio_sketch_endpoint_empty_pad_says_draw(client):
    label, seen, info = client.predict("mnist-cnn", "", api_name="/classify_mnist_sketch")
    assert info == "draw a digit" and seen is None


@pytest.mark.parametrize("value, message", [
    ("data:image/jpeg;base64,AAAA", "not a PNG data URL"),
    ("data:image/png;base64,@@@", "not valid base64"),
    ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "not an image"),
])
def test_gradio_sketch_endpoint_refuses_what_no_pad_sends(client, value, message):
    label, seen, info = client.predict("mnist-cnn", value, api_name="/classify_mnist_sketch")
    assert message in info and seen is None and not label.get("confidences")


def test_pad_image_decodes_the_data_url():
    assert pad_image("") is None and pad_image(None) is None
    assert pad_image(pad_value(b"\x89PNG")) == b"\x89PNG"
    with pytest.raises(ImageInputError, match="not a PNG data URL"):
        pad_image("hello")


def test_spiral_map_has_axes_legend_and_training_points(zoo):
    picture = np.asarray(spiral_boundary(zoo.get("spiral-mlp"), (0.5, 0.2)))
    left, top, right, bottom = SPIRAL_MARGIN
    assert picture.shape[:2] == (SPIRAL_LEGEND + top + SPIRAL_PIXELS + bottom, left + SPIRAL_PIXELS + right)
    margin = picture[SPIRAL_LEGEND + top:, :left]
    assert (margin < 100).all(-1).any()  # the y axis' numbers, in black
    legend = picture[:SPIRAL_LEGEND]
    for colour in SPIRAL_COLORS:  # a swatch of each class colour in the legend
        assert (legend == colour).all(-1).any()
    area = picture[SPIRAL_LEGEND + top:SPIRAL_LEGEND + top + SPIRAL_PIXELS, left:left + SPIRAL_PIXELS]
    for colour in SPIRAL_COLORS:  # full-strength dots of each class over the pale zones
        assert (area == colour).all(-1).sum() > 50
    assert spiral_point(0, 0) is None  # a click on the legend is not a point
    x, y = spiral_point(left + SPIRAL_PIXELS // 2, SPIRAL_LEGEND + top + SPIRAL_PIXELS // 2)
    assert abs(x) < 0.01 and abs(y) < 0.01


def test_readme_quotes_the_recorded_seconds_per_epoch(zoo):
    """The README's model table and the Training tab show the same figure: the one in the metadata."""
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\S+) \| [*\d.]+%\** \| \d+ \| ([\d.]+)", readme, re.M))  # image models' rows
    assert {"mnist-cnn", "mnist-mlp"} <= set(rows), rows
    for model_id, quoted in rows.items():
        recorded = zoo.get(model_id).meta.train.seconds_per_epoch
        assert quoted == f"{recorded:.1f}", model_id
        assert f"{recorded:.1f} s on" in training_summary(zoo.get(model_id).meta)


def test_http_api_classify(live_server):
    status, body = post(f"{live_server}/api/classify?model=mnist-cnn", drawn_digit_png())
    assert status == 200, body
    assert body["model"] == "mnist-cnn" and body["label"] == "7"
    assert set(body) == {"model", "label", "confidence", "unsure", "top_k", "ink_box", "provider", "latency_ms"}
    assert body["unsure"] is False and len(body["ink_box"]) == 4
    assert [t["label"] for t in body["top_k"]][0] == "7" and len(body["top_k"]) == 3


@pytest.mark.parametrize("port, message", [("99999", "a port is a number from 0 to 65535"),
                                           ("taken", "Address already in use")])
def test_the_server_refuses_a_port_it_cannot_listen_on_in_one_line(port, message):
    """Before the "serving" line, not after it (uvicorn's exit 3), and without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1]) if port == "taken" else port
        done = subprocess.run([sys.executable, "-m", "demo.cli", "demo", "--port", port], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "serving" not in done.stdout
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 6, done.stderr


@contextlib.contextmanager
def sigint_as_at_a_terminal():
    """Servers started inside take Ctrl-C as a terminal's foreground job does. A test run started in
    the background has SIGINT ignored, and a child inherits that; a handled signal is reset at exec."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_server_stops_while_a_page_is_open(tmp_path, stop):
    """An open page holds an event stream that never ends: Ctrl-C waited on it forever (a second
    Ctrl-C forced it), and uvicorn's cancellation was a 40-line traceback."""
    with (sigint_as_at_a_terminal(), open(tmp_path / "server.log", "w") as log,
          running_server(log) as (url, proc)):
        page = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        page.request("GET", "/gradio_api/heartbeat/test-open-page")
        assert page.getresponse().status == 200  # the stream is open: its body never ends
        started = time.monotonic()
        proc.send_signal(stop)
        code = proc.wait(30)
        page.close()
    assert time.monotonic() - started < SHUTDOWN_GRACE_S + 10
    assert code == (130 if stop == signal.SIGINT else -signal.SIGTERM)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_http_api_numbers_are_float32_digits(live_server):
    """0.9999783, not 0.9999783039093018: the model's float32, without float64's widening digits."""
    status, body = post(f"{live_server}/api/classify?model=mnist-cnn&top_k=5", drawn_digit_png())
    numbers = [body["confidence"]] + [t["confidence"] for t in body["top_k"]]
    assert status == 200 and all(repr(v) == str(np.float32(v)) for v in numbers), numbers
    assert body["latency_ms"] == round(body["latency_ms"], 3)


def test_http_api_models(live_server, zoo):
    with urllib.request.urlopen(f"{live_server}/api/models", timeout=30) as response:
        models = json.loads(response.read())["models"]
    assert sorted(m["id"] for m in models) == sorted(zoo.ids())
    assert all(m["sha256"] and m["metadata"]["id"] == m["id"] for m in models)
    assert all(m["metadata"]["labels"] for m in models if m["task"] == "image-classification")
    assert all(m["metadata"]["sequence"]["idx_to_char"] for m in models if m["task"] == "sequence-prediction")


@pytest.mark.parametrize("path, status, allow", [
    ("/api/models", 200, None), ("/v2", 200, None), ("/v2/health/ready", 200, None),
    ("/v2/models/mnist-cnn", 200, None),
    ("/readme", 200, None), ("/docs/batch.md", 200, None), ("/api/classify", 405, "POST"), ("/api/clasify", 404, None),
])
def test_head_is_answered_as_get_without_a_body(live_server, path, status, allow):
    """`curl -I` and uptime checks: HEAD gets GET's status and headers, and no body."""
    answers = {}
    for method in ("GET", "HEAD"):
        connection = http.client.HTTPConnection(urllib.parse.urlsplit(live_server).netloc, timeout=30)
        connection.request(method, path)
        answer = connection.getresponse()
        answers[method] = answer.status, answer.getheader("Allow"), answer.getheader("content-type"), answer.read()
        connection.close()
    assert answers["HEAD"][:2] == (status, allow) and answers["HEAD"][2] == answers["GET"][2]
    assert answers["HEAD"][3] == b"" and answers["GET"][3]


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


@pytest.mark.parametrize("method, path, status, allow", [
    ("GET", "/api/classify?model=mnist-cnn", 405, "POST"),
    ("POST", "/api/models", 405, "GET"),
    ("GET", "/v2/models/mnist-cnn/infer", 405, "POST"),
    ("GET", "/api/clasify", 404, None),
    ("POST", "/v2/models/mnist-cnn/nothing", 404, None),
    ("GET", "/api/" + "a" * 3000, 404, None),
    ("FOO", "/api/classify", 405, "POST"),  # a method HTTP does not define
    ("CONNECT", "/v2/models/mnist-cnn/infer", 405, "POST"),
])
def test_http_api_unknown_paths_and_methods_get_a_json_error(live_server, method, path, status, allow):
    request = urllib.request.Request(f"{live_server}{path}", method=method, data=b"" if method == "POST" else None)
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    assert answer.value.code == status and answer.value.headers.get("Allow") == allow
    error = json.loads(answer.value.read())["error"]
    assert path.split("?")[0][:120] in error and len(error) < 300


def test_every_link_of_the_manual_in_the_browser_opens(live_server):
    """/readme and what it links to, followed link by link: the docs, the changelog, their pictures,
    and the heading each `#section` names."""
    pages, todo, sections = {}, ["/readme"], set()
    while todo:
        path = posixpath.normpath(todo.pop())
        if path in pages:
            continue
        with urllib.request.urlopen(live_server + path, timeout=30) as response:  # a 404 raises
            html = response.headers["content-type"].startswith("text/html")
            pages[path] = response.read().decode("utf-8", "replace") if html else ""
        for link in re.findall(r'(?:href|src)="([^"]+)"', pages[path]):
            target, _, section = link.partition("#")
            if "://" not in target:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), target)) if target else path
                todo.append(target)
                sections |= {(target, section)} if section else set()
    assert {"/readme", "/CHANGELOG.md", "/docs/app-and-api.md", "/docs/images/look-inside.png"} <= set(pages)
    assert len(sections) > 10 and all(f'id="{section}"' in pages[target] for target, section in sections), [
        (target, section) for target, section in sections if f'id="{section}"' not in pages[target]]


def test_gradio_hello_endpoint(client):
    predicted, table, info = client.predict("hello-rnn", "hello", api_name="/predict_hello")
    assert predicted == "ohlol" and "hello-rnn" in info
    assert table["headers"] == ["#", "in", "out", "e", "h", "l", "o"] and len(table["data"]) == 5
    probabilities = [row[3:] for row in table["data"]]
    assert all(len(p) == 4 and p[1] == "." for row in probabilities for p in row), probabilities  # "0.70", never "0.7"
    assert all(abs(sum(map(float, row)) - 1) <= 0.02 for row in probabilities)


def test_gradio_hello_endpoint_names_allowed_characters(client):
    predicted, table, info = client.predict("hello-rnn", "hi!", api_name="/predict_hello")
    assert "allowed characters: 'e', 'h', 'l', 'o'" in info
    assert predicted == "" and table["data"] == [] and table["headers"][:3] == ["#", "in", "out"]


def drawn_rows(plot: dict) -> list[dict]:
    """A curve chart's rows that are points: every chart also holds one empty point per series it
    lacks (its colour scale keeps every series name)."""
    value = plot["value"]
    y = [c for c in value["columns"] if c not in ("epoch", "split")][0]
    return [row for row in (dict(zip(value["columns"], r)) for r in value["data"]) if row[y] is not None]


def test_gradio_training_curves_endpoint(client, zoo):
    """The Training tab: per-epoch curves from the ONNX metadata and the file's measured figures."""
    loss, accuracy, lr, summary = client.predict("fashion-cnn", "none", api_name="/training_curves")
    history = zoo.get("fashion-cnn").meta.train.history
    rows = drawn_rows(loss)
    assert {r["split"] for r in rows} == {"train", "test"} and len(rows) == 2 * len(history)
    assert [r["loss"] for r in rows if r["split"] == "train"] == [h["train_loss"] for h in history]
    assert accuracy["visible"]  # the accuracy plot: shown, with its curves
    assert {r["split"] for r in drawn_rows(accuracy)} == {"train", "test"}
    shipped = zoo.get("fashion-cnn").meta.measurements.test_accuracy
    assert f"{shipped:.2%}" in summary and "dropout 0.25" in summary and "adamw" in summary
    hello_loss, hello_accuracy, _, hello_table = client.predict("hello-rnn", "none", api_name="/training_curves")
    assert "positions of its training string" in hello_table and "ms on cpu" in hello_table
    assert drawn_rows(hello_loss) and not drawn_rows(hello_accuracy)  # the char RNN logs a loss per epoch, no accuracy
    assert hello_accuracy["visible"] is False  # so its empty accuracy plot is hidden


def test_gradio_training_overlays_two_runs_and_plots_the_learning_rate(client, zoo):
    loss, _, lr, _ = client.predict("fashion-cnn", "fashion-mlp", api_name="/training_curves")
    rows = drawn_rows(loss)
    assert {r["split"] for r in rows} == {"train", "test", "train (overlaid)", "test (overlaid)"}
    mlp_history = zoo.get("fashion-mlp").meta.train.history
    assert [r["loss"] for r in rows if r["split"] == "test (overlaid)"] == [h["test_loss"] for h in mlp_history]
    assert loss["label"] == "loss per epoch: fashion-cnn, and fashion-mlp overlaid"
    loss, accuracy, lr, _ = client.predict("fashion-cnn", "hello-rnn", api_name="/training_curves")
    for chart, title in ((loss, "loss per epoch"), (accuracy, "accuracy per epoch"), (lr, "learning rate per epoch")):
        assert chart["label"] == title, chart["label"]  # a char RNN's curves are not drawn over a Fashion CNN's
        assert not any(r["split"].endswith("(overlaid)") for r in drawn_rows(chart))
    cnn_lr = [r["lr"] for r in drawn_rows(lr) if r["split"] == "lr"]
    assert lr["visible"] and [h["lr"] for h in zoo.get("fashion-cnn").meta.train.history] == pytest.approx(cnn_lr, rel=1e-2)  # the plot rounds to 3 digits
    loss, _, _, summary = client.predict("fashion-cnn-step", "fashion-cnn-onecycle", api_name="/training_curves")
    assert {"val", "val (overlaid)", "train"} <= {r["split"] for r in drawn_rows(loss)}
    assert "tinyzoo train fashion-cnn" in summary and "--scheduler step" in summary  # how it was made
    loss, _, _, summary = client.predict("fashion-cnn-dropout", "fashion-cnn-onecycle", api_name="/training_curves")
    assert {"val", "val (overlaid)"} <= {r["split"] for r in drawn_rows(loss)} and "--dropout 0.1" in summary
    lesson_loss, *_ = client.predict("linear-regression", "none", api_name="/training_curves")
    assert lesson_loss["visible"] and len(drawn_rows(lesson_loss)) > 100  # its gradient-descent steps


def test_a_run_is_overlaid_only_with_runs_on_the_same_data(zoo):
    runs = training_runs(zoo)
    fashion = comparable(runs, "fashion-cnn")
    assert {"fashion-mlp", "fashion-resnet-int8", "fashion-cnn-step", "fashion-cnn-onecycle"} <= set(fashion)
    assert not any(run.startswith(("mnist-", "hello-", "spiral-")) for run in fashion)
    assert set(comparable(runs, "hello-rnn")) == {"hello-emb", "hello-gru", "hello-lstm"}
    assert comparable(runs, "linear-regression") == []  # logistic regression's log-loss is no yardstick for it
    assert comparable(runs, "spiral-mlp") == []  # no per-epoch log: nothing to draw a second run against
    assert "spiral-mlp" not in comparable(runs, "spiral-linear")


def test_an_int8_file_does_not_claim_its_fp32_sources_parity_as_its_own(zoo):
    summary = training_summary(zoo.get("fashion-cnn-int8").meta)
    assert "| parity with PyTorch (of fp32 fashion-cnn) |" in summary and "gated on its accuracy" in summary
    assert "| parity with PyTorch | max abs diff" in training_summary(zoo.get("fashion-cnn").meta)


def test_every_trained_model_carries_its_history(zoo):
    for model_id in zoo.ids():
        meta = zoo.get(model_id).meta
        if meta.task in ("image-classification", "sequence-prediction"):
            history = meta.train.history
            assert [h["epoch"] for h in history] == list(range(1, len(history) + 1)), model_id
            assert len(history) == meta.train.epochs, model_id
