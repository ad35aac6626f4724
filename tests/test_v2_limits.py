"""Hostile requests against a served app: /v2 and /api/predict have limits, stated in the model
metadata and enforced before any tensor is decoded; wrong JSON types, huge numbers and deep
nesting are 4xx JSON naming the field; every answer is valid JSON; no traceback in the log."""
import inspect
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from demo.inference import limits
from demo.settings import IMAGE_MAX_BATCH
from demo.web.v2 import build_v2_router
from tests.conftest import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """-> (base URL, its log file)."""
    log_path = tmp_path_factory.mktemp("v2-limits") / "server.log"
    with open(log_path, "w") as log, running_server(log) as (url, _):
        yield url, log_path
    assert "Traceback" not in log_path.read_text()


def strict_json(raw: bytes):
    """json.loads that refuses NaN and Infinity, as every JSON parser outside Python does."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(raw, parse_constant=refuse)


def call(url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, strict_json(response.read())
    except urllib.error.HTTPError as e:
        return e.code, strict_json(e.read())


def infer(url: str, model_id: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    return call(f"{url}/v2/models/{model_id}/infer", body, headers)


def image_input(batch: int, data=None) -> dict:
    data = np.zeros(batch * 784).tolist() if data is None else data
    return {"name": "image", "shape": [batch, 1, 28, 28], "datatype": "FP32", "data": data}


def rnn_inputs(batch: int, length: int) -> list[dict]:
    return [{"name": "tokens", "shape": [batch, length], "datatype": "INT64", "data": [0] * (batch * length)},
            {"name": "h0", "shape": [1, batch, 4], "datatype": "FP32", "data": [0.0] * (batch * 4)}]


def body(**request) -> bytes:
    return json.dumps(request).encode()


# --- part 2: limits ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id, expected", [
    ("mnist-resnet", {"max_batch_size": limits.IMAGE_MAX_BATCH}),
    ("spiral-mlp", {"max_batch_size": limits.TABULAR_MAX_BATCH}),
    ("hello-rnn", {"max_batch_size": limits.SEQUENCE_MAX_BATCH, "max_sequence_length": limits.SEQUENCE_MAX_LENGTH}),
])
def test_model_metadata_states_the_limits(server, model_id, expected):
    url, _ = server
    code, meta = call(f"{url}/v2/models/{model_id}")
    assert code == 200
    assert {k: meta["parameters"][k] for k in expected} == expected
    assert meta["parameters"]["max_request_bytes"] > 0


def test_the_largest_allowed_requests_are_answered(server):
    url, _ = server
    code, answer = infer(url, "mnist-resnet", body(inputs=[image_input(limits.IMAGE_MAX_BATCH)]))
    assert code == 200 and answer["outputs"][0]["shape"] == [limits.IMAGE_MAX_BATCH, 10]
    code, answer = infer(url, "hello-rnn", body(inputs=rnn_inputs(limits.SEQUENCE_MAX_BATCH, limits.SEQUENCE_MAX_LENGTH)))
    assert code == 200
    assert answer["outputs"][0]["shape"] == [limits.SEQUENCE_MAX_BATCH, limits.SEQUENCE_MAX_LENGTH, 4]
    features = {"name": "features", "shape": [limits.TABULAR_MAX_BATCH, 2], "datatype": "FP32",
                "data": [0.1] * (2 * limits.TABULAR_MAX_BATCH)}
    assert infer(url, "spiral-mlp", body(inputs=[features]))[0] == 200


def binary_header(*inputs: tuple[str, list, str, int]) -> tuple[bytes, dict]:
    """A binary-extension header declaring `inputs` (name, shape, datatype, binary_data_size)."""
    header = body(inputs=[{"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": size}}
                          for n, s, d, size in inputs])
    return header, {"Inference-Header-Content-Length": str(len(header))}


def test_a_batch_over_the_limit_is_413_before_its_data_is_read(server):
    """The header claims 8,000 images and sends none of their bytes: the claim alone is refused."""
    url, _ = server
    header, headers = binary_header(("image", [8000, 1, 28, 28], "FP32", 8000 * 784 * 4))
    code, answer = infer(url, "mnist-resnet", header, headers)
    assert code == 413 and "batch of 8000 is over this server's limit of 256" in answer["error"], answer


def test_a_sequence_over_the_limit_is_413(server):
    url, _ = server
    code, answer = infer(url, "hello-rnn", body(inputs=rnn_inputs(1, limits.SEQUENCE_MAX_LENGTH + 1)))
    assert code == 413 and f"sequence of {limits.SEQUENCE_MAX_LENGTH + 1}" in answer["error"], answer


def test_a_tabular_batch_over_the_limit_is_413(server):
    url, _ = server
    header, headers = binary_header(("features", [3_000_000, 2], "FP32", 3_000_000 * 8))
    code, answer = infer(url, "spiral-mlp", header, headers)
    assert code == 413 and "'features': batch of 3000000" in answer["error"], answer


def test_a_body_over_the_models_request_size_is_413(server):
    url, _ = server
    _, meta = call(f"{url}/v2/models/spiral-mlp")
    padding = b" " * (meta["parameters"]["max_request_bytes"] + 1)
    code, answer = infer(url, "spiral-mlp", body(inputs=[{"name": "features", "shape": [1, 2], "datatype": "FP32",
                                                          "data": [0, 0]}]) + padding)
    assert code == 413 and "max_request_bytes" in answer["error"], answer


def test_bytes_for_a_float_input_are_refused_before_decoding(server):
    """8M BYTES elements declared for an FP32 input: refused on the header, none decoded."""
    url, _ = server
    header, headers = binary_header(("image", [8_000_000], "BYTES", 2**20))
    code, answer = infer(url, "mnist-cnn", header + b"\x00" * 2**20, headers)  # 262,144 empty elements sent
    assert code == 400 and "datatype BYTES, the model expects FP32" in answer["error"], answer


def test_sessions_keep_no_memory_arena(zoo):
    """ORT's CPU arena keeps the largest batch's memory for good; without it RSS returns to idle."""
    for model_id in zoo.ids():
        assert zoo.get(model_id).session.get_session_options().enable_cpu_mem_arena is False, model_id


def test_health_answers_on_the_event_loop(server):
    """Health is not queued behind inference threads: the routes are coroutines (bench/v2_limits.py
    measures the latency during the largest requests)."""
    router = build_v2_router(zoo=None)
    health = {route.path: route.endpoint for route in router.routes if "/health/" in route.path}
    assert health and all(inspect.iscoroutinefunction(endpoint) for endpoint in health.values())
    url, _ = server
    assert call(f"{url}/v2/health/live") == (200, {"live": True})


def rss_mb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024


def peak_rss_mb(pid: int, stop: threading.Event, peak: list) -> None:
    while not stop.wait(0.02):
        peak[0] = max(peak[0], rss_mb(pid))


def test_many_large_requests_at_once_take_turns(tmp_path):
    """32 of the largest JSON requests to the largest model at once: at most V2_CONCURRENT are read, parsed and
    run together, the rest wait with their bodies unread, or get a 503 after V2_WAIT_S. All 32 parsed at once held
    ~1 GB more and kept the health route waiting seconds for the GIL."""
    pixels = np.random.default_rng(0).random(IMAGE_MAX_BATCH * 784).tolist()
    request = body(inputs=[image_input(IMAGE_MAX_BATCH, pixels)])
    with open(tmp_path / "server.log", "w") as log, running_server(log) as (url, proc):
        idle = rss_mb(proc.pid)
        stop, peak, health = threading.Event(), [idle], []
        threading.Thread(target=peak_rss_mb, args=(proc.pid, stop, peak), daemon=True).start()

        def live() -> None:
            while not stop.wait(0.1):
                started = time.perf_counter()
                assert call(f"{url}/v2/health/live") == (200, {"live": True})
                health.append(time.perf_counter() - started)

        watcher = threading.Thread(target=live, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: infer(url, "mnist-resnet", request), range(32)))
        stop.set()
        watcher.join()
    assert {status for status, _ in answers} <= {200, 503}, answers
    assert all("the server is busy" in answer["error"] for status, answer in answers if status == 503)
    assert sum(status == 200 for status, _ in answers) >= 4
    assert peak[0] - idle < 600, (idle, peak)  # 232 MB more here; all 32 at once held 989 MB more
    assert max(health) < 3, max(health)  # liveness, not speed: it answered throughout (all at once: 4.3 s)


# --- part 3: wrong JSON types, huge numbers, deep nesting, non-finite outputs ------------------------

def spiral(**changes) -> bytes:
    tensor = {"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.2], **changes.pop("input", {})}
    request = {"inputs": [tensor], **changes}
    return json.dumps(request).encode()


DEEP = {depth: b'{"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": '
               + b"[" * depth + b"]" * depth + b"}]}" for depth in (5_000, 100_000)}
WRONG_TYPES = {
    "datatype as a list": (spiral(input={"datatype": ["FP32"]}), "inputs[0].datatype"),
    "datatype as an object": (spiral(input={"datatype": {"FP32": 1}}), "inputs[0].datatype"),
    "name as a list": (spiral(input={"name": ["features"]}), "inputs[0].name"),
    "name as an object": (spiral(input={"name": {"features": 1}}), "inputs[0].name"),
    "request parameters as a string": (spiral(parameters="binary"), "'parameters'"),
    "request parameters as a list": (spiral(parameters=[1]), "'parameters'"),
    "request parameters as an int": (spiral(parameters=1), "'parameters'"),
    "input parameters as a string": (spiral(input={"parameters": "x"}), "inputs[0].parameters"),
    "input parameters as a list": (spiral(input={"parameters": []}), "inputs[0].parameters"),
    "input parameters as an int": (spiral(input={"parameters": 7}), "inputs[0].parameters"),
    "output parameters as a string": (spiral(outputs=[{"name": "logits", "parameters": "x"}]), "outputs[0].parameters"),
    "output parameters as a list": (spiral(outputs=[{"name": "logits", "parameters": [1]}]), "outputs[0].parameters"),
    "output parameters as an int": (spiral(outputs=[{"name": "logits", "parameters": 3}]), "outputs[0].parameters"),
    "a 5,000-digit integer": (spiral(input={"data": "@"}).replace(b'"@"', b"[1" + b"0" * 5000 + b", 0]"),
                              "too large"),
    "a 5,000-digit shape": (spiral(input={"shape": "@"}).replace(b'"@"', b"[1" + b"0" * 5000 + b", 2]"), "too large"),
    "nesting 5,000 deep": (DEEP[5_000], "nested too deeply"),
    "nesting 100,000 deep": (DEEP[100_000], "nested too deeply"),
    "binary_data_size as a string": (spiral(input={"parameters": {"binary_data_size": "8"}}),
                                     "inputs[0].parameters.binary_data_size"),
    "shape of booleans": (spiral(input={"shape": [True, 2]}), "inputs[0].shape[0]"),
    "classification as a float": (spiral(outputs=[{"name": "logits", "parameters": {"classification": 1.5}}]),
                                  "outputs[0].parameters.classification"),
}


@pytest.mark.parametrize("case", WRONG_TYPES, ids=list(WRONG_TYPES))
def test_wrong_json_types_are_400_naming_the_field(server, case):
    """Sent to an image model, whose request size limit lets even the 100,000-deep body be parsed."""
    url, _ = server
    request, fragment = WRONG_TYPES[case]
    code, answer = infer(url, "mnist-cnn", request)
    assert code == 400 and fragment in answer["error"], answer


@pytest.mark.parametrize("model_id, request_body, fragment", [
    ("spiral-mlp", b'{"features": [1' + b"0" * 400 + b", 0]}", "field 'features[0]': Input should be a finite number"),
    ("diabetes-mlp", b'{"features": {"age": 1' + b"0" * 400 + b"}}", "field 'features.age'"),
    ("spiral-mlp", b'{"features": [1' + b"0" * 5000 + b", 0]}", "a number too large"),
    ("spiral-mlp", b'{"features": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ("spiral-mlp", b'{"features": "x"}', "field 'features': must be an object"),
    ("spiral-mlp", b'{"features": [true, 0]}', "field 'features[0]'"),
    ("hello-gru", b'{"text": "he", "state": {"h0": [[[1' + b"0" * 400 + b"]]]}}", "field 'state.h0[0][0][0]'"),
    ("hello-gru", b'{"text": "he", "state": {"h0": [[[3e39, 0, 0, 0, 0, 0, 0, 0]]]}}', "beyond float32's range"),
    ("hello-gru", b'{"text": "he", "state": {"h0": [[[1, 2], [3]]]}}', "[layers, batch, hidden]"),
    ("hello-gru", b'{"text": ["he"]}', "field 'text'"),
])
def test_api_predict_bad_numbers_are_400_naming_the_field(server, model_id, request_body, fragment):
    url, _ = server
    code, answer = call(f"{url}/api/predict?model={model_id}", request_body)
    assert code == 400 and fragment in answer["error"], answer


def test_non_finite_outputs_are_422_in_valid_json(server):
    """3e38 is a finite FP32, but through the model it overflows: refused, never NaN in the JSON."""
    url, _ = server
    huge = image_input(1, [3e38] * 784)
    code, answer = infer(url, "mnist-cnn", body(inputs=[huge]))
    assert code == 422 and "output 'logits' is NaN or infinite" in answer["error"], answer
    code, answer = infer(url, "mnist-cnn", body(inputs=[huge], outputs=[{"name": "logits",
                                                                         "parameters": {"classification": 3}}]))
    assert code == 422 and "nan:" not in json.dumps(answer), answer


def test_values_beyond_fp32_are_refused(server):
    url, _ = server
    code, answer = infer(url, "spiral-mlp", spiral(input={"data": [1e39, 0]}))
    assert code == 400 and "beyond FP32's range" in answer["error"], answer
