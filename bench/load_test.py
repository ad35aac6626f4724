"""Load test against a local `python -m demo` (loopback only, bounded in time): N concurrent
clients for D seconds, each alternating Gradio REST calls (upload + call + result) and HTTP API
calls. Reports requests/s, p50/p99 per kind, errors, and the server's RSS before and after.

    python -m bench.load_test                    # 32 clients, 60 s
    python -m bench.load_test --clients 8 --seconds 10
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
from training.data import load_split

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


def run_load(port: int, uploads: list[bytes], clients: int, seconds: float, kinds=("HTTP API", "Gradio")):
    """-> ({kind: [(ms, ok), ...]}, elapsed seconds); each client alternates Gradio and HTTP API."""
    results: dict[str, list[tuple[float, bool]]] = {"HTTP API": [], "Gradio": []}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        client, n = Client(port), index
        while time.perf_counter() < deadline:
            kind = kinds[n % len(kinds)]
            image = uploads[n % len(uploads)]
            t0 = time.perf_counter()
            try:
                ok = client.gradio(image) if kind == "Gradio" else client.http_api(image)
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
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--only", choices=["both", "http", "gradio"], default="both", help="which calls to send")
    p.add_argument("--warmup", type=float, default=20, help="seconds of the same load before RSS is first read")
    args = p.parse_args()

    images, _ = load_split("mnist", "test")
    rng = np.random.default_rng(0)
    uploads = [render_wild(images[i], rng)[0] for i in range(64)]
    proc, port = start_server()
    try:
        # warm-up under the same load first: first-use allocations (arenas, caches, thread pools)
        # are not growth; RSS is compared from after it
        kinds = {"both": ("HTTP API", "Gradio"), "http": ("HTTP API",), "gradio": ("Gradio",)}[args.only]
        run_load(port, uploads, args.clients, args.warmup, kinds)
        rss_before = rss_mib(proc.pid)
        rss_samples, done = [], threading.Event()

        def sample_rss() -> None:  # growth that levels off is warm-up; growth that keeps going is a leak
            while not done.wait(args.seconds / 6):
                rss_samples.append(rss_mib(proc.pid))

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        results, elapsed = run_load(port, uploads, args.clients, args.seconds, kinds)
        done.set()
        sampler.join()
        rss_after = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)

    print(f"\n{args.clients} concurrent clients for {args.seconds:.0f} s against one local server "
          f"(wild-photo uploads, mnist-cnn, CPU)")
    table = []
    for kind, samples in results.items():
        if not samples:
            continue
        ms = [m for m, _ in samples]
        table.append((kind, f"{len(samples):,}", f"{len(samples) / elapsed:,.1f}", f"{np.percentile(ms, 50):.1f}",
                      f"{np.percentile(ms, 99):.1f}", sum(not ok for _, ok in samples)))
    print_table(["calls", "requests", "requests/s", "p50 ms", "p99 ms", "errors"], table)
    growth = (rss_after - rss_before) / rss_before
    print(f"\nserver RSS: {rss_before:.0f} MiB after a {args.warmup:.0f} s warm-up, {rss_after:.0f} MiB after the run "
          f"({growth:+.1%}); during the run, every {args.seconds / 6:.0f} s: {', '.join(f'{m:.0f}' for m in rss_samples)} MiB")


if __name__ == "__main__":
    main()
