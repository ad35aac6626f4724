"""The batch job every engine runs: the option and model checks, one Item -> the picture the model
sees or an error, pictures -> rows through the classification pipeline, the results file
(--resume), the summary line and the exit status. The local engine (local.py) and the Ray engine
(ray_engine.py) differ only in where the work runs; their rows are identical."""
import logging
import os
import signal
import stat
import sys
from dataclasses import dataclass

import numpy as np

from demo.batch.inputs import Item, UsageError, read_item
from demo.batch.output import Previous, Row, RowWriter, open_output, output_format, row_fields, take_previous
from demo.contract import InputSpec
from demo.imaging.prepare import RECIPES, ImageInputError, candidate_pictures
from demo.inference.pipeline import best, probabilities_of_seen
from demo.inference.backend import open_zoo
from demo.inference.runtime import AnswerError, ImageClassifier, ModelError, ModelZoo
from demo.settings import TRITON_MAX_BATCH

WORKERS_PER_CPU = 4  # beyond this, more processes only add memory and pipes: decoding is CPU-bound


def item_pictures(item: Item, input_spec: InputSpec) -> tuple[np.ndarray | None, str]:
    """-> (uint8 [K, H, W] the pictures the model may see, or None; the error row's message, or '')."""
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
    except Exception:  # a failure the preparation does not foresee: this row, not the run; the traceback to stderr
        logging.getLogger("tinyzoo.classify").exception("%s: preparing the picture failed", item.name)
        return None, "cannot decode: the picture could not be prepared for the model (an unforeseen failure)"


def read_items(items: list[Item], input_spec: InputSpec) -> tuple[list[Row | None], list[str], list[np.ndarray]]:
    """Items -> (one slot per item, in input order: its error row, or None where its pictures were
    read; the names and the pictures read, for the model)."""
    slots, names, seen = [], [], []
    for item in items:
        pictures, error = item_pictures(item, input_spec)
        slots.append(error_row(item.name, error) if error else None)
        if not error:
            names.append(item.name)
            seen.append(pictures)
    return slots, names, seen


def filled(slots: list[Row | None], answers: list[Row]) -> list[Row]:
    """The model's rows, in order, into the empty slots: every input's row in input order."""
    answer = iter(answers)
    return [slot if slot is not None else next(answer) for slot in slots]


def result_rows(model: ImageClassifier, names, seen, top_k: int, min_confidence: float) -> list[Row]:
    """-> one Row per name. At most TRITON_MAX_BATCH pictures a run: a remote server's bad answer
    costs the rows of that run only, as error rows."""
    rows = []
    for start in range(0, len(names), TRITON_MAX_BATCH):
        part = slice(start, start + TRITON_MAX_BATCH)
        try:
            probs = probabilities_of_seen(model, seen[part])
        except AnswerError as e:
            rows += [error_row(name, str(e)) for name in names[part]]
        else:
            rows += label_rows(model.labels, names[part], probs, top_k, min_confidence)
    return rows


def label_rows(labels: list[str], names, probs: np.ndarray, top_k: int, min_confidence: float) -> list[Row]:
    """Probabilities -> Rows with the top k, confidences to 6 decimals (rounded as float64: a float32
    rounded prints as 0.9999979734420776); no label below min_confidence."""
    indices, confidences = best(probs, top_k)
    confidences = confidences.astype(np.float64).round(6)
    rows = []
    for name, row_indices, row_confidences in zip(names, indices.tolist(), confidences.tolist(), strict=True):
        top = tuple((labels[i], c) for i, c in zip(row_indices, row_confidences))
        label = top[0][0] if top[0][1] >= min_confidence else ""
        rows.append(Row(name, label, top[0][1], top))
    return rows


def error_row(name: str, error: str) -> Row:
    return Row(name, error=error)


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    signum: int = 0  # the signal that stopped the run, 0 if none

    def count(self, rows: list[Row]) -> None:
        failed = sum(1 for row in rows if row.error)
        self.done, self.failed = self.done + len(rows) - failed, self.failed + failed


def check_options(args) -> str:
    """The option checks every engine shares -> the output format."""
    fmt = output_format(args.out, args.format)
    if args.resume and args.out == "-":
        raise UsageError("--resume needs an output file, not stdout")
    if args.top_k < 1 or args.batch_size < 1 or args.workers < 0:
        raise UsageError("--top-k and --batch-size must be >= 1, --workers >= 0 (0: one per CPU)")
    if args.workers > max_workers():
        raise UsageError(f"--workers {args.workers}: at most {max_workers()} on this machine "
                         f"({WORKERS_PER_CPU} per CPU; each is a process with its own copy of the model)")
    if not 0 <= args.min_confidence <= 1:  # NaN included: 60 (for 60%) would blank every label
        raise UsageError(f"--min-confidence is a probability from 0 to 1 (0.6 for 60%), got {args.min_confidence:g}")
    return fmt


def max_workers() -> int:
    return max(8, WORKERS_PER_CPU * (os.cpu_count() or 1))


def image_model_row(args, provider: str | None) -> tuple[ModelZoo, dict]:
    """The zoo and the manifest row of --model, which must be an image classifier (else UsageError)."""
    try:
        # one thread per session: the decode workers (or Ray's actors) own the other cores
        zoo = open_zoo(args.models_dir, provider, args.backend, args.triton_url, threads=1, arena=True)
        row = zoo.manifest["models"].get(args.model)
    except ModelError as e:
        raise UsageError(str(e)) from None
    if row is None:
        raise UsageError(zoo.unknown(args.model, "image-classification"))
    if row.get("task") != "image-classification":
        raise UsageError(f"{args.model} is a {row.get('task')} model; classify needs an image classifier")
    return zoo, row


def load_model(zoo: ModelZoo, model_id: str) -> ImageClassifier:
    try:
        model = zoo.get(model_id)
    except ModelError as e:
        raise UsageError(str(e)) from None
    if model.meta.input.recipe not in RECIPES:
        raise UsageError(f"{model_id}: its metadata names an unknown preprocessing recipe {model.meta.input.recipe!r}")
    return model


def open_results(args, fmt: str, top_k: int, labels: list[str]) -> tuple[Previous, RowWriter]:
    """--out opened and locked, what an earlier run left there (--resume), and the writer that
    appends after it (every engine writes through this)."""
    fd = 1 if args.out == "-" else open_output(args.out)
    try:
        previous = take_previous(fd, args.out, fmt, row_fields(top_k), set(labels)) if args.resume else clear(fd)
        return previous, RowWriter(fd, args.out, fmt, row_fields(top_k), header=header_due(fd, row_fields(top_k)))
    except BaseException:
        if fd != 1:
            os.close(fd)
        raise


def clear(fd: int) -> Previous:
    """A run without --resume starts its --out file afresh. Standard output is the shell's to open
    (`>` empties a file, `>>` appends to it: a log must keep what it held), and a device or a pipe
    is left as it is."""
    if fd != 1 and stat.S_ISREG(os.fstat(fd).st_mode):
        os.ftruncate(fd, 0)
    return Previous()


def header_due(fd: int, fields: list[str]) -> bool:
    """Move to the end of the output; the CSV header is due unless the output already starts with it
    (rows added to an earlier run's: `>> results.csv`, --resume). A log that holds other lines
    (`{ echo "# run 3"; tinyzoo classify ...; } > log.csv`) gets the header before the rows."""
    try:
        if os.lseek(fd, 0, os.SEEK_END) == 0:
            return True
    except OSError:  # a pipe or a terminal
        return True
    return first_line(fd) not in (None, ",".join(fields).encode())


def first_line(fd: int) -> bytes | None:
    """The output's first line; None where it can't be read back (the shell opened it write-only and
    /proc does not reopen it)."""
    try:
        start = os.pread(fd, 4096, 0)
    except OSError:
        try:
            reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
        except OSError:
            return None
        try:
            start = os.pread(reader, 4096, 0)
        finally:
            os.close(reader)
    return start.split(b"\n", 1)[0].rstrip(b"\r")


def labels_per_row(requested: int, model: ImageClassifier) -> int:
    """--top-k, at most the model's classes: past them every row lists all, and stderr says so."""
    classes = len(model.labels)
    if requested > classes:
        print(f"note: --top-k {requested}: {model.id} has {classes} classes, so each row lists all {classes}",
              file=sys.stderr)
    return min(requested, classes)


def summarize(tally: Tally, previous: Previous, out: str, engine: str, provider: str) -> None:
    """One line on stderr: what was done, at what rate, where (engine: "2 workers", "ray: 4 actors").
    Rows an earlier run left are counted apart, with their failures: they count in the exit status."""
    failed_before = f" ({len(previous.failed)} of them failed)" if previous.failed else ""
    skipped = f", {len(previous.names)} already in {out}{failed_before}" if previous.names else ""
    status = f"stopped by {signal.Signals(tally.signum).name}: " if tally.signum else ""
    rate = (tally.done + tally.failed) / max(tally.seconds, 1e-9)
    print(f"{status}{tally.done} classified, {tally.failed} failed{skipped}; {rate:,.0f} images/s; "
          f"{engine}; provider {provider}", file=sys.stderr)


def exit_status(tally: Tally, previous: Previous, items: list[Item]) -> int:
    """0 all classified, 1 some failed (a resumed run tells what one run would), 128 + a signal."""
    if tally.signum:
        return 128 + tally.signum
    return 1 if tally.failed or previous.any_failed(items) else 0
