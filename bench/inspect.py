"""Look-inside latency on a live `python -m demo` server (issue 25): p50 of POST /api/inspect per image
model, the all-models table (server-side, ten MNIST files), and /api/classify before and after in the
same run (the hot path must not move: inspection sessions are separate).

    python -m bench.inspect [--n 50] [--n-classify 300]
"""
import argparse
import http.client
import json
import time

import numpy as np

from bench.app_latency import start_server
from bench.report import print_table
from demo.contract import read_examples
from demo.inference.runtime import default_models_dir

TARGETS_MS = {"mnist-cnn": 30, "mnist-resnet": 250}  # the p50 figures for /api/inspect
ALL_MODELS_TARGET_MS = 150


def timed(conn: http.client.HTTPConnection, path: str, body: bytes, n: int) -> tuple[list[float], list[dict]]:
    """n sequential POSTs (after 3 warm-ups) -> (wall milliseconds each, the JSON answers)."""
    samples, answers = [], []
    for i in range(n + 3):
        started = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status} {payload[:200]!r}")
        if i >= 3:
            samples.append((time.perf_counter() - started) * 1000)
            answers.append(json.loads(payload))
    return samples, answers


def p50(samples: list[float]) -> float:
    return float(np.percentile(samples, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="requests per model for /api/inspect")
    parser.add_argument("--n-classify", type=int, default=300, help="requests for /api/classify, before and after")
    args = parser.parse_args()
    models = json.loads((default_models_dir() / "manifest.json").read_text())["models"]
    images = {d: read_examples(default_models_dir(), d)[7].path.read_bytes() for d in ("mnist", "fashion")}
    proc, port = start_server()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        before = p50(timed(conn, "/api/classify?model=mnist-cnn", images["mnist"], args.n_classify)[0])
        rows = []
        for model_id, row in models.items():
            if row.get("task") != "image-classification":
                continue
            samples, answers = timed(conn, f"/api/inspect?model={model_id}", images[row["dataset"]], args.n)
            answer = answers[-1]
            values = sum(int(np.prod(t["shape"])) for t in answer["taps"])
            target = TARGETS_MS.get(model_id)
            rows.append([model_id, f"{p50(samples):.1f}", f"{np.percentile(samples, 99):.1f}", len(answer["taps"]),
                         f"{values:,}", f"<= {target}" if target else ""])
        print_table(["model", "inspect p50 ms", "p99 ms", "taps", "values", "target"], rows)
        table = []
        for dataset in ("mnist", "fashion"):
            samples, answers = timed(conn, f"/api/inspect/all?dataset={dataset}", images[dataset], args.n)
            table.append([dataset, len(answers[0]["rows"]), f"{p50(samples):.1f}",
                          f"{p50([a['total_ms'] for a in answers]):.1f}",
                          f"<= {ALL_MODELS_TARGET_MS}" if dataset == "mnist" else ""])
        print_table(["all models", "files", "request p50 ms", "server-side p50 ms", "target"], table)
        after = p50(timed(conn, "/api/classify?model=mnist-cnn", images["mnist"], args.n_classify)[0])
        print_table(["/api/classify mnist-cnn", "p50 ms"], [["before any inspection", f"{before:.2f}"],
                                                             ["after every model was inspected", f"{after:.2f}"]])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
