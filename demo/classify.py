"""Batch image classification: many files in, one CSV/JSONL row each out, nothing lost.

    tinyzoo classify photos/ --recursive --model mnist-cnn --out results.csv
    tinyzoo classify 'scans/*.png' archive.zip --model fashion-cnn --out results.jsonl --resume
    find . -name '*.jpg' | tinyzoo classify - --model mnist-cnn --out -

Decoding and preprocessing (the app's own function) run in worker processes, each of which
also runs the model on its chunk with a one-thread CPU session (on CUDA, the parent's single GPU
session runs every batch). Rows are written and flushed batch by batch, so a killed
run keeps every row it wrote and `--resume` carries on without duplicates. A file that can't be
classified gets a row with its error; the run goes on. Exit status: 0 all classified, 1 some
failed, 2 usage error.
"""
import argparse
import csv
import glob
import io
import json
import math
import multiprocessing
import os
import signal
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.preprocess import ImageInputError, normalize, to_seen
from demo.runtime import ImageClassifier, ModelError, ModelZoo, requested_providers

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MEMBER_SEP = "::"  # archive.zip::inner/path.png


class UsageError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    name: str  # what the output's path column says
    path: str | None = None  # a file the worker reads
    data: bytes | None = None  # an archive member's bytes, read by the main process


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def archive_items(path: Path):
    """Image members of a zip or tar archive, in name order, read one at a time."""
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                if not member.endswith("/") and is_image_name(member):
                    yield Item(f"{path}{MEMBER_SEP}{member}", data=archive.read(member))
        return
    with tarfile.open(path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and is_image_name(m.name)),
                         key=lambda m: m.name)
        for member in members:
            yield Item(f"{path}{MEMBER_SEP}{member.name}", data=archive.extractfile(member).read())


def expand(arg: str, recursive: bool) -> list[Path]:
    if any(c in arg for c in "*?["):
        matches = sorted(Path(p) for p in glob.glob(arg, recursive=recursive))
        if not matches:
            raise UsageError(f"{arg}: no file matches this pattern")
        return matches
    path = Path(arg)
    if not path.exists():
        raise UsageError(f"{arg}: no such file or directory")
    return [path]


def list_paths(args: list[str], recursive: bool) -> list[Path]:
    """Command-line arguments (files, dirs, globs, archives, '-') -> files, in a stable order.
    Named files are always taken; directories contribute their image files."""
    if "-" in args:
        args = [a for a in args if a != "-"] + [line.strip() for line in sys.stdin if line.strip()]
    files = []
    for arg in args:
        for path in expand(arg, recursive):
            if path.is_dir():
                files += [Path(p) for p in sorted(_walk(str(path), recursive))]
            else:
                files.append(path)
    return files


def _walk(folder: str, recursive: bool):
    """Image and archive files under a folder (os.scandir: no stat per entry on most filesystems)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                if recursive:
                    yield from _walk(entry.path, recursive)
            elif entry.is_file() and (is_image_name(entry.name) or is_archive(Path(entry.name))):
                yield entry.path


def iter_items(files: list[Path]):
    """-> (item, error found while listing it or '') for every input, archives opened."""
    for path in files:
        if not is_archive(path):
            yield Item(str(path), path=str(path)), ""
            continue
        try:
            for item in archive_items(path):
                yield item, ""
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
            yield Item(str(path)), f"unreadable archive: {e}"


# --- worker processes: decode + preprocess (+ the model, on CPU) ---------------------------------

_WORKER_MODEL: ImageClassifier | None = None  # one single-threaded session per worker process


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def prepare(item: Item, input_spec: dict) -> tuple[str, np.ndarray | None, str]:
    """-> (name, uint8 [H,W] the model will see, or None, error message or '')."""
    try:
        source = item.data if item.data is not None else Path(item.path)
        return item.name, to_seen(source, input_spec), ""
    except ImageInputError as e:
        return item.name, None, str(e)
    except OSError as e:  # unreadable file (permissions, vanished)
        return item.name, None, f"cannot read file: {e.strerror or e}"


@dataclass(frozen=True)
class Chunk:
    items: list  # [(Item, listing error or '')]
    input_spec: dict
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
    for item, listing_error in chunk.items:
        name, picture, error = (item.name, None, listing_error) if listing_error else prepare(item, chunk.input_spec)
        if error:
            rows.append(error_row(name, error, chunk.top_k))
        else:
            names.append(name)
            seen.append(picture)
    if chunk.model and names:
        if _WORKER_MODEL is None:  # built on first use: a broken file fails this task, not the pool's start
            _WORKER_MODEL = ImageClassifier(Path(chunk.model[0]), chunk.model[1], "cpu", threads=1)
        rows += result_rows(_WORKER_MODEL, names, seen, chunk.top_k, chunk.min_confidence)
        names, seen = [], []
    return rows, names, seen


# --- output ---------------------------------------------------------------------------------

def output_format(out: str, requested: str | None) -> str:
    if requested:
        return requested
    if out == "-":
        return "csv"
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise UsageError(f"--out {out}: use a .csv or .jsonl file, '-' for stdout, or give --format")
    return suffix[1:]


def completed_names(path: Path, fmt: str) -> set[str]:
    """Inputs already in an output file (success or error rows). A last line cut short by a
    kill is removed so appending continues cleanly."""
    if not path.is_file():
        return set()
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[:raw.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(raw))
    text = raw.decode("utf-8")
    if fmt == "jsonl":
        return {json.loads(line)["path"] for line in text.splitlines() if line.strip()}
    return {row["path"] for row in csv.DictReader(io.StringIO(text))}


class RowWriter:
    def __init__(self, out: str, fmt: str, top_k: int, append: bool):
        self.fmt = fmt
        self.fields = ["path", "label", "confidence"]
        for i in range(1, top_k + 1):
            self.fields += [f"top{i}_label", f"top{i}_confidence"]
        self.fields.append("error")
        if out == "-":
            self.stream = sys.stdout
        else:
            has_rows = append and Path(out).is_file() and Path(out).stat().st_size > 0
            self.stream = open(out, "a" if append else "w", newline="", encoding="utf-8")
            append = has_rows
        self.csv = csv.writer(self.stream, lineterminator="\n") if fmt == "csv" else None
        if self.csv and not append:
            self.csv.writerow(self.fields)

    def write(self, rows: list[list]) -> None:
        """rows: values in `fields` order."""
        if self.csv:
            self.csv.writerows(rows)
        else:
            self.stream.write("".join(json.dumps(dict(zip(self.fields, row)), ensure_ascii=False) + "\n"
                                      for row in rows))
        self.stream.flush()  # a killed run keeps every row written so far

    def close(self) -> None:
        if self.stream is not sys.stdout:
            self.stream.close()


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
    probs = model.probabilities(model.run(normalize(np.stack(seen), model.meta["input"])))
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


def run(args) -> int:
    fmt = output_format(args.out, args.format)
    if args.resume and args.out == "-":
        raise UsageError("--resume needs an output file, not stdout")
    if args.top_k < 1 or args.batch_size < 1 or args.workers < 0:
        raise UsageError("--top-k and --batch-size must be >= 1, --workers >= 0")
    try:
        zoo = ModelZoo(args.models_dir, args.provider, threads=1)  # the decode workers own the other cores
        row = zoo.manifest["models"].get(args.model)
        if row is None:
            zoo.get(args.model)  # raises with the list of available ids
    except ModelError as e:
        raise UsageError(str(e)) from None
    if row.get("task") != "image-classification":
        raise UsageError(f"{args.model} is a {row.get('task')} model; classify needs an image classifier")
    files = list_paths(args.paths, args.recursive)
    workers = args.workers or os.cpu_count() or 1
    models_in_workers = workers > 1 and requested_providers(args.provider)[0] == "CPUExecutionProvider"
    # workers start before the parent's ORT session exists: forking a process with live ORT
    # (or CUDA) threads is unsafe
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = context.Pool(workers, _init_worker) if workers > 1 else None
    try:
        model = zoo.get(args.model)
    except ModelError as e:
        if pool:
            pool.terminate()
        raise UsageError(str(e)) from None
    top_k = min(args.top_k, len(model.labels))

    done_before = completed_names(Path(args.out), fmt) if args.resume else set()
    pending = [(item, err) for item, err in iter_items(files) if item.name not in done_before]
    writer = RowWriter(args.out, fmt, top_k, append=args.resume)

    stop = {"signal": None}
    previous = {s: signal.signal(s, lambda signum, _: stop.update(signal=signum)) for s in (signal.SIGTERM, signal.SIGINT)}
    progress = Progress(len(pending))
    started = time.perf_counter()
    done = failed = 0
    # chunks of at most one ORT batch, small enough that every worker gets a share of short runs
    size = max(1, min(args.batch_size, math.ceil(len(pending) / workers)))
    model_ref = (str(model.path), row["sha256"]) if models_in_workers else None
    chunks = (Chunk(pending[i:i + size], model.meta["input"], top_k, args.min_confidence, model_ref)
              for i in range(0, len(pending), size))
    try:
        for rows, names, seen in pool.imap(classify_chunk, chunks) if pool else map(classify_chunk, chunks):
            if names:
                rows += result_rows(model, names, seen, top_k, args.min_confidence)
            errors = sum(1 for r in rows if r[-1])  # the last column is the error
            done, failed = done + len(rows) - errors, failed + errors
            writer.write(rows)
            progress.update(done + failed)
            if stop["signal"]:
                break
    except ModelError as e:  # a worker could not load the file the parent verified: it changed on disk
        raise UsageError(str(e)) from None
    finally:
        if pool:
            pool.terminate()
        writer.close()
        progress.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    seconds = time.perf_counter() - started
    skipped = f", {len(done_before)} already in {args.out}" if done_before else ""
    status = f"stopped by signal {stop['signal']}: " if stop["signal"] else ""
    print(f"{status}{done} classified, {failed} failed{skipped}; {(done + failed) / max(seconds, 1e-9):,.0f} images/s; "
          f"{workers} worker{'s' if workers > 1 else ''}; provider {model.provider}", file=sys.stderr)
    if stop["signal"]:
        return 128 + stop["signal"]
    return 1 if failed else 0


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
    return p


def main(argv=None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # options may come between paths
    try:
        return run(args)
    except UsageError as e:
        print(f"tinyzoo classify: {e}", file=sys.stderr)
        return 2
