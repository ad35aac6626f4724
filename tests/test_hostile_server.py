"""A hostile caller against a live server: no file read outside Gradio's uploads, no 500, no hang.

Raw HTTP only (what an attacker sends, not what gradio_client would build), against a server of
our own with its own Gradio cache folder, so the FIFO and the symlink can be planted in it.
"""
import base64
import gzip
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from demo.imaging import prepare as preprocess
from demo.web.api import build_api
from demo.imaging.budget import DecodeBudget
from demo.imaging.prepare import ServerBusyError
from demo.web.uploads import REFUSED
from tests.conftest import drawn_digit_png, running_server

CACHE_LIMIT_MB = 2
BODY_DEADLINE_S = 4  # the served app's (60 s by default): a trickled body is cut off this long after its head
FILE_INPUTS = {"image", "imageeditor", "sketchpad", "file", "gallery", "audio", "video", "model3d"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """-> (base URL, its Gradio cache folder, its log file)."""
    root = tmp_path_factory.mktemp("hostile")
    cache, log_path = root / "gradio", root / "server.log"
    with open(log_path, "w") as log, running_server(log, GRADIO_TEMP_DIR=str(cache),
                                                    TINYZOO_UPLOAD_CACHE_MB=str(CACHE_LIMIT_MB),
                                                    TINYZOO_BODY_DEADLINE_S=str(BODY_DEADLINE_S)) as (url, _):
        yield url, cache, log_path


def models_answer(url: str) -> bool:
    """The server is alive: /api/models answers within 2 s."""
    with urllib.request.urlopen(url + "/api/models", timeout=2) as response:
        return response.status == 200 and b'"models"' in response.read()


def gradio_call(url: str, api_name: str, data: list) -> tuple[str, object]:
    """POST /gradio_api/call/<api_name> then read the event stream -> (last event name, its data)."""
    body = json.dumps({"data": data}).encode()
    request = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event_id}", timeout=30) as response:
        stream = response.read().decode()
    event, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            payload = json.loads(line[6:])
    return event, payload


def upload(url: str, name: str, content: bytes) -> str:
    """Gradio's own upload route, as the browser uses it -> the server path of the stored file."""
    boundary = uuid.uuid4().hex
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/gradio_api/upload", form,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())[0]


def file_endpoints(url: str) -> dict[str, list[tuple[str, object]]]:
    """api_name -> [(component type, default value)] for every endpoint with a file-like input,
    read from the app's config so an endpoint added later is attacked too."""
    with urllib.request.urlopen(url + "/config", timeout=10) as response:
        config = json.loads(response.read())
    components = {c["id"]: c for c in config["components"]}
    endpoints = {}
    for dep in config["dependencies"]:
        inputs = [(components[i]["type"], components[i].get("props", {}).get("value")) for i in dep["inputs"]]
        if dep.get("api_name") and any(kind in FILE_INPUTS for kind, _ in inputs):
            endpoints[dep["api_name"]] = inputs
    return endpoints


def file_slots(kind: str, file: dict) -> list:
    """Every place a component of this kind takes a file: the Sketchpad's background, layers, composite."""
    if kind in ("imageeditor", "sketchpad"):
        return [{"background": file, "layers": [], "composite": None},
                {"background": None, "layers": [file], "composite": None},
                {"background": None, "layers": [], "composite": file}]
    return [file, [file]] if kind in ("file", "gallery") else [file]


def hostile_calls(url: str, paths: list[str]) -> list[tuple[str, list]]:
    """(api_name, data) for every file-taking endpoint x every file slot x every path, with and without meta."""
    calls = []
    for api_name, inputs in file_endpoints(url).items():
        for position, (kind, _) in enumerate(inputs):
            if kind not in FILE_INPUTS:
                continue
            for path in paths:
                for file in ({"path": path, "meta": {"_type": "gradio.FileData"}}, {"path": path}):
                    for slot in file_slots(kind, file):
                        data = [value for _, value in inputs]
                        data[position] = slot
                        calls.append((api_name, data))
    return calls


def planted_paths(cache: Path, tmp_path: Path) -> list[str]:
    """Server paths a caller must never get read: secrets, a real digit image outside the cache,
    nothing at all, a directory, an endless device, a FIFO and an outward symlink in the cache, `..`."""
    seven = tmp_path / "server-side-seven.png"
    seven.write_bytes(drawn_digit_png())
    planted = cache / "planted"
    planted.mkdir(parents=True, exist_ok=True)
    fifo = planted / "fifo.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    link = planted / "link.png"
    if not link.is_symlink():
        link.symlink_to(seven)
    return ["/etc/shadow", "/etc/passwd", str(seven), str(tmp_path / "missing.png"), "/etc", "/dev/zero",
            str(fifo), str(link), f"{cache}/../../../../../../etc/passwd", f"{planted}/{os.path.relpath(seven, planted)}"]


def test_control_a_real_upload_is_classified(server):
    """The attack tests below must be able to fail: the same endpoints do answer a real upload."""
    url, _, _ = server
    path = upload(url, "seven.png", drawn_digit_png())
    event, payload = gradio_call(url, "classify_mnist_upload", ["mnist-cnn", {"path": path, "meta": {"_type": "gradio.FileData"}}])
    assert event == "complete" and payload[0]["label"] == "7"
    assert payload[1] and payload[1]["url"]  # the 28x28 the model saw


def test_no_endpoint_reads_a_server_path(server, tmp_path):
    url, cache, log_path = server
    calls = hostile_calls(url, planted_paths(cache, tmp_path))
    endpoints = {api_name for api_name, _ in calls}
    # (classify_mnist_sketch takes no file: the Digits pad sends its drawing as a PNG data URL string)
    assert {"classify_mnist_upload", "classify_fashion_upload"} <= endpoints
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(gradio_call, url, api_name, data) for api_name, data in calls]
        while not all(f.done() for f in pending):  # during the attack: still answering
            assert models_answer(url)
            time.sleep(0.2)
        answers = [f.result() for f in pending]
    assert models_answer(url)  # and after
    for (api_name, data), (event, payload) in zip(calls, answers):
        # no label, no picture; one message whether the path exists, is a secret, a device or nothing
        assert (event, payload["error"]) == ("error", REFUSED), (api_name, data, payload)
    copied = {p.name for p in cache.rglob("*") if p.is_file()}
    assert not copied & {"passwd", "shadow", "server-side-seven.png"}  # nothing was copied into the cache either
    assert "Traceback" not in log_path.read_text()


def half_sent(url: str, request: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=60)
    if request:
        s.sendall(request)
    return s


def sent_before_closing(s: socket.socket) -> bytes | None:
    """Waits (up to the socket's 60 s timeout) for the server to drop the connection -> what it sent
    first; None if it never closed."""
    received = b""
    try:
        while chunk := s.recv(4096):
            received += chunk
        return received
    except ConnectionResetError:
        return received
    except TimeoutError:
        return None
    finally:
        s.close()


def timed_out_answer(sent: bytes | None) -> str:
    """A 408 with a JSON {"error"} -> its message."""
    assert sent is not None and sent.startswith(b"HTTP/1.1 408 "), sent
    return json.loads(sent.partition(b"\r\n\r\n")[2])["error"]


def test_idle_and_half_sent_connections_time_out(server):
    url, _, _ = server
    body_start = b"POST /api/classify?model=mnist-cnn HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\x89PNG"
    stalled = {
        "connects and says nothing": half_sent(url, b""),
        "half a request head": half_sent(url, b"GET /api/models HTTP/1.1\r\nHost: x\r\n"),
        "a head and half a body": half_sent(url, body_start),
        "a keep-alive connection left idle": half_sent(url, b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n"),
    }
    drip = half_sent(url, b"GET /api/models HTTP/1.1\r\n")
    dripping = threading.Event()

    def slowloris() -> None:  # one header byte a second: its deadline runs from the head's first byte
        try:
            while not dripping.wait(1):
                drip.sendall(b"X")
        except OSError:
            pass

    threading.Thread(target=slowloris, daemon=True).start()
    assert models_answer(url)  # the stalled connections hold nothing up
    with ThreadPoolExecutor(len(stalled) + 1) as pool:
        sent = dict(zip([*stalled, "slowloris"], pool.map(sent_before_closing, [*stalled.values(), drip])))
    dripping.set()
    assert None not in sent.values(), sent  # every one was closed
    # a request begun and left unfinished is answered; a connection with no request under way is only closed
    for name in ("half a request head", "slowloris"):
        assert "the request head did not arrive within 10 s" in timed_out_answer(sent[name])
    # here the body's deadline (4 s) comes before its stall timeout (10 s)
    assert f"body did not arrive within {BODY_DEADLINE_S} s" in timed_out_answer(sent["a head and half a body"])
    assert sent["connects and says nothing"] == b""
    assert sent["a keep-alive connection left idle"].startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 408" not in sent["a keep-alive connection left idle"]
    assert models_answer(url)


def test_a_trickled_body_is_cut_off_at_the_deadline(server):
    """A byte a second never stalls long enough for the idle timeout; the body deadline ends it."""
    url, _, log_path = server
    logged_before = len(log_path.read_text())
    trickles = [half_sent(url, b"POST /api/classify?model=mnist-cnn HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 1000\r\n\r\n\x89") for _ in range(8)]
    stop = threading.Event()

    def trickle(s: socket.socket) -> None:
        try:
            while not stop.wait(1):
                s.sendall(b"P")
        except OSError:  # closed by the server
            pass

    for s in trickles:
        threading.Thread(target=trickle, args=(s,), daemon=True).start()
    with ThreadPoolExecutor(len(trickles)) as pool:  # each waits up to 60 s, far past the deadline
        sent = list(pool.map(sent_before_closing, trickles))
    stop.set()
    for answer in sent:
        assert f"did not arrive within {BODY_DEADLINE_S} s" in timed_out_answer(answer)
    assert models_answer(url)
    log = log_path.read_text()[logged_before:]
    assert log.count("gave up on a request from") == len(trickles) and "disconnected during" not in log


@pytest.mark.parametrize("route, body", [
    ("call/no-such-endpoint", {"data": []}),
    ("run/predict", {"data": []}),
    ("queue/join", {"data": [], "fn_index": 999, "session_hash": "abc"}),
    ("queue/join", {"data": [], "fn_index": -1, "session_hash": "abc"}),
])
def test_an_event_no_page_defines_is_a_404(server, route, body):
    url, _, log_path = server
    request = urllib.request.Request(f"{url}/gradio_api/{route}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    assert "GET /gradio_api/info lists" in json.loads(refused.value.read())["detail"]
    assert "Traceback" not in log_path.read_text()


def test_a_crafted_gallery_select_is_a_message(server):
    """The examples gallery's select event with event_data a browser never sends: an error message,
    no "list index out of range", no traceback."""
    url, _, log_path = server
    with urllib.request.urlopen(url + "/config", timeout=10) as response:
        config = json.loads(response.read())
    galleries = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id", "").endswith("-examples")}
    fn_index = next(i for i, dep in enumerate(config["dependencies"])
                    if any(target in galleries and event == "select" for target, event in dep["targets"]))
    trigger = next(target for target, _ in config["dependencies"][fn_index]["targets"])
    for event_data in ({"index": 999, "value": None}, {"index": "x"}, {"index": [1, 2]}, {}, None):
        outcome = queued_event(url, fn_index, trigger, event_data)
        assert outcome["success"] is False and "pick one of the 10 pictures" in outcome["output"]["error"], outcome
    assert queued_event(url, fn_index, trigger, {"index": 3, "value": None})["success"] is True  # the control
    assert "Traceback" not in log_path.read_text()


def queued_event(url: str, fn_index: int, trigger: int, event_data, data: list = ()) -> dict:
    """Join Gradio's queue as the browser does for an event, then read the stream -> the completion message."""
    session = uuid.uuid4().hex
    join = json.dumps({"data": list(data), "event_data": event_data, "fn_index": fn_index, "trigger_id": trigger,
                       "session_hash": session}).encode()
    request = urllib.request.Request(url + "/gradio_api/queue/join", join, {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
    with urllib.request.urlopen(f"{url}/gradio_api/queue/data?session_hash={session}", timeout=30) as stream:
        for line in stream:
            message = json.loads(line[5:]) if line.startswith(b"data:") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the queue stream ended without a completion")


NOT_SENT_BY_A_PAGE = [(None, "nothing (null)"), (float("nan"), "NaN"), ("abc", "'abc'"), ([1], "a JSON list")]


@pytest.mark.parametrize("value, described", NOT_SENT_BY_A_PAGE)
def test_a_value_no_control_sends_is_refused_naming_the_input(server, value, described):
    """NaN, null, text or a list where a slider's number or a model's id goes: "input <label>: what it
    needs, got what", not a Python exception's text, and no traceback."""
    url, _, log_path = server
    image = {"url": "data:image/png;base64," + base64.b64encode(drawn_digit_png()).decode(),
             "meta": {"_type": "gradio.FileData"}}
    with urllib.request.urlopen(url + "/config", timeout=10) as response:
        config = json.loads(response.read())
    epoch = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "hello-epoch")
    fn_index = next(i for i, dep in enumerate(config["dependencies"])
                    if any(target == epoch for target, _ in dep["targets"]) and dep["inputs"][-1] == epoch)
    cases = [(gradio_call(url, "predict_logistic", [value])[1]["error"], 'input "x": a number is needed'),
             (queued_event(url, fn_index, epoch, None, ["hello-rnn", value])["output"]["error"],
              'input "training epoch: the prediction after it": a number is needed')]
    if not isinstance(value, str):  # text is a model's id to check against the list (Gradio's own message)
        cases.append((gradio_call(url, "classify_mnist_upload", [value, image])[1]["error"],
                      'input "model (test accuracy)": text is needed'))
    for error, needed in cases:
        assert error == f"{needed}, got {described}", error
    left_out = gradio_call(url, "classify_mnist_upload", ["mnist-cnn"])[1]["error"]
    assert left_out == "this call takes 2 inputs (model (test accuracy), or upload a handwritten digit), got 1"
    assert "Traceback" not in log_path.read_text()


def test_client_disconnect_is_one_log_line(server):
    url, _, log_path = server
    half_sent(url, b"POST /api/classify?model=mnist-cnn HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nabc").close()
    half_sent(url, b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                   b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n").close()
    expected = ("disconnected during POST /api/classify", "disconnected during POST /gradio_api/upload")
    deadline = time.time() + 20  # the log is the module's: wait for these two lines, not for any two
    while not all(line in log_path.read_text() for line in expected) and time.time() < deadline:
        time.sleep(0.2)
    log = log_path.read_text()
    assert all(line in log for line in expected), log
    assert "Traceback" not in log and "ClientDisconnect" not in log
    assert models_answer(url)


def cached_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and not p.is_symlink())


def test_upload_cache_is_bounded_by_size(server):
    """Non-image uploads of 1 MiB each into a cache bounded at 2 MiB: the newest stay, the oldest go."""
    url, cache, _ = server
    before = cached_bytes(cache)
    paths = [upload(url, f"junk{i}.bin", os.urandom(2**20)) for i in range(6)]
    assert Path(paths[-1]).is_file() and not Path(paths[0]).exists()
    assert cached_bytes(cache) - before <= CACHE_LIMIT_MB * 2**20


@pytest.mark.parametrize("head", [
    b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    b"POST /api/classify?model=" + b"m" * 100_000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"GET /api/models HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 3000,  # never ends: no blank line
], ids=["one long header", "a long query", "many headers"])
def test_a_request_head_over_16_kib_is_refused_whole_or_in_pieces(server, head):
    url, _, log_path = server
    s = half_sent(url, head)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 431") and b"larger than 16 KiB" in rest, answer[:300]
    assert models_answer(url) and "Traceback" not in log_path.read_text()


def raw_request(url: str, method: str, path: str, body=b"", headers=None, chunked=False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
    try:
        try:
            conn.request(method, path, body, headers or {}, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent: read its answer
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def two_file_form(boundary: str, size: int):
    """A multipart form of two files of `size` bytes each, as chunks (each file under max_file_size)."""
    for i in range(2):
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big{i}.bin\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(size // 2**20):
            yield bytes(2**20)
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_request_body_is_at_most_one_upload(server, chunked):
    """Gradio's upload route takes up to 1000 files of 50 MiB in one request; the server, one upload's worth."""
    url, _, log_path = server
    size = 30 * 2**20
    headers = {"Content-Type": "multipart/form-data; boundary=big"}
    if not chunked:
        headers["Content-Length"] = str(2 * size + 500)
    status, body = raw_request(url, "POST", "/gradio_api/upload", two_file_form("big", size), headers, chunked)
    assert status == 413 and "larger than" in body["error"]
    assert models_answer(url)
    assert "Traceback" not in log_path.read_text()


@pytest.mark.parametrize("path", ["/api/classify?model=mnist-cnn", "/api/predict?model=hello-rnn",
                                  "/v2/models/mnist-cnn/infer", "/gradio_api/upload"])
def test_a_compressed_body_is_refused_as_such(server, path):
    """Read as sent, a gzipped PNG was refused as 'not an image'; no route decompresses a body."""
    url, _, log_path = server
    status, body = raw_request(url, "POST", path, gzip.compress(drawn_digit_png()), {"Content-Encoding": "gzip"})
    assert status == 415 and body["error"].startswith("Content-Encoding 'gzip' is not accepted"), body
    status, _ = raw_request(url, "POST", "/api/classify?model=mnist-cnn", drawn_digit_png(),
                            {"Content-Encoding": "identity"})
    assert status == 200
    assert "Traceback" not in log_path.read_text()


def test_a_body_framed_two_ways_is_refused(server):
    """Content-Length and chunked together: a proxy in front may frame the body by the other one
    (request smuggling), so neither is taken."""
    url, _, _ = server
    sent = sent_before_closing(half_sent(url, b"POST /api/classify?model=mnist-cnn HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
    assert sent.startswith(b"HTTP/1.1 400 "), sent
    assert b'{"error": "Content-Length and Transfer-Encoding together' in sent


@pytest.mark.parametrize("query, fragment", [
    ("", "query parameter 'model' is required"),
    ("?model=mnist-cnn&top_k=abc", "query parameter 'top_k'"),
])
def test_bad_parameters_use_the_error_shape(server, query, fragment):
    status, body = raw_request(server[0], "POST", f"/api/classify{query}", drawn_digit_png())
    assert status == 400 and set(body) == {"error"} and fragment in body["error"], body


def test_multipart_upload_says_send_raw_bytes(server):
    boundary = "hostile"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n\r\n").encode() \
        + drawn_digit_png() + f"\r\n--{boundary}--\r\n".encode()
    status, body = raw_request(server[0], "POST", "/api/classify?model=mnist-cnn", form,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 415 and "raw bytes" in body["error"] and "--data-binary" in body["error"]


# the decode memory budget, in process: it serializes or refuses, it never lets decodes pile up

def test_budget_serializes_decodes_that_do_not_fit_together():
    budget = DecodeBudget(limit_bytes=100, bytes_per_pixel=1, wait_s=30, refusal=ServerBusyError)
    first_in, release_first, second_in = threading.Event(), threading.Event(), threading.Event()

    def decode(entered: threading.Event, release: threading.Event | None) -> None:
        with budget.scope():
            with budget.decoding(8, 8):  # 64 of 100 bytes: two cannot run at once
                entered.set()
            if release:
                release.wait(30)  # still in the scope: its share is still held

    first = threading.Thread(target=decode, args=(first_in, release_first))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=decode, args=(second_in, None))
    second.start()
    assert not second_in.wait(0.5) and budget.used == 64  # waiting, not decoding beside the first
    release_first.set()
    assert second_in.wait(30)
    first.join(30)
    second.join(30)
    assert budget.used == 0


def test_budget_refuses_when_it_stays_spent():
    budget = DecodeBudget(limit_bytes=100, bytes_per_pixel=1, wait_s=0.05, refusal=ServerBusyError)
    with budget.decoding(10, 10), pytest.raises(ServerBusyError, match="busy"), budget.decoding(1, 1):
        pass
    with budget.decoding(1000, 1000):  # larger than the whole budget: alone, it may use all of it
        assert budget.used == 100
    assert budget.used == 0


def test_budget_holds_through_nested_scopes_and_skips_only_negligible_decodes():
    budget = DecodeBudget(limit_bytes=10**8, bytes_per_pixel=12, wait_s=0.05, refusal=ServerBusyError)
    with budget.scope():
        with budget.scope():
            with budget.decoding(100, 100):  # 120 KB: counted
                pass
        assert budget.used == 120_000  # the inner scope ended, the outer still holds it
    assert budget.used == 0
    with budget.hold(budget.limit_bytes):  # spent by others
        with budget.decoding(28, 28):  # 9,408 bytes, under 1/10,000 of the budget: not counted, never waits
            assert budget.used == budget.limit_bytes
        with pytest.raises(ServerBusyError), budget.decoding(30, 30):  # 10,800 bytes: counted, so refused
            pass


@pytest.fixture
def spent_budget(monkeypatch):
    """demo.imaging.prepare's budget replaced by a small one that another request holds entirely."""
    budget = DecodeBudget(limit_bytes=10**6, bytes_per_pixel=12, wait_s=0.05, refusal=ServerBusyError)
    monkeypatch.setattr(preprocess, "DECODE_BUDGET", budget)
    with budget.hold(budget.limit_bytes):
        yield budget


def test_decoding_waits_for_the_budget_then_refuses(zoo, spent_budget):
    with pytest.raises(ServerBusyError):
        zoo.get("mnist-cnn").classify(drawn_digit_png())


def test_http_api_answers_503_when_the_budget_stays_spent(zoo, spent_budget):
    client = TestClient(build_api(zoo))
    response = client.post("/api/classify?model=mnist-cnn", content=drawn_digit_png())
    assert response.status_code == 503 and "busy" in response.json()["error"]
    assert response.headers["retry-after"]


# the Sketchpad's drawings held in memory by Gradio's accept_blobs server function

def blob_form(boundary: str, component_id: int, **fields) -> bytes:
    fields = {"component_id": component_id, "session_hash": "hostile", "fn_name": "accept_blobs", **fields}
    form = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                    for k, v in fields.items())
    return form + (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"blob\"\r\n"
                   f"Content-Type: image/png\r\n\r\n").encode() + drawn_digit_png(28) + f"\r\n--{boundary}--\r\n".encode()


def test_no_component_keeps_drawings_in_memory(server):
    """Gradio's Sketchpad / ImageEditor keep every blob a caller sends (index=10**9 once built an 8 GB
    layer list): the app has none (the pad is a canvas that sends one PNG), and a blob sent to any
    of its components is refused."""
    url, _, log_path = server
    with urllib.request.urlopen(url + "/config", timeout=10) as response:
        components = json.loads(response.read())["components"]
    assert not [c for c in components if c["type"] in ("imageeditor", "sketchpad")]
    status, _ = raw_request(url, "POST", "/gradio_api/component_server",
                            blob_form("b", components[0]["id"], type="layer", index=10**9, id="huge"),
                            {"Content-Type": "multipart/form-data; boundary=b"})
    assert 400 <= status < 500
    assert models_answer(url)
    assert "Traceback" not in log_path.read_text()
