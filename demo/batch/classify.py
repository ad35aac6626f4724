"""Batch image classification: many files in, one CSV/JSONL row each out, nothing lost.

    tinyzoo classify photos/ --recursive --model mnist-cnn --out results.csv
    tinyzoo classify 'scans/*.png' archive.zip --model fashion-cnn --out results.jsonl --resume
    find . -name '*.jpg' | tinyzoo classify - --model mnist-cnn --out -

Inputs are listed first (inputs.py: files, folders, globs, archive members by their headers),
then the job (job.py) runs on an engine: here (local.py: worker processes, each running the model
on its chunk with a one-thread CPU session; on CUDA the parent's single GPU session runs every
batch) or on Ray (ray_engine.py). Rows are written batch by batch to a locked file (output.py), so
a killed run keeps every row it wrote and `--resume` carries on without duplicates. A file that
can't be classified, for any reason its decoder gives, gets a row with its error; the run goes on.
So do the inputs of a --backend triton request whose answer is missing or not what the model's
metadata promises. SIGTERM/SIGINT stop the run between batches. Exit status: 0 all classified,
1 some failed, 2 usage or output error, 128 + the signal when stopped.
"""
import argparse
import signal
import sys

from demo.batch.inputs import UsageError
from demo.batch.local import Interrupted, Signals, run
from demo.inference.backend import add_backend_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo classify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="files, directories, globs, .zip/.tar archives, or - (paths on stdin)")
    p.add_argument("--model", required=True, help="an image model id (see `GET /api/models` or models/manifest.json)")
    p.add_argument("--out", default="-", help="results .csv or .jsonl, or - for stdout (default)")
    p.add_argument("--format", choices=["csv", "jsonl"], default=None, help="override the format --out implies")
    p.add_argument("--top-k", type=int, default=3, help="how many labels per row (default 3)")
    p.add_argument("--batch-size", type=int, default=256, help="images per ONNX Runtime call (default 256)")
    p.add_argument("--workers", type=int, default=0,
                   help="decode processes (default 0: one per CPU; 1 = in-process; at most 4 per CPU)")
    p.add_argument("--resume", action="store_true", help="skip inputs already in --out and append")
    p.add_argument("--recursive", action="store_true", help="walk directories (and ** in globs) recursively")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="below this top-1 probability the label column is left empty (top-k still given)")
    p.add_argument("--models-dir", default=None, help="folder with manifest.json (env TINYZOO_MODELS)")
    p.add_argument("--provider", default=None, choices=["auto", "cpu", "cuda"], help="ONNX Runtime provider")
    # --- scale out (demo/inference/remote.py, demo/batch/ray_engine.py) ---
    add_backend_arguments(p)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="run here with worker processes (local, default) or on a Ray cluster (needs tinyzoo[scale])")
    p.add_argument("--ray-address", default=None,
                   help="--engine ray: 'auto' or HOST:PORT of a running cluster (default: start a local one)")
    return p


def main(argv=None) -> int:
    signals = Signals()  # first: a Ctrl-C during start-up ends quietly too
    try:
        args = build_parser().parse_intermixed_args(argv)  # options may come between paths
        if args.engine == "ray":  # the same job on Ray Data: demo/batch/ray_engine.py
            from demo.batch.ray_engine import run_ray
            return run_ray(args)
        return run(args, signals)
    except UsageError as e:
        print(f"tinyzoo classify: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"tinyzoo classify: stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
        return 128 + e.signum
    finally:
        signals.restore()
