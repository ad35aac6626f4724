"""POST /api/inspect, POST /api/inspect/all, GET /api/models/<id>/mistakes: JSON shapes and the 4xx of /api/classify."""
import pytest
from fastapi.testclient import TestClient

from demo.contract import read_examples
from demo.web.api import build_api
from demo.web.inspect_api import build_inspect_router


@pytest.fixture(scope="module")
def client(zoo):
    api = build_api(zoo)
    api.include_router(build_inspect_router(zoo))
    return TestClient(api, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def seven(zoo) -> bytes:
    return next(e for e in read_examples(zoo.models_dir, "mnist") if e.label == "7").path.read_bytes()


def test_inspect_returns_the_answer_the_input_every_tap_and_the_occlusion(client, zoo, seven):
    answer = client.post("/api/inspect?model=mnist-cnn", content=seven)
    assert answer.status_code == 200
    body = answer.json()
    classified = client.post("/api/classify?model=mnist-cnn", content=seven).json()
    assert {k: body[k] for k in ("model", "label", "unsure", "ink_box")} == \
        {k: classified[k] for k in ("model", "label", "unsure", "ink_box")}
    assert [t["label"] for t in body["top_k"]] == [t["label"] for t in classified["top_k"]]
    assert len(body["input"]) == 28 and all(len(row) == 28 and 0 <= min(row) and max(row) <= 255 for row in body["input"])
    names = [t.name for t in zoo.get("mnist-cnn").meta.inspection.taps]
    assert [t["name"] for t in body["taps"]] == names + ["softmax"]
    for tap in body["taps"]:
        assert set(tap) == {"name", "kind", "shape", "min", "max", "values"}
        values = tap["values"]
        for size in tap["shape"]:  # nested lists of exactly the stated shape
            assert len(values) == size
            values = values[0]
        assert tap["min"] <= tap["max"]
    assert sum(body["taps"][-1]["values"]) == pytest.approx(1, abs=1e-3)
    assert len(body["occlusion"]) == 28 and all(len(row) == 28 for row in body["occlusion"])


@pytest.mark.parametrize("model_id", ["mnist-resnet-int8", "fashion-softmax"])
def test_inspect_serves_int8_and_linear_models(client, seven, model_id):
    body = client.post(f"/api/inspect?model={model_id}", content=seven).json()
    assert body["taps"][-2]["kind"] == "logits" and body["taps"][-1]["shape"] == [10]


@pytest.mark.parametrize("query, body, headers, status, words", [
    ("model=mnist-cnn", b"", {}, 400, "empty body"),
    ("model=mnist-cnn", b"not an image at all", {}, 415, ""),
    ("model=mnist-cnn", b"--x\r\n", {"content-type": "multipart/form-data; boundary=x"}, 415, "raw bytes"),
    ("model=no-such-model", b"x", {}, 404, "unknown model"),
    ("model=hello-rnn", b"x", {}, 400, "only image classifiers"),
    ("model=mnist-cnn&top_k=0", b"x", {}, 400, "top_k"),
    ("", b"x", {}, 400, "'model' is required"),
])
def test_inspect_refuses_bad_input_as_classify_does(client, query, body, headers, status, words):
    answer = client.post(f"/api/inspect?{query}", content=body, headers=headers)
    assert answer.status_code == status
    assert words in answer.json()["error"]
    if "mnist-cnn" in query and "top_k" not in query:  # the same status as /api/classify
        assert client.post(f"/api/classify?{query}", content=body, headers=headers).status_code == status


def test_a_blank_picture_is_422_as_in_classify(client):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (40, 40), 0).save(buffer, format="PNG")
    assert client.post("/api/inspect?model=mnist-cnn", content=buffer.getvalue()).status_code == 422


def test_all_models_table(client, seven):
    body = client.post("/api/inspect/all?dataset=mnist", content=seven).json()
    assert len(body["rows"]) == 10 and body["total_ms"] > 0
    assert {r["label"] for r in body["rows"]} == {"7"}
    assert set(body["rows"][0]) == {"model", "label", "confidence", "latency_ms", "params", "precision"}
    assert client.post("/api/inspect/all?dataset=hello", content=seven).status_code == 404
    assert client.post("/api/inspect/all?dataset=mnist", content=b"").status_code == 400


def test_mistakes_endpoint(client):
    body = client.get("/api/models/fashion-cnn/mistakes").json()
    assert len(body["confusion"]) == 10 and sum(map(sum, body["confusion"])) == 10_000
    first = body["mistakes"][0]
    assert {"index", "true", "predicted", "confidence", "pixels", "true_label", "predicted_label"} <= set(first)
    assert client.get("/api/models/nope/mistakes").status_code == 404
    refused = client.get("/api/models/hello-rnn/mistakes")
    assert refused.status_code == 400 and "hello-rnn is a sequence-prediction model" in refused.json()["error"]


def test_the_server_mounts_the_routes(zoo, seven):
    from demo.web.server import create_app

    with TestClient(create_app(zoo)) as app:
        assert app.post("/api/inspect?model=mnist-cnn", content=seven).json()["label"] == "7"
        assert app.get("/api/models/mnist-cnn/mistakes").status_code == 200
