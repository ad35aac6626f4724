"""The Open Inference Protocol under /v2 and /api/predict, checked with a client no one here
wrote (tritonclient.http) against `tinyzoo demo`, and the Triton backend run against that
server as a stand-in Triton: every answer equals the in-process runtime's."""
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from demo.contract.manifest import read_manifest
from demo.inference.protocol import ProtocolError, decode_bytes_elements, encode_bytes_elements
from demo.inference.runtime import CharPredictor, TabularModel, softmax
from tests.conftest import ROOT, drawn_digit_png, free_port, running_server

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is part of the dev extra")
from tritonclient.utils import InferenceServerException, serialize_byte_tensor

# same CPU, same ORT, same batch: the server's numbers are the runtime's; the tolerance only
# allows for a server process that picked other kernels (different thread count)
ATOL = RTOL = 1e-5


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """`tinyzoo demo` serving every model, in-process ORT: the Triton stand-in -> HOST:PORT."""
    with open(tmp_path_factory.mktemp("stand-in") / "server.log", "w") as log, running_server(log) as (url, _):
        yield url.removeprefix("http://")


@pytest.fixture(scope="module")
def client(stand_in):
    return httpclient.InferenceServerClient(stand_in)


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- metadata and health ----------------------------------------------------------------------

def test_server_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "tinyzoo" and "binary_tensor_data" in meta["extensions"]
    assert not client.is_model_ready("no-such-model")
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_model_metadata("no-such-model")


def test_model_metadata_is_the_onnx_graphs(client, zoo):
    for model_id in zoo.ids():
        assert client.is_model_ready(model_id), model_id
        meta = client.get_model_metadata(model_id)
        session = zoo.get(model_id).session
        for served, local in ((meta["inputs"], session.get_inputs()), (meta["outputs"], session.get_outputs())):
            assert [t["name"] for t in served] == [a.name for a in local]
            for tensor, arg in zip(served, local):
                assert tensor["datatype"] == {"tensor(float)": "FP32", "tensor(int64)": "INT64"}[arg.type]
                assert tensor["shape"] == [d if isinstance(d, int) else -1 for d in arg.shape]
    assert client.get_model_metadata("mnist-cnn")["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert [t["name"] for t in client.get_model_metadata("hello-lstm")["inputs"]] == ["tokens", "h0", "c0"]


# --- inference: the runtime's answers -----------------------------------------------------------

def infer(client, model_id: str, feeds: dict, binary: bool, outputs=None):
    inputs = []
    for name, array in feeds.items():
        tensor = httpclient.InferInput(name, list(array.shape), {np.float32: "FP32", np.int64: "INT64"}[array.dtype.type])
        inputs.append(tensor.set_data_from_numpy(array, binary_data=binary))
    requested = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in outputs] if outputs else None
    return client.infer(model_id, inputs, outputs=requested)


@pytest.mark.parametrize("model_id", ["mnist-cnn", "fashion-resnet", "mnist-lenet5-int8"])
@pytest.mark.parametrize("binary", [False, True])
def test_image_inference_equals_runtime(client, zoo, model_id, binary):
    model = zoo.get(model_id)
    rng = np.random.default_rng(17)
    drawn = model.prepare(drawn_digit_png()).tensor[None]
    batch = np.concatenate([drawn, rng.normal(0, 1, (6, 1, 28, 28)).astype(np.float32)])
    result = infer(client, model_id, {"image": batch}, binary, outputs=["logits"])
    np.testing.assert_allclose(result.as_numpy("logits"), model.run(batch), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("binary", [False, True])
def test_classification_extension_gives_the_top_classes(client, zoo, binary):
    """Triton's classification extension: the top k of an output as BYTES "value:index:label"."""
    model = zoo.get("fashion-cnn")
    batch = np.concatenate([model.prepare(drawn_digit_png()).tensor[None],
                            np.random.default_rng(3).normal(0, 1, (4, 1, 28, 28)).astype(np.float32)])
    image = httpclient.InferInput("image", list(batch.shape), "FP32").set_data_from_numpy(batch, binary_data=binary)
    wanted = httpclient.InferRequestedOutput("logits", binary_data=binary, class_count=3)
    top = client.infer("fashion-cnn", [image], outputs=[wanted]).as_numpy("logits")
    logits = model.run(batch)
    assert top.shape == (5, 3)
    for row, answer in zip(logits, top):
        # binary BYTES come back as bytes, JSON ones as str (tritonclient keeps what the wire had)
        fields = [(e.decode() if isinstance(e, bytes) else e).split(":") for e in answer]
        best = np.argsort(-row)[:3]
        assert [int(i) for _, i, _ in fields] == best.tolist()
        assert [label for *_, label in fields] == [model.labels[i] for i in best]
        np.testing.assert_allclose([float(v) for v, *_ in fields], row[best], atol=1e-5)


@pytest.mark.parametrize("model_id", ["hello-rnn", "hello-gru", "hello-lstm", "hello-emb"])
def test_sequence_inference_with_state_equals_runtime(client, zoo, model_id):
    model: CharPredictor = zoo.get(model_id)
    first = model.predict("hello")
    second = model.predict("lo", first.state)  # continue from the first call's final state
    feeds = {"tokens": model.encode("hello"), **model.zero_state()}
    outputs = [model.output_name, *model.state_outputs]
    answer = infer(client, model_id, feeds, binary=True, outputs=outputs)
    np.testing.assert_allclose(answer.as_numpy("logits"), model.session.run(["logits"], feeds)[0], atol=ATOL)
    assert "".join(model.vocab[i] for i in answer.as_numpy("logits")[0].argmax(-1)) == first.predicted == "ohlol"
    state = {i: answer.as_numpy(o) for i, o in zip(model.state_inputs, model.state_outputs)}
    for name in model.state_inputs:
        np.testing.assert_allclose(state[name], first.state[name], atol=ATOL)
    again = infer(client, model_id, {"tokens": model.encode("lo"), **state}, binary=False, outputs=outputs)
    np.testing.assert_allclose(softmax(again.as_numpy("logits")[0]), second.probabilities, atol=ATOL)
    for name, out in zip(model.state_inputs, model.state_outputs):
        np.testing.assert_allclose(again.as_numpy(out), second.state[name], atol=ATOL)


@pytest.mark.parametrize("binary", [False, True])
def test_tabular_inference_equals_runtime(client, zoo, binary):
    rng = np.random.default_rng(5)
    for model_id in zoo.ids("tabular"):
        model: TabularModel = zoo.get(model_id)
        low, high = (np.array([getattr(f, k) for f in model.features], np.float32) for k in ("min", "max"))
        rows = (low + rng.random((9, len(low))) * (high - low)).astype(np.float32)
        result = infer(client, model_id, {model.input_name: rows}, binary)  # no outputs named: all of them
        np.testing.assert_allclose(result.as_numpy(model.output_name), model.run(rows), atol=ATOL, rtol=RTOL)


def test_bytes_elements_match_tritonclient():
    words = np.array([b"hello", b"", "\u00e9t\u00e9".encode(), b"\x00\xff"], dtype=np.object_)
    wire = serialize_byte_tensor(words).item()
    assert encode_bytes_elements(words) == wire
    assert decode_bytes_elements(wire, 4, "x").tolist() == words.tolist()
    with pytest.raises(ProtocolError, match="BYTES data truncated"):
        decode_bytes_elements(b"\x05\x00\x00\x00abc", 1, "x")


# --- errors: the protocol's {"error": ...} with 4xx ----------------------------------------------

def binary_request(inputs: list[tuple[str, list, str, bytes]], cut: int = 0) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": len(b)}}
                                    for n, s, d, b in inputs]}).encode()
    body = header + b"".join(b for *_, b in inputs)
    return body[:len(body) - cut], {"Inference-Header-Content-Length": str(len(header))}


def json_request(*inputs: dict) -> bytes:
    return json.dumps({"inputs": list(inputs)}).encode()


def data_and_binary() -> tuple[bytes, dict]:
    """One input whose values come both in its JSON and as binary bytes after the header."""
    header = json_request({"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.2],
                           "parameters": {"binary_data_size": 8}})
    return header + np.zeros(2, np.float32).tobytes(), {"Inference-Header-Content-Length": str(len(header))}


IMAGE = np.zeros((1, 1, 28, 28), np.float32)
CASES = {
    "unknown model": ("no-such-model", json_request(), {}, 404, "unknown model"),
    "bad json": ("mnist-cnn", b"{inputs: nope", {}, 400, "not valid JSON"),
    "no inputs": ("mnist-cnn", b"{}", {}, 400, "'inputs'"),
    "wrong name": ("mnist-cnn", json_request({"name": "img", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                              "data": IMAGE.ravel().tolist()}), {}, 400, "unexpected input 'img'"),
    "wrong shape": ("mnist-cnn", json_request({"name": "image", "shape": [1, 784], "datatype": "FP32",
                                               "data": IMAGE.ravel().tolist()}), {}, 400, "[-1, 1, 28, 28]"),
    "wrong datatype": ("mnist-cnn", json_request({"name": "image", "shape": [1, 1, 28, 28], "datatype": "INT64",
                                                  "data": [0] * 784}), {}, 400, "expects FP32"),
    "count mismatch": ("mnist-cnn", json_request({"name": "image", "shape": [2, 1, 28, 28], "datatype": "FP32",
                                                  "data": [0.0] * 784}), {}, 400, "needs 1568"),
    "strings as numbers": ("spiral-mlp", json_request({"name": "features", "shape": [1, 2], "datatype": "FP32",
                                                       "data": ["a", "b"]}), {}, 400, "FP32 values"),
    "fractional tokens": ("hello-rnn", json_request({"name": "tokens", "shape": [1, 1], "datatype": "INT64",
                                                     "data": [1.5]}, {"name": "h0", "shape": [1, 1, 4],
                                                                      "datatype": "FP32", "data": [0] * 4}),
                          {}, 400, "INT64 values"),
    "missing state": ("hello-lstm", json_request({"name": "tokens", "shape": [1, 1], "datatype": "INT64", "data": [0]}),
                      {}, 400, "missing input(s) h0, c0"),
    "token out of range": ("hello-rnn", json_request({"name": "tokens", "shape": [1, 1], "datatype": "INT64",
                                                      "data": [99]}, {"name": "h0", "shape": [1, 1, 4],
                                                                      "datatype": "FP32", "data": [0] * 4}),
                           {}, 400, "token ids must be 0..3"),
    "batch sizes disagree": ("hello-rnn", json_request({"name": "tokens", "shape": [2, 1], "datatype": "INT64",
                                                        "data": [0, 1]}, {"name": "h0", "shape": [1, 3, 4],
                                                                          "datatype": "FP32", "data": [0] * 12}),
                             {}, 400, "input 'h0': its shape[1] (3) must be the batch of 'tokens' (2)"),
    "an lstm's states disagree": ("hello-lstm", json_request(
        {"name": "tokens", "shape": [2, 5], "datatype": "INT64", "data": [0] * 10},
        {"name": "h0", "shape": [1, 2, 8], "datatype": "FP32", "data": [0] * 16},
        {"name": "c0", "shape": [1, 1, 8], "datatype": "FP32", "data": [0] * 8}),
        {}, 400, "input 'c0': its shape[1] (1) must be the batch of 'tokens' (2)"),
    "nan": ("spiral-mlp", b'{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [NaN, 1]}]}',
            {}, 400, "NaN"),
    "truncated binary": ("mnist-cnn", *binary_request([("image", [1, 1, 28, 28], "FP32", IMAGE.tobytes())], cut=10),
                         400, "truncated"),
    "data and binary both": ("spiral-mlp", *data_and_binary(), 400, "both 'data' and binary_data_size"),
    "a header length of 5,000 digits": ("mnist-cnn", b'{"inputs": []}', {"Inference-Header-Content-Length": "9" * 5000},
                                        400, "got '" + "9" * 40 + "'"),
    "header length past the body": ("mnist-cnn", b'{"inputs": []}', {"Inference-Header-Content-Length": "999"},
                                    400, "Inference-Header-Content-Length"),
    "bytes for a float input": ("mnist-cnn", *binary_request([("image", [1], "BYTES", b"\x01\x00\x00\x00a")]), 400,
                                "datatype BYTES, the model expects FP32"),
    "unknown output": ("spiral-mlp", json.dumps({"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32",
                                                             "data": [0, 0]}], "outputs": [{"name": "probs"}]}).encode(),
                       {}, 400, "'probs'"),
    "version 2": ("mnist-cnn/versions/2", json_request(), {}, 404, "version 1 only"),
    "classification of a sequence": ("hello-rnn", json.dumps({
        "inputs": [{"name": "tokens", "shape": [1, 1], "datatype": "INT64", "data": [0]},
                   {"name": "h0", "shape": [1, 1, 4], "datatype": "FP32", "data": [0] * 4}],
        "outputs": [{"name": "logits", "parameters": {"classification": 2}}]}).encode(), {}, 400, "[batch, classes]"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_protocol_errors_are_json_4xx(stand_in, case):
    model_id, body, headers, status, fragment = CASES[case]
    code, answer = post(f"http://{stand_in}/v2/models/{model_id}/infer", body, headers)
    assert code == status and fragment in answer["error"], (code, answer)


# --- POST /api/predict ------------------------------------------------------------------------

def test_api_predict_sequence_and_tabular(stand_in, zoo):
    base = f"http://{stand_in}/api/predict?model="
    code, first = post(base + "hello-gru", json.dumps({"text": "hello"}).encode())
    assert code == 200 and first["output"] == "ohlol", first
    code, second = post(base + "hello-gru", json.dumps({"text": "lo", "state": first["state"]}).encode())
    expected = zoo.get("hello-gru").predict("lo", zoo.get("hello-gru").predict("hello").state)
    assert code == 200 and second["output"] == expected.predicted
    np.testing.assert_allclose(second["state"]["h0"], expected.state["h0"], atol=ATOL)
    # the state comes back as float32's shortest digits (0.9952741, not 0.9952740669250488): the same float32s
    numbers = np.ravel(first["state"]["h0"]).tolist()
    assert all(repr(v) == str(np.float32(v)) for v in numbers), numbers
    np.testing.assert_allclose(numbers, np.ravel(zoo.get("hello-gru").predict("hello").state["h0"]), atol=ATOL)
    diabetes = zoo.get("diabetes-mlp")
    features = {f.name: (f.min + f.max) / 2 for f in diabetes.features}
    code, answer = post(base + "diabetes-mlp", json.dumps({"features": features}).encode())
    local = diabetes.predict(features)
    assert code == 200 and answer["label"] == local["label"]
    assert answer["probability"] == pytest.approx(local["probability"], abs=ATOL)
    code, answer = post(base + "linear-regression", json.dumps({"features": [4.0]}).encode())
    assert code == 200 and answer["value"] == pytest.approx(zoo.get("linear-regression").predict([4.0])["value"], abs=ATOL)


@pytest.mark.parametrize("model_id, body, status, fragment", [
    ("mnist-cnn", b'{"text": "hi"}', 400, "/api/classify"),
    ("no-such-model", b'{"text": "hi"}', 404, "unknown model"),
    ("hello-rnn", b"hello", 400, "JSON"),
    ("hello-rnn", b'{"features": [1]}', 400, "field 'text' is required"),
    ("hello-rnn", b'{"text": "hex"}', 400, "'x' not in the model's vocabulary"),
    ("hello-lstm", b'{"text": "he", "state": {"h0": [1, 2]}}', 400, "field 'state.h0[0]'"),
    ("hello-lstm", b'{"text": "he", "state": {"h0": [[[1, 2]]]}}', 400, "'h0' has shape [1, 1, 2], not [1, 1, 8]"),
    ("hello-lstm", b'{"text": "he", "state": {"h9": [[[1, 2]]]}}', 400, "unknown state 'h9'; its state is h0, c0"),
    ("diabetes-mlp", b'{"features": true}', 400, 'a JSON object like {"features": {"npreg": '),
    ("diabetes-mlp", b'{"features": {"sex": 1}}', 400, "unknown field(s) sex"),
    ("spiral-mlp", b'{"features": [1e9, 0]}', 400, "must be between"),
    ("hello-rnn", b'{"text": true}', 400, "valid string (got true)"),  # JSON's spelling, not Python's True
    ("spiral-mlp", b'{"features": [1e400, 0]}', 400, "(got a number beyond float range)"),
])
def test_api_predict_errors(stand_in, model_id, body, status, fragment):
    code, answer = post(f"http://{stand_in}/api/predict?model={model_id}", body)
    assert code == status and fragment in answer["error"], (code, answer)


# --- the Triton backend, against the stand-in ---------------------------------------------------

@pytest.fixture(scope="module")
def via_triton(stand_in, tmp_path_factory):
    """A second `tinyzoo demo` whose models run on the stand-in, through --backend triton."""
    with open(tmp_path_factory.mktemp("via-triton") / "server.log", "w") as log, \
            running_server(log, TINYZOO_BACKEND="triton", TINYZOO_TRITON_URL=stand_in) as (url, _):
        yield url.removeprefix("http://")


def test_app_on_triton_backend_answers_as_in_process(stand_in, via_triton):
    def answer(server, path, body):
        code, result = post(f"http://{server}{path}", body)
        assert code == 200, result
        return {k: v for k, v in result.items() if k not in ("provider", "latency_ms")}, result["provider"]

    for path, body in [("/api/classify?model=mnist-cnn&top_k=5", drawn_digit_png()),
                       ("/api/classify?model=fashion-cnn-int8", drawn_digit_png(mode="RGBA")),
                       ("/api/predict?model=hello-lstm", b'{"text": "hellohello"}'),
                       ("/api/predict?model=spiral-mlp", b'{"features": [0.3, -0.2]}')]:
        local, local_provider = answer(stand_in, path, body)
        remote, remote_provider = answer(via_triton, path, body)
        assert remote == local and local_provider == "CPUExecutionProvider"
        assert remote_provider == f"triton@{stand_in}"


def classify(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYZOO_PROVIDER": "cpu", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "demo.cli", "classify", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_cli_on_triton_backend_writes_the_same_rows(stand_in, test_split, tmp_path):
    from PIL import Image

    images, _ = test_split("fashion")
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(images[:300]):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rows = {}
    for backend in ("local", "triton"):
        out = tmp_path / f"{backend}.csv"
        done = classify(str(folder), "--model", "fashion-cnn", "--workers", "2", "--batch-size", "64", "--out", str(out),
                        "--backend", backend, "--triton-url", stand_in)
        assert done.returncode == 1 and "300 classified, 1 failed" in done.stderr, done.stderr
        rows[backend] = out.read_text()
    assert rows["triton"] == rows["local"]


def test_cli_triton_backend_unreachable_is_one_line(tmp_path):
    nobody = f"127.0.0.1:{free_port()}"  # a port just found free: nothing listens there
    (tmp_path / "7.png").write_bytes(drawn_digit_png())  # an input: a folder with none is refused first
    done = classify(str(tmp_path), "--model", "mnist-cnn", "--backend", "triton", "--triton-url", nobody)
    assert done.returncode == 2 and "did not answer" in done.stderr and "Traceback" not in done.stderr, done.stderr
    done = classify(str(tmp_path), "--model", "mnist-cnn", "--backend", "triton")
    assert done.returncode == 2 and "--triton-url" in done.stderr


def test_triton_repository_serves_the_shipped_bytes(zoo, tmp_path):
    pytest.importorskip("onnx", reason="writing the repository needs the training extra (onnx)")
    from demo.inference.remote import TRITON_MAX_BATCH
    from export.triton import MAX_BATCH, write_repository

    assert MAX_BATCH == TRITON_MAX_BATCH  # the adapter never sends more rows than the config allows
    manifest = read_manifest(zoo.models_dir)["models"]
    ids = ["mnist-cnn", "hello-lstm", "diabetes-mlp", "fashion-cnn-int8"]
    write_repository(ids, zoo.models_dir, tmp_path)
    for model_id in ids:
        served = (tmp_path / model_id / "1" / "model.onnx").read_bytes()
        assert hashlib.sha256(served).hexdigest() == manifest[model_id]["sha256"], model_id
