"""Batch image classification: many files in, one CSV/JSONL row each out, nothing lost.

    tinyzoo classify photos/ --recursive --model mnist-cnn --out results.csv
    tinyzoo classify 'scans/*.png' archive.zip --model fashion-cnn --out results.jsonl --resume
    find . -name '*.jpg' | tinyzoo classify - --model mnist-cnn --out -

Inputs are listed first (batch_inputs: files, folders, globs, archive members by their headers),
then prepared in worker processes (batch_pool), each of which also runs the model on its chunk
with a one-thread CPU session (on CUDA, the parent's single GPU session runs every batch). Rows
are written batch by batch to a locked file (batch_output), so a killed run keeps every row it
wrote and `--resume` carries on without duplicates. A file that can't be classified, for any
reason its decoder gives, gets a row with its error; the run goes on. SIGTERM/SIGINT stop the
run between batches. Exit status: 0 all classified, 1 some failed, 2 usage or output error,
128 + the signal when stopped.

The pieces another engine needs to give identical rows: list_items (inputs -> Items),
prepare (one Item -> the picture the model sees, or an error), result_rows / error_row (rows
in row_fields order) and RowWriter.
"""
import argparse
import contextlib
import math
import multiprocessing
import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from demo.batch.inputs import Item, UsageError, close_archives, list_items, read_item
from demo.batch.output import Previous, RowWriter, open_output, output_format, row_fields, take_previous
from demo.batch.pool import Died, WorkerPool
from demo.contract import InputSpec
from demo.imaging.prepare import RECIPES, ImageInputError, candidate_pictures
from demo.inference.candidates import read_best
from demo.inference.remote import add_backend_arguments, open_zoo
from demo.inference.runtime import ImageClassifier, ModelError, ModelZoo, requested_providers


class Interrupted(BaseException):
    """SIGINT/SIGTERM: stop now (BaseException, like KeyboardInterrupt: no `except Exception` eats it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT/SIGTERM raise Interrupted at once, wherever the run is (start-up, listing, waiting
    for workers), except inside held(): a batch of rows being written is finished first."""

    def __init__(self):
        self.holding, self.pending = False, None
        self.previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, _frame) -> None:
        if self.holding:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            raise Interrupted(self.pending)

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# --- preparing one item, and a chunk of them (in the worker processes) ----------------------------

_WORKER_MODEL: ImageClassifier | None = None  # one single-threaded session per worker process


def prepare(item: Item, input_spec: InputSpec) -> tuple[np.ndarray | None, str]:
    """-> (uint8 [K,H,W] the pictures the model may see, or None; the error row's message, or '')."""
    if item.error:
        return None, item.error
    try:
        data = read_item(item)
    except ImageInputError as e:
        return None, str(e)
    except OSError as e:  # unreadable file (permissions, vanished, a loop)
        return None, f"cannot read file: {e.strerror or e}"
    try:
        return candidate_pictures(data, input_spec), ""
    except ImageInputError as e:
        return None, str(e)
    except Exception as e:  # the decoder failed on these bytes in a way it does not handle: this row, not the run
        return None, f"cannot decode: {type(e).__name__}: {e}"


@dataclass(frozen=True)
class Chunk:
    items: list  # [Item]
    input_spec: InputSpec
    top_k: int
    min_confidence: float
    model: tuple[str, str] | None  # (onnx path, sha256): the worker runs the model itself; None: the parent does


def classify_chunk(chunk: Chunk) -> tuple[list[list], list[str], list[np.ndarray]]:
    """-> (finished rows, then names and pictures left for the parent's model).

    On CPU each worker runs its own one-thread session on its whole chunk: the cores do decode
    and inference back to back, and only finished rows cross between processes. On CUDA the
    workers only decode and the parent's one GPU session takes every batch."""
    global _WORKER_MODEL
    rows, names, seen = [], [], []
    for item in chunk.items:
        picture, error = prepare(item, chunk.input_spec)
        if error:
            rows.append(error_row(item.name, error, chunk.top_k))
        else:
            names.append(item.name)
            seen.append(picture)
    if chunk.model and names:
        if _WORKER_MODEL is None:  # built on first use: a broken file fails this task, not the pool's start
            _WORKER_MODEL = ImageClassifier(Path(chunk.model[0]), chunk.model[1], "cpu", threads=1)
        rows += result_rows(_WORKER_MODEL, names, seen, chunk.top_k, chunk.min_confidence)
        names, seen = [], []
    return rows, names, seen


def split_chunk(chunk: Chunk) -> list[Chunk]:
    """A chunk whose worker died is retried one item per chunk, to find the item that kills it."""
    return [replace(chunk, items=[item]) for item in chunk.items] if len(chunk.items) > 1 else []


# --- the run ----------------------------------------------------------------------------------

class Progress:
    """count/total, rate, ETA on one stderr line, only when stderr is a terminal."""

    def __init__(self, total: int):
        self.total, self.started, self.last = total, time.perf_counter(), 0.0
        self.enabled = sys.stderr.isatty()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else float("inf")
        sys.stderr.write(f"\r{done}/{self.total} images · {rate:,.0f}/s · ETA {eta:,.0f}s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def result_rows(model: ImageClassifier, names, seen, top_k: int, min_confidence: float) -> list[list]:
    """-> rows in RowWriter field order: path, label, confidence, (top-i label, confidence)..., error."""
    probs = read_best(model, seen)[0]  # a photo's candidate crops: the one the model reads best
    best = np.argsort(-probs, axis=1)[:, :top_k]  # [N, k]
    best_p = np.take_along_axis(probs, best, axis=1).round(6).tolist()
    labels = model.labels
    rows = []
    for name, indices, confidences in zip(names, best.tolist(), best_p):
        row = [name, labels[indices[0]] if confidences[0] >= min_confidence else "", confidences[0]]
        for index, confidence in zip(indices, confidences):
            row += (labels[index], confidence)
        row.append("")
        rows.append(row)
    return rows


def error_row(name: str, error: str, top_k: int) -> list:
    return [name, "", ""] + ["", ""] * top_k + [error]


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    signum: int = 0  # the signal that stopped the run, 0 if none


def run(args, signals: Signals) -> int:
    fmt = check_options(args)
    zoo, manifest_row = image_model_row(args)
    items = list_items(args.paths, args.recursive)
    workers = args.workers or os.cpu_count() or 1
    pool, writer, stopped = None, None, True
    try:
        # the workers start before the parent's ORT session exists: forking a process with live
        # ORT (or CUDA) threads is unsafe. held(): a signal inside would leave workers unowned
        with signals.held():
            pool = start_pool(workers)
        model = load_model(zoo, args.model)
        top_k = min(args.top_k, len(model.labels))
        with signals.held():
            previous, writer = open_results(args, fmt, top_k)
        pending = [item for item in items if item.name not in previous.names]
        in_workers = (pool is not None and args.backend == "local"
                      and requested_providers(args.provider)[0] == "CPUExecutionProvider")
        model_ref = (str(model.path), manifest_row["sha256"]) if in_workers else None
        tally = classify_all(pool, make_chunks(pending, workers, args, model, top_k, model_ref),
                             model, writer, signals, len(pending))
        stopped = bool(tally.signum)
    finally:
        if pool:
            pool.close(kill=stopped)
        if writer:
            writer.close()
        close_archives()  # those the parent itself read (--workers 1)
    summarize(tally, len(previous.names), args.out, workers, model.provider)
    if tally.signum:
        return 128 + tally.signum
    return 1 if tally.failed or previous.any_failed(items) else 0  # a resumed run tells what one run would


def check_options(args) -> str:
    """The option checks every engine shares -> the output format."""
    fmt = output_format(args.out, args.format)
    if args.resume and args.out == "-":
        raise UsageError("--resume needs an output file, not stdout")
    if args.top_k < 1 or args.batch_size < 1 or args.workers < 0:
        raise UsageError("--top-k and --batch-size must be >= 1, --workers >= 0")
    return fmt


def image_model_row(args) -> tuple[ModelZoo, dict]:
    try:
        # the decode workers own the other cores
        zoo = open_zoo(args.models_dir, args.provider, args.backend, args.triton_url, threads=1)
        row = zoo.manifest["models"].get(args.model)
        if row is None:
            zoo.get(args.model)  # raises with the list of available ids
    except ModelError as e:
        raise UsageError(str(e)) from None
    if row.get("task") != "image-classification":
        raise UsageError(f"{args.model} is a {row.get('task')} model; classify needs an image classifier")
    return zoo, row


def start_pool(workers: int) -> WorkerPool | None:
    if workers < 2:
        return None
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return WorkerPool(workers, classify_chunk, context)


def load_model(zoo: ModelZoo, model_id: str) -> ImageClassifier:
    try:
        model = zoo.get(model_id)
    except ModelError as e:
        raise UsageError(str(e)) from None
    if model.meta.input.recipe not in RECIPES:
        raise UsageError(f"{model_id}: its metadata names an unknown preprocessing recipe {model.meta.input.recipe!r}")
    return model


def open_results(args, fmt: str, top_k: int) -> tuple[Previous, RowWriter]:
    """--out opened and locked, what an earlier run left there (--resume), and the writer that
    appends after it (every engine writes through this)."""
    fd = 1 if args.out == "-" else open_output(args.out)
    try:
        previous = take_previous(fd, args.out, fmt, row_fields(top_k)) if args.resume else clear(fd)
        return previous, RowWriter(fd, args.out, fmt, row_fields(top_k), header=at_start(fd))
    except BaseException:
        if fd != 1:
            os.close(fd)
        raise


def clear(fd: int) -> Previous:
    """A run without --resume starts the file afresh (a device or a pipe is left as it is)."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.ftruncate(fd, 0)
    return Previous()


def at_start(fd: int) -> bool:
    """Move to the end of the output; True when nothing is there yet (the CSV header is due)."""
    try:
        return os.lseek(fd, 0, os.SEEK_END) == 0
    except OSError:  # a pipe or a terminal
        return True


def make_chunks(pending: list[Item], workers: int, args, model: ImageClassifier, top_k: int, model_ref):
    # chunks of at most one ORT batch, small enough that every worker gets a share of short runs
    size = max(1, min(args.batch_size, math.ceil(len(pending) / workers)))
    return (Chunk(pending[i:i + size], model.meta.input, top_k, args.min_confidence, model_ref)
            for i in range(0, len(pending), size))


def classify_all(pool, chunks, model, writer: RowWriter, signals: Signals, total: int) -> Tally:
    """Chunks -> rows written in input order, batch by batch; a signal stops it between batches."""
    tally, progress, started = Tally(), Progress(total), time.perf_counter()
    results = pool.imap(chunks, split_chunk) if pool else ((chunk, classify_chunk(chunk)) for chunk in chunks)
    try:
        for chunk, result in results:
            rows = chunk_rows(chunk, result, model)
            with signals.held():  # a batch is written whole, then the signal is taken
                writer.write(rows)
            errors = sum(1 for r in rows if r[-1])  # the last column is the error
            tally.done, tally.failed = tally.done + len(rows) - errors, tally.failed + errors
            progress.update(tally.done + tally.failed)
    except Interrupted as e:
        tally.signum = e.signum
    except ModelError as e:  # a worker could not load the file the parent verified: it changed on disk
        raise UsageError(str(e)) from None
    finally:
        progress.close()
    tally.seconds = time.perf_counter() - started
    return tally


def chunk_rows(chunk: Chunk, result, model: ImageClassifier) -> list[list]:
    if isinstance(result, Died):  # a one-item chunk that killed its worker (a decoder crash)
        return [error_row(item.name, f"the decoding process died on this file ({result.reason()})", chunk.top_k)
                for item in chunk.items]
    rows, names, seen = result
    if names:
        rows += result_rows(model, names, seen, chunk.top_k, chunk.min_confidence)
    return rows


def summarize(tally: Tally, before: int, out: str, workers: int, provider: str) -> None:
    skipped = f", {before} already in {out}" if before else ""
    status = f"stopped by {signal.Signals(tally.signum).name}: " if tally.signum else ""
    rate = (tally.done + tally.failed) / max(tally.seconds, 1e-9)
    print(f"{status}{tally.done} classified, {tally.failed} failed{skipped}; {rate:,.0f} images/s; "
          f"{workers} worker{'s' if workers > 1 else ''}; provider {provider}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo classify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="files, directories, globs, .zip/.tar archives, or - (paths on stdin)")
    p.add_argument("--model", required=True, help="an image model id (see `GET /api/models` or models/manifest.json)")
    p.add_argument("--out", default="-", help="results .csv or .jsonl, or - for stdout (default)")
    p.add_argument("--format", choices=["csv", "jsonl"], default=None, help="override the format --out implies")
    p.add_argument("--top-k", type=int, default=3, help="how many labels per row (default 3)")
    p.add_argument("--batch-size", type=int, default=256, help="images per ONNX Runtime call (default 256)")
    p.add_argument("--workers", type=int, default=0, help="decode processes (default: one per CPU; 1 = in-process)")
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
