"""/v2 under its largest requests: the server's peak and retained RSS, and how long /v2/health/live
waits meanwhile. Every model gets the largest request the limits allow (demo/inference/limits.py); then the
oversized attacks of issue 22 (refused with 413 by a server with limits). Seeded data, binary
tensors in, JSON out (as tritonclient sends them by default), one request at a time.

    python -m bench.v2_limits                           # this checkout
    python -m bench.v2_limits --root /work/main         # another checkout (a baseline)
    python -m bench.v2_limits --models mnist-resnet hello-rnn --no-attacks
"""
import argparse
import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np

from bench.app_latency import start_server
from bench.load_test import rss_mib
from bench.report import print_table
from demo.inference import limits
from demo.inference.runtime import ModelZoo

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.01


def binary_request(inputs: dict[str, np.ndarray]) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": name, "shape": list(a.shape), "datatype": {"f": "FP32", "i": "INT64"}[
        a.dtype.kind], "parameters": {"binary_data_size": a.nbytes}} for name, a in inputs.items()]}).encode()
    return header + b"".join(a.tobytes() for a in inputs.values()), {"Inference-Header-Content-Length": str(len(header))}


def largest_inputs(model, rng: np.random.Generator, batch: int | None = None, length: int | None = None) -> dict:
    """The largest request the limits allow (or `batch` rows / `length` tokens), seeded."""
    task = model.meta.task
    bound = limits.axis_limits(task, getattr(model, "max_length", None))
    batch = batch or bound.batch
    if task == "sequence-prediction":
        tokens = rng.integers(0, len(model.vocab), (batch, length or bound.sequence), dtype=np.int64)
        return {model.input_name: tokens, **model.zero_state(batch)}
    if task == "tabular":
        low, high = (np.array([getattr(f, k) for f in model.features], np.float32) for k in ("min", "max"))
        return {model.input_name: (low + rng.random((batch, len(low)), np.float32) * (high - low)).astype(np.float32)}
    return {model.input_name: rng.normal(0, 1, (batch, *model.input_shape)).astype(np.float32)}


class HealthPoller:
    """GET /v2/health/live back to back on a keep-alive connection; the longest wait while armed."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.worst, self.armed, self.stop = 0.0, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.conn.request("GET", "/v2/health/live")
            self.conn.getresponse().read()
            if self.armed.is_set():
                self.worst = max(self.worst, time.perf_counter() - started)
            time.sleep(POLL_S)


def measure(port: int, pid: int, poller: HealthPoller, model_id: str, body: bytes, headers: dict) -> dict:
    """One request: status, seconds, RSS before / peak / 1 s after, the worst health wait."""
    before, peak, done = rss_mib(pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(POLL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    poller.worst = 0.0
    poller.armed.set()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        conn.request("POST", f"/v2/models/{model_id}/infer", body, headers)
        response = conn.getresponse()
        status, answer = response.status, response.read()
    except (ConnectionError, http.client.HTTPException):  # the server cut the upload off: a refusal
        status, answer = "closed", b""
    seconds = time.perf_counter() - started
    poller.armed.clear()
    done.set()
    sampler.join()
    time.sleep(1)
    return {"status": status, "seconds": seconds, "before": before, "peak": max(peak[0], before),
            "after": rss_mib(pid), "health_ms": poller.worst * 1000, "answer_mib": len(answer) / 2**20}


def attacks(zoo: ModelZoo, rng: np.random.Generator) -> list[tuple[str, str, dict]]:
    """Issue 22's oversized requests, smaller where the original takes minutes on 2 cores."""
    return [("mnist-resnet", "batch 4000", largest_inputs(zoo.get("mnist-resnet"), rng, batch=4000)),
            ("spiral-mlp", "batch 3,000,000", largest_inputs(zoo.get("spiral-mlp"), rng, batch=3_000_000)),
            ("hello-rnn", "1 x 1,000,000 tokens", largest_inputs(zoo.get("hello-rnn"), rng, batch=1, length=1_000_000))]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose server is measured")
    p.add_argument("--models", nargs="*", help="model ids (default: all)")
    p.add_argument("--no-attacks", action="store_true", help="only the largest allowed requests")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    zoo, rng = ModelZoo(provider="cpu"), np.random.default_rng(args.seed)
    cases = [(i, "largest allowed", largest_inputs(zoo.get(i), rng)) for i in args.models or zoo.ids()]
    cases += [] if args.no_attacks else attacks(zoo, rng)
    proc, port = start_server(args.root)
    try:
        poller = HealthPoller(port)
        time.sleep(1)
        idle = rss_mib(proc.pid)
        rows = []
        for model_id, kind, inputs in cases:
            body, headers = binary_request(inputs)
            r = measure(port, proc.pid, poller, model_id, body, headers)
            shape = "x".join(map(str, next(iter(inputs.values())).shape))
            rows.append([model_id, kind, shape, r["status"], f"{r['seconds']:.2f}", f"{r['peak'] - r['before']:+.0f}",
                         f"{r['after'] - r['before']:+.0f}", f"{r['after']:.0f}", f"{r['health_ms']:.0f}",
                         f"{r['answer_mib']:.1f}"])
        poller.stop.set()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"server from {args.root}, idle RSS {idle:.0f} MiB, seed {args.seed}")
    print_table(["model", "request", "first input", "status", "s", "peak ΔRSS MiB", "retained ΔRSS MiB",
                 "RSS after MiB", "health worst ms", "answer MiB"], rows, text_columns=3)


if __name__ == "__main__":
    main()
