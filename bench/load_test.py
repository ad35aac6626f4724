"""Load test against a local `python -m demo` (loopback only, bounded in time): N concurrent
clients for D seconds, each going round Gradio REST calls (upload + call + result), HTTP API calls
and /v2 inference (a binary mnist-cnn tensor). Reports requests/s, p50/p99 per kind, errors, and
the server's RSS after a warm-up and after each of R rounds on the same server.

    python -m bench.load_test                                  # 32 clients, one 60 s round
    python -m bench.load_test --clients 48 --seconds 60 --rounds 3
"""
import argparse
import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np

from bench.app_latency import start_server
from bench.report import print_table
from bench.wild_upload import render_wild
from demo.contract import load_split

BOUNDARY = "tinyzoo-load"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, port: int, timeout: float = 60):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, url: str, body=None, headers=None) -> tuple[int, bytes]:
        self.conn.request(method, url, body, headers or {})
        response = self.conn.getresponse()
        return response.status, response.read()

    def http_api(self, image: bytes) -> bool:
        status, body = self.request("POST", "/api/classify?model=mnist-cnn", image,
                                    {"Content-Type": "application/octet-stream"})
        return status == 200 and b'"label"' in body

    def v2(self, tensor: bytes) -> bool:
        header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                                         "parameters": {"binary_data_size": len(tensor)}}],
                             "outputs": [{"name": "logits", "parameters": {"classification": 1}}]}).encode()
        status, body = self.request("POST", "/v2/models/mnist-cnn/infer", header + tensor,
                                    {"Content-Type": "application/octet-stream",
                                     "Inference-Header-Content-Length": str(len(header))})
        return status == 200 and b'"outputs"' in body

    def gradio(self, image: bytes) -> bool:
        return b"event: complete" in self.gradio_events(image)

    def gradio_events(self, image: bytes) -> bytes:
        """Upload, call, read the result as the browser does -> the event stream (b"" on an HTTP error)."""
        form = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"d.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()
        status, body = self.request("POST", "/gradio_api/upload", form,
                                    {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        if status != 200:
            return b""
        call = {"data": ["mnist-cnn", {"path": json.loads(body)[0], "meta": {"_type": "gradio.FileData"}}]}
        status, body = self.request("POST", "/gradio_api/call/classify_mnist_upload", json.dumps(call),
                                    {"Content-Type": "application/json"})
        if status != 200:
            return b""
        status, body = self.request("GET", f"/gradio_api/call/classify_mnist_upload/{json.loads(body)['event_id']}")
        return body if status == 200 else b""


KINDS = ("HTTP API", "Gradio", "/v2")


def call(client: Client, kind: str, image: bytes, tensor: bytes) -> bool:
    if kind == "Gradio":
        return client.gradio(image)
    return client.v2(tensor) if kind == "/v2" else client.http_api(image)


def run_load(port: int, uploads: list[bytes], clients: int, seconds: float, kinds=KINDS):
    """-> ({kind: [(ms, ok), ...]}, elapsed seconds); each client goes round the kinds."""
    results: dict[str, list[tuple[float, bool]]] = {kind: [] for kind in kinds}
    tensor = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32).tobytes()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        client, n = Client(port), index
        while time.perf_counter() < deadline:
            kind = kinds[n % len(kinds)]
            image = uploads[n % len(uploads)]
            t0 = time.perf_counter()
            try:
                ok = call(client, kind, image, tensor)
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                ok, client = False, Client(port)
            with lock:
                results[kind].append(((time.perf_counter() - t0) * 1000, ok))
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60, help="length of one round")
    p.add_argument("--rounds", type=int, default=1, help="rounds against the same server, RSS read after each")
    p.add_argument("--only", choices=["all", "http", "gradio", "v2"], default="all", help="which calls to send")
    p.add_argument("--warmup", type=float, default=20, help="seconds of the same load before RSS is first read")
    args = p.parse_args()

    images, _ = load_split("mnist", "test")
    rng = np.random.default_rng(0)
    uploads = [render_wild(images[i], rng)[0] for i in range(64)]
    kinds = {"all": KINDS, "http": ("HTTP API",), "gradio": ("Gradio",), "v2": ("/v2",)}[args.only]
    proc, port = start_server()
    try:
        # warm-up under the same load first: first-use allocations (arenas, caches, thread pools)
        # are not growth; RSS is compared from after it
        run_load(port, uploads, args.clients, args.warmup, kinds)
        rss = [rss_mib(proc.pid)]
        rounds = []
        for _ in range(args.rounds):
            rounds.append(run_load(port, uploads, args.clients, args.seconds, kinds))
            rss.append(rss_mib(proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
    report(args, rounds, rss)


def report(args, rounds, rss: list[float]) -> None:
    print(f"\n{args.clients} concurrent clients, {args.rounds} round(s) of {args.seconds:.0f} s against one local "
          f"server (wild-photo uploads and a /v2 tensor, mnist-cnn, CPU)")
    table = []
    for number, (results, elapsed) in enumerate(rounds, 1):
        for kind, samples in results.items():
            if not samples:
                continue
            ms = [m for m, _ in samples]
            table.append((number, kind, f"{len(samples):,}", f"{len(samples) / elapsed:,.1f}",
                          f"{np.percentile(ms, 50):.1f}", f"{np.percentile(ms, 99):.1f}",
                          sum(not ok for _, ok in samples)))
    print_table(["round", "calls", "requests", "requests/s", "p50 ms", "p99 ms", "errors"], table)
    print(f"\nserver RSS: {rss[0]:.0f} MiB after a {args.warmup:.0f} s warm-up, then after each round: "
          f"{', '.join(f'{m:.0f}' for m in rss[1:])} MiB ({(rss[-1] - rss[0]) / rss[0]:+.1%} in all)")


if __name__ == "__main__":
    main()
