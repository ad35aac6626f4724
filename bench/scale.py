"""`tinyzoo classify` rows/s: the local engine (worker processes) against --engine ray (Ray Data
actors), same files, same model, one run, side by side. The Ray figure is a warm cluster (the
job alone); its first job, actor start-up included, is a row of its own. Two input sizes show
Ray's fixed cost per job (planning, actor start, model load) against its per-row rate.

    python -m bench.scale                          # 2,000 and 8,000 28x28 PNGs (Fashion-MNIST test), a local Ray
    python -m bench.scale --ray-address HOST:PORT  # against a running cluster
"""
import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from bench.report import print_table
from demo.batch.classify import main as classify
from training.data import load_split


def write_pngs(folder: Path, count: int) -> None:
    images, _ = load_split("fashion", "test")
    for i in range(count):
        Image.fromarray(images[i % len(images)]).save(folder / f"{i:05d}.png")


def timed_run(args: list[str]) -> float:
    """Seconds for one `tinyzoo classify` run; its summary line is kept off the table."""
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        status = classify(args)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"classify {' '.join(args)} exited {status}")
    return seconds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, nargs="+", default=[2000, 8000], help="input sizes (default 2000 8000)")
    p.add_argument("--model", default="fashion-cnn", help="image model id (default fashion-cnn)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per engine; the median is reported")
    p.add_argument("--workers", type=int, default=0, help="processes / actors (default: one per CPU)")
    p.add_argument("--ray-address", default=None, help="a running Ray cluster (default: start a local one)")
    args = p.parse_args(argv)

    import ray

    workers = args.workers or os.cpu_count() or 1
    if args.ray_address:
        ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    cluster = ray.cluster_resources()
    rows = []
    for count in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            folder, out = Path(tmp) / "in", str(Path(tmp) / "rows.csv")
            folder.mkdir()
            write_pngs(folder, count)
            common = [str(folder), "--model", args.model, "--out", out, "--workers", str(workers)]
            local = count / statistics.median([timed_run(common) for _ in range(args.repeats)])
            first = count / timed_run(common + ["--engine", "ray"])  # the actors start inside this one
            warm = count / statistics.median([timed_run(common + ["--engine", "ray"]) for _ in range(args.repeats)])
        rows += [(f"{count:,}", name, workers, f"{rate:,.0f}", f"{rate / local:.2f}")
                 for name, rate in (("local (worker processes)", local), ("ray, first job (actors start)", first),
                                    ("ray, warm cluster", warm))]
    ray.shutdown()
    print(f"{args.model}, {os.cpu_count()} CPUs here; Ray cluster: {cluster.get('CPU', 0):g} CPUs, "
          f"{cluster.get('GPU', 0):g} GPUs; median of {args.repeats}")
    print_table(["files", "engine", "workers / actors", "rows/s", "vs local"], rows, text_columns=2)


if __name__ == "__main__":
    main()
