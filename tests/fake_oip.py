"""A small Open Inference Protocol server on 127.0.0.1 that serves one image model and lies in
a chosen way: too few rows, wrong columns, NaN, other datatypes, a missing output, a shape or
header-length lie, bad JSON, a cut or dropped connection, a gigabyte answer, bad metadata.

It runs the real model (the local file, through ONNX Runtime) for the honest part of each answer,
so the rows it does not lie about are the local engine's rows. `mode` may change between runs;
`cycle` makes request k answer in cycle[k % len(cycle)] (modes spread over one run).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from demo.inference.protocol import HEADER_LENGTH, parse_request, read_inputs, split_body, tensor_metadata, tensor_specs

GIGABYTE = 1 << 30
PIECE = 1 << 20

# modes whose answer is wrong -> a fragment of the error row it must give
ANSWER_LIES = {
    "one-row-short": "has shape [3, 10]",
    "one-row": "has shape [1, 10]",
    "five-columns": "has shape [4, 5]",
    "twenty-columns": "has shape [4, 20]",
    "nan": "NaN or infinity",
    "inf": "NaN or infinity",
    "int32": "output 'logits' is INT32; the model gives FP32",
    "bytes": "output 'logits' is BYTES; the model gives FP32",
    "missing-output": "output 'logits' is missing",
    "other-name": "output 'logits' is missing",
    "twice": "gives output 'logits' twice",
    "shape-lie": "bytes of data; shape [4, 10] of FP32 needs 160",
    "json-rows-short": "its data is not a list of [4, 10] numbers",
    "json-strings": "its data is not a list of [4, 10] numbers",
    "header-length-long": f"its {HEADER_LENGTH} is",
    "header-length-word": f"its {HEADER_LENGTH} is 'ten'",
    "header-length-short": "it is not an inference answer (Invalid JSON",
    "binary-claim-long": "claims 99,999 bytes of binary data",
    "extra-bytes": "belong to no output",
    "bad-json": "it is not an inference answer (Invalid JSON",
    "not-an-answer": "it is not an inference answer (outputs",
    "http-500": "it refused the request (HTTP 500",
    "compressed": "it is compressed",
    "cut-off": "it was cut off after",
    "hang-up": "the server closed the connection without answering",
    "huge-declared": "it announced 1,073,741,824 bytes",
    "huge-streamed": "it ran past",
}
HONEST = ("honest", "honest-json")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session, model_id: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.session, self.model_id = session, model_id
        self.mode, self.metadata_mode, self.cycle = "honest", "honest", None
        self.lock = threading.Lock()
        self.requests = []  # (mode, rows) per inference request, in arrival order
        self.streamed = 0  # bytes of the last gigabyte answer the client took before hanging up

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def next_mode(self, rows: int) -> str:
        with self.lock:
            mode = self.cycle[len(self.requests) % len(self.cycle)] if self.cycle else self.mode
            self.requests.append((mode, rows))
            return mode

    def metadata(self) -> dict:
        return {"name": self.model_id, "versions": ["1"], "platform": "onnxruntime_onnx",
                "inputs": tensor_metadata(self.session.get_inputs()),
                "outputs": tensor_metadata(self.session.get_outputs())}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Triton

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = f"/v2/models/{self.server.model_id}"
        if self.path == f"{path}/ready":
            self.send(200, b"")
        elif self.path == path:
            self.send(200, metadata_answer(self.server.metadata(), self.server.metadata_mode))
        else:
            self.send(404, b'{"error": "no such model"}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request, binary = split_body(body, self.headers.get(HEADER_LENGTH))
        specs = tensor_specs(self.server.session.get_inputs(), lambda axis: 1 << 20)
        images = read_inputs(parse_request(request), binary, specs)["image"]
        logits = self.server.session.run(["logits"], {"image": images})[0]
        mode = self.server.next_mode(len(images))
        if mode in RAW_ANSWERS:
            RAW_ANSWERS[mode](self)
        else:
            headers, answer = infer_answer(mode, logits)
            self.send(200, answer, headers)

    def send(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), "Content-Type": "application/json",
                            **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def metadata_answer(metadata: dict, mode: str) -> bytes:
    """GET /v2/models/{id}, honest or lying."""
    if mode == "not-json":
        return b"<html>hello</html>"
    if mode == "shape-strings":
        metadata["outputs"][0]["shape"] = ["batch", "10"]
    if mode == "no-outputs":
        del metadata["outputs"]
    if mode == "other-model":
        metadata["outputs"][0]["shape"] = [-1, 5]
    return json.dumps(metadata).encode()


def binary_answer(tensors: list[tuple[str, str, list, bytes]], header_length=None, extra: bytes = b"",
                  claim: int | None = None) -> tuple[dict, bytes]:
    """[(name, datatype, shape, raw bytes)] -> headers, body of a binary-data answer (each
    tensor's binary_data_size its own length, or `claim`)."""
    header = json.dumps({"model_name": "m", "outputs": [
        {"name": name, "datatype": datatype, "shape": shape,
         "parameters": {"binary_data_size": len(raw) if claim is None else claim}}
        for name, datatype, shape, raw in tensors]}).encode()
    body = header + b"".join(raw for *_, raw in tensors) + extra
    return {HEADER_LENGTH: str(len(header) if header_length is None else header_length)}, body


def json_answer(outputs: list[dict]) -> tuple[dict, bytes]:
    return {}, json.dumps({"model_name": "m", "outputs": outputs}).encode()


def infer_answer(mode: str, logits: np.ndarray) -> tuple[dict, bytes]:
    """The answer's headers and body for `mode` (those that are a complete HTTP answer)."""
    n = len(logits)
    fp32 = lambda array: ("logits", "FP32", list(array.shape), array.astype("<f4").tobytes())  # noqa: E731
    tables = {
        "honest": lambda: binary_answer([fp32(logits)]),
        "honest-json": lambda: json_answer([{"name": "logits", "datatype": "FP32", "shape": [n, 10],
                                             "data": logits.ravel().tolist()}]),
        "one-row-short": lambda: binary_answer([fp32(logits[:-1])]),
        "one-row": lambda: binary_answer([fp32(logits[:1])]),
        "five-columns": lambda: binary_answer([fp32(logits[:, :5])]),
        "twenty-columns": lambda: binary_answer([fp32(np.hstack([logits, logits]))]),
        "nan": lambda: binary_answer([fp32(np.where(np.arange(10) == 3, np.nan, logits))]),
        "inf": lambda: binary_answer([fp32(np.where(np.arange(10) == 3, np.inf, logits))]),
        "int32": lambda: binary_answer([("logits", "INT32", [n, 10], logits.astype("<i4").tobytes())]),
        "bytes": lambda: json_answer([{"name": "logits", "datatype": "BYTES", "shape": [n, 10],
                                       "data": [str(x) for x in logits.ravel()]}]),
        "missing-output": lambda: json_answer([]),
        "other-name": lambda: binary_answer([("scores", *fp32(logits)[1:])]),
        "twice": lambda: binary_answer([fp32(logits), fp32(logits)]),
        "shape-lie": lambda: binary_answer([("logits", "FP32", [n, 10], logits[:, :5].astype("<f4").tobytes())]),
        "json-rows-short": lambda: json_answer([{"name": "logits", "datatype": "FP32", "shape": [n, 10],
                                                 "data": logits[:-1].tolist()}]),
        "json-strings": lambda: json_answer([{"name": "logits", "datatype": "FP32", "shape": [n, 10],
                                              "data": [str(x) for x in logits.ravel()]}]),
        "header-length-long": lambda: binary_answer([fp32(logits)], header_length=10 ** 9),
        "header-length-word": lambda: binary_answer([fp32(logits)], header_length="ten"),
        "header-length-short": lambda: binary_answer([fp32(logits)], header_length=20),
        "binary-claim-long": lambda: binary_answer([fp32(logits)], claim=99999),
        "extra-bytes": lambda: binary_answer([fp32(logits)], extra=b"\0" * 12),
        "bad-json": lambda: ({}, b'{"outputs": [{"name": "logits", '),
        "not-an-answer": lambda: ({}, b'{"error": "none of your business"}'),
        "compressed": lambda: ({"Content-Encoding": "gzip"}, b"\x1f\x8b not really"),
    }
    return tables[mode]()


def http_500(handler: Handler) -> None:
    handler.send(500, b'{"error": "out of memory\\n\\x1b[31m"}')


def cut_off(handler: Handler) -> None:
    """Half the answer it announced, then the connection closes."""
    headers, body = binary_answer([("logits", "FP32", [4, 10], bytes(160))])
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header(HEADER_LENGTH, headers[HEADER_LENGTH])
    handler.end_headers()
    handler.wfile.write(body[:len(body) // 2])
    handler.close_connection = True


def hang_up(handler: Handler) -> None:
    handler.close_connection = True


def huge(handler: Handler, declared: bool) -> None:
    """A gigabyte of zeros (announced, or streamed until the connection closes), sent until the
    client stops taking it; what it took is kept in server.streamed."""
    handler.send_response(200)
    handler.send_header("Content-Length" if declared else "Connection", str(GIGABYTE) if declared else "close")
    handler.end_headers()
    handler.close_connection = True
    sent, zeros = 0, bytes(PIECE)
    try:
        while sent < GIGABYTE:
            handler.wfile.write(zeros)
            sent += PIECE
    except OSError:  # the client hung up: what it took is what was sent before
        pass
    handler.server.streamed = sent


def trickle(handler: Handler) -> None:
    """A valid answer's headers, then its body one byte every 0.2 s."""
    headers, body = binary_answer([("logits", "FP32", [4, 10], bytes(160))])
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header(HEADER_LENGTH, headers[HEADER_LENGTH])
    handler.end_headers()
    try:
        for i in range(len(body)):
            handler.wfile.write(body[i:i + 1])
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass
    handler.close_connection = True


def stop_serving(handler: Handler) -> None:
    """The server goes away: this request gets no answer, the next ones find nobody listening."""
    handler.server.shutdown()
    handler.server.server_close()
    handler.close_connection = True


RAW_ANSWERS = {"http-500": http_500, "stop": stop_serving, "cut-off": cut_off, "hang-up": hang_up, "trickle": trickle,
               "huge-declared": lambda handler: huge(handler, declared=True),
               "huge-streamed": lambda handler: huge(handler, declared=False)}


def start(session, model_id: str) -> FakeServer:
    server = FakeServer(session, model_id)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: FakeServer) -> None:
    server.shutdown()
    server.server_close()


def lied_rows(server: FakeServer) -> int:
    """How many inputs got an answer that was not honest."""
    return sum(rows for mode, rows in server.requests if mode not in HONEST)
