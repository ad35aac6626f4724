"""End-to-end latency of a live `python -m demo` server on localhost: gradio_client vs the plain
HTTP API, for a dataset-size PNG and a 300 px photo-like upload, and `GET /api/models` (every
model's description, ~170 KB). p50/p99 of sequential requests.

    python -m bench.app_latency [--n-gradio 200] [--n-http 1000]
"""
import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
from bench.report import print_table
from bench.wild_upload import render_wild
from demo.contract import load_split


def start_server(root: Path = ROOT, port: int = 0) -> tuple[subprocess.Popen, int]:
    """`python -m demo` from the code at `root` (another checkout: a baseline) -> (process, port).
    port 0: any free one."""
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "demo", "--port", str(port)], cwd=root,
                            env={**os.environ, "TINYZOO_PROVIDER": "cpu", "PYTHONPATH": str(root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=1)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server from {root} did not start on port {port}")


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def time_http(port: int, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)  # keep-alive, as a program would
    samples = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        conn.request("POST", "/api/classify?model=mnist-cnn", body, {"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}")
        if i >= 10:  # warm-up excluded
            samples.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return samples


def time_get(port: int, path: str, n: int) -> list[float]:
    """GET `path` n times on one keep-alive connection (10 warm-up calls first)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status}")
        if i >= 10:
            samples.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return samples


def time_gradio_rest(port: int, data: bytes, n: int) -> list[float]:
    """The Gradio server's own path without gradio_client's client-side machinery:
    POST /gradio_api/upload, POST /gradio_api/call/<api_name>, GET the result stream."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    boundary = "tinyzoo-bench"
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"digit.png\"\r\n"
              f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()

    def request(method: str, url: str, body=None, headers=None) -> bytes:
        conn.request(method, url, body, headers or {})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status} {payload[:200]!r}")
        return payload

    samples = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        path = json.loads(request("POST", "/gradio_api/upload", upload,
                                  {"Content-Type": f"multipart/form-data; boundary={boundary}"}))[0]
        call = {"data": ["mnist-cnn", {"path": path, "meta": {"_type": "gradio.FileData"}}]}
        event = json.loads(request("POST", "/gradio_api/call/classify_mnist_upload", json.dumps(call),
                                   {"Content-Type": "application/json"}))["event_id"]
        result = request("GET", f"/gradio_api/call/classify_mnist_upload/{event}")
        if b"event: complete" not in result:
            raise SystemExit(f"no result: {result[:200]!r}")
        if i >= 5:
            samples.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return samples


def time_gradio(client: Client, n: int, *args, api_name: str) -> list[float]:
    samples = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        client.predict(*args, api_name=api_name)
        if i >= 5:
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-gradio", type=int, default=200)
    p.add_argument("--n-http", type=int, default=1000)
    args = p.parse_args()

    images, _ = load_split("mnist", "test")
    small = io.BytesIO()
    Image.fromarray(images[0]).save(small, format="PNG")
    photo, _ = render_wild(images[0], np.random.default_rng(1))
    uploads = {"28x28 PNG": small.getvalue(), f"{Image.open(io.BytesIO(photo)).size[0]} px wild photo": photo}

    proc, port = start_server()
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        no_downloads = Client(f"http://127.0.0.1:{port}", verbose=False, download_files=False)
        # gradio_client's own floor: a 1-weight model, number in, number out, nothing to upload
        rows = [("gradio_client, floor (linear-regression: number in, number out)", "none", args.n_gradio,
                 *percentiles(time_gradio(client, args.n_gradio, 4, api_name="/predict_linear")))]
        rows.append(("HTTP API (keep-alive), GET /api/models", "none", args.n_http // 10,
                     *percentiles(time_get(port, "/api/models", args.n_http // 10))))
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in uploads.items():
                path = Path(tmp) / "upload.png"
                path.write_bytes(data)
                rows.append(("HTTP API (keep-alive)", name, args.n_http, *percentiles(time_http(port, data, args.n_http))))
                rows.append(("Gradio REST (upload + call + result)", name, args.n_gradio,
                             *percentiles(time_gradio_rest(port, data, args.n_gradio))))
                for label, gradio in (("gradio_client", client),
                                      ("gradio_client, download_files=False", no_downloads)):
                    rows.append((label, name, args.n_gradio, *percentiles(time_gradio(
                        gradio, args.n_gradio, "mnist-cnn", handle_file(str(path)), api_name="/classify_mnist_upload"))))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"\nlocalhost, {os.cpu_count()} CPU cores, model mnist-cnn on CPUExecutionProvider, sequential requests")
    print_table(["client", "upload", "requests", "p50 ms", "p99 ms"],
                [(client_name, upload, n, f"{p50:.2f}", f"{p99:.2f}") for client_name, upload, n, p50, p99 in rows],
                text_columns=2)


if __name__ == "__main__":
    main()
