"""The local engine: inputs prepared (and, on CPU, classified) in worker processes, each with its
own pipe and a one-thread ONNX Runtime session; on CUDA the parent's one GPU session runs every
batch. Rows are written batch by batch to the locked results file, so a killed run keeps every
row it wrote; SIGTERM/SIGINT stop the run between batches."""
import contextlib
import math
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from demo.batch.inputs import Item, UsageError, close_archives, list_items
from demo.batch.job import (Tally, check_options, error_row, exit_status, filled, image_model_row, labels_per_row,
                            load_model, open_results, read_items, result_rows, summarize)
from demo.batch.output import Row, RowWriter
from demo.batch.pool import Died, WorkerPool
from demo.contract import InputSpec
from demo.imaging.budget import tune_malloc
from demo.inference.runtime import ImageClassifier, ModelError, requested_providers


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


_WORKER_MODEL: ImageClassifier | None = None  # one single-threaded session per worker process
CHUNKS_PER_WORKER = 8  # a chunk's pickling and pipe cost ~0.7 ms: 3% of the work on 125 28x28 PNGs


@dataclass(frozen=True)
class Chunk:
    items: list  # [Item]
    input_spec: InputSpec
    top_k: int
    min_confidence: float
    model: tuple[str, str] | None  # (onnx path, sha256): the worker runs the model itself; None: the parent does


def classify_chunk(chunk: Chunk) -> tuple[list[Row | None], list[str], list[np.ndarray]]:
    """-> (a row slot per item, empty where the parent's model is left to answer, and the names and
    pictures left for it).

    On CPU each worker runs its own one-thread session on its whole chunk: the cores do decode
    and inference back to back, and only finished rows cross between processes. On CUDA the
    workers only decode and the parent's one GPU session takes every batch."""
    global _WORKER_MODEL
    slots, names, seen = read_items(chunk.items, chunk.input_spec)
    if chunk.model and names:
        if _WORKER_MODEL is None:  # built on first use: a broken file fails this task, not the pool's start
            _WORKER_MODEL = ImageClassifier(Path(chunk.model[0]), chunk.model[1], "cpu", threads=1, arena=True)
        return filled(slots, result_rows(_WORKER_MODEL, names, seen, chunk.top_k, chunk.min_confidence)), [], []
    return slots, names, seen


def split_chunk(chunk: Chunk) -> list[Chunk]:
    """A chunk whose worker died is retried one item per chunk, to find the item that kills it."""
    return [replace(chunk, items=[item]) for item in chunk.items] if len(chunk.items) > 1 else []


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


def run(args, signals: Signals) -> int:
    fmt = check_options(args)
    zoo, manifest_row = image_model_row(args, args.provider)
    items = list_items(args.paths, args.recursive)
    workers = args.workers or os.cpu_count() or 1
    pool, writer, stopped = None, None, True
    tune_malloc()  # before the fork: the workers inherit it (a phone photo: ~1,100 page faults fewer)
    try:
        # the workers start before the parent's ORT session exists: forking a process with live
        # ORT (or CUDA) threads is unsafe. held(): a signal inside would leave workers unowned
        with signals.held():
            pool = start_pool(workers)
        model = load_model(zoo, args.model)
        top_k = labels_per_row(args.top_k, model)
        with signals.held():
            previous, writer = open_results(args, fmt, top_k, model.labels)
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
    summarize(tally, previous, args.out, f"{workers} worker{'s' if workers > 1 else ''}", model.provider)
    return exit_status(tally, previous, items)  # a resumed run tells what one run would


def start_pool(workers: int) -> WorkerPool | None:
    if workers < 2:
        return None
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    try:
        return WorkerPool(workers, classify_chunk, context)
    except OSError as e:
        raise UsageError(f"cannot start {workers} worker processes ({e.strerror or e}): "
                         "ask for fewer with --workers") from None


def make_chunks(pending: list[Item], workers: int, args, model: ImageClassifier, top_k: int, model_ref):
    # chunks of at most one batch, small enough that every worker gets a share of short runs; when
    # the workers run the model (CPU), CHUNKS_PER_WORKER shares each: a worker slowed by heavier
    # pictures (or by another program) leaves the rest to the others instead of holding half the
    # run (48 photos in 2 chunks of 24 would wait for the slower half). When the parent runs it
    # (CUDA, Triton), a chunk is its batch: as big as allowed
    shares = workers * CHUNKS_PER_WORKER if model_ref else workers
    size = max(1, min(args.batch_size, math.ceil(len(pending) / shares)))
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
            tally.count(rows)
            progress.update(tally.done + tally.failed)
    except Interrupted as e:
        tally.signum = e.signum
    except ModelError as e:  # a worker could not load the file the parent verified: it changed on disk
        raise UsageError(str(e)) from None
    finally:
        progress.close()
    tally.seconds = time.perf_counter() - started
    return tally


def chunk_rows(chunk: Chunk, result, model: ImageClassifier) -> list[Row]:
    if isinstance(result, Died):  # a one-item chunk that killed its worker (a decoder crash)
        return [error_row(item.name, f"the decoding process died on this file ({result.reason()})")
                for item in chunk.items]
    slots, names, seen = result
    return filled(slots, result_rows(model, names, seen, chunk.top_k, chunk.min_confidence) if names else [])
