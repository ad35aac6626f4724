"""`tinyzoo classify ... --engine ray`: the same batch job on Ray Data, one machine or a cluster.

    pip install 'tinyzoo[scale]'
    tinyzoo classify photos/ --recursive --model mnist-cnn --out results.csv --engine ray
    tinyzoo classify /shared/scans --model fashion-cnn --out rows.jsonl --resume --engine ray --ray-address auto

The driver lists the inputs exactly as the local engine does (batch_inputs.list_items: files,
folders, globs, archive members by their headers; `--resume` skipping paths already written,
through the same locked output) and hands them to Ray Data as items (`from_items`: an Item is
plain strings and ints; a listing error travels as its message, so both end as the same rows).
A pool of actors, each holding one ONNX Runtime session (a GPU each when the cluster has GPUs),
runs classify.py's own preparation (which reads the file or archive member) and row functions
on `--batch-size` items at a time. Rows come back tagged with their input's position and are
written in input order as they arrive, flushed batch by batch: the output is the local
engine's, row for row. On a cluster, the input files and --models-dir must be readable on
every node (a shared filesystem), and every node needs tinyzoo installed.
"""
import dataclasses
import json
import logging
import math
import os
import socket
import sys
import time

import numpy as np

from demo.batch.inputs import Item, UsageError, list_items
from demo.batch.output import Row, RowWriter
from demo.batch.job import (Tally, check_options, exit_status, filled, image_model_row, labels_per_row, load_model,
                            open_results, read_items, result_rows, summarize)
from demo.imaging.budget import tune_malloc
from demo.inference.backend import open_zoo

CONNECT_TIMEOUT_S = 10
ITEM_FIELDS = [f.name for f in dataclasses.fields(Item)]  # an Item travels as these columns
KEPT = "the rows written so far are kept; --resume carries on"


class ClassifyActor:
    """One model (one ORT session, or one Triton client) per actor; a batch of items -> rows."""

    def __init__(self, models_dir: str, model_id: str, provider: str, backend: str, triton_url: str | None,
                 top_k: int, min_confidence: float):
        tune_malloc()  # an actor is a process of its own: the local workers' heap settings
        self.model = open_zoo(models_dir, provider, backend, triton_url, threads=1, arena=True).get(model_id)
        self.top_k, self.min_confidence = top_k, min_confidence

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = zip(*(batch[field] for field in ITEM_FIELDS))
        items = [Item(*(value.item() if hasattr(value, "item") else value for value in values)) for values in columns]
        slots, names, seen = read_items(items, self.model.meta.input)
        rows = filled(slots, result_rows(self.model, names, seen, self.top_k, self.min_confidence) if names else [])
        return {"index": batch["index"], "row": np.array([json.dumps(dataclasses.asdict(r)) for r in rows], dtype=object)}


def check_reachable(address: str) -> None:
    """HOST:PORT must accept a connection: Ray itself would retry a dead address for minutes."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address must be 'auto' or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise UsageError(f"no Ray cluster answers at {address} ({e.strerror or e}); "
                         f"start one with `ray start --head --port={port}`") from None


def connect(ray, address: str | None, workers: int) -> bool:
    """-> True when this call started Ray (and so must shut it down)."""
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        if address != "auto":
            check_reachable(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as e:  # 'auto' with no cluster running here
            raise UsageError(f"--ray-address {address}: {e}") from None
    else:  # a local cluster for this run: one CPU per actor
        ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-run INFO lines among the job's own
    return True


def pool_size(ray, args) -> tuple[int, float, str]:
    """-> (actors, GPUs per actor, provider): one actor per GPU when the cluster has GPUs, else per CPU."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and args.provider != "cpu":
        return gpus, 1.0, "cuda"
    return args.workers or max(1, int(resources.get("CPU", 1))), 0.0, "cpu"


def write_in_order(batches, writer: RowWriter, tally: Tally) -> None:
    """Rows tagged with their input position -> written in input order as soon as they can be."""
    waiting, next_index = {}, 0
    for batch in batches:
        waiting.update(zip(batch["index"].tolist(), batch["row"]))
        ready = []
        while next_index in waiting:
            ready.append(Row(**json.loads(waiting.pop(next_index))))
            next_index += 1
        if ready:
            writer.write(ready)
            tally.count(ready)


def run_ray(args) -> int:
    fmt = check_options(args)
    zoo, _ = image_model_row(args, "cpu")  # the driver only checks the file; the actors run it
    model = load_model(zoo, args.model)
    top_k = labels_per_row(args.top_k, model)
    items = list_items(args.paths, args.recursive)

    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'tinyzoo[scale]'") from None
    started_ray = connect(ray, args.ray_address, args.workers)
    started = time.perf_counter()
    tally, writer = Tally(), None
    try:
        previous, writer = open_results(args, fmt, top_k, model.labels)  # locked: a second run on --out refuses
        pending = [item for item in items if item.name not in previous.names]
        actors, gpus, provider = pool_size(ray, args)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows leave the pool in input order
        context.enable_progress_bars = False
        if pending:
            # an Item is plain strings and ints: archive members are read by the actors, like files
            rows = [{"index": i, **dataclasses.asdict(item)} for i, item in enumerate(pending)]
            # one block per batch: Ray Data need not split and merge blocks to form --batch-size batches
            blocks = math.ceil(len(rows) / args.batch_size)
            dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
                ClassifyActor, batch_size=args.batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1, num_gpus=gpus,
                fn_constructor_kwargs={"models_dir": str(zoo.models_dir), "model_id": args.model,
                                       "provider": provider, "backend": args.backend, "triton_url": args.triton_url,
                                       "top_k": top_k, "min_confidence": args.min_confidence})
            write_in_order(dataset.iter_batches(batch_size=None, batch_format="numpy"), writer, tally)
    except ray.exceptions.RayError as e:  # an actor could not start (no model file on a node) or died
        raise UsageError(f"the Ray job failed ({KEPT}): {str(e).strip().splitlines()[-1]}") from None
    except KeyboardInterrupt:
        print(f"stopped ({KEPT})", file=sys.stderr)
        return 130
    finally:
        if writer:
            writer.close()
        if started_ray:
            ray.shutdown()
    tally.seconds = time.perf_counter() - started
    engine = f"ray: {actors} actor{'s' if actors > 1 else ''}{f' with {gpus:g} GPU each' if gpus else ''}"
    summarize(tally, previous, args.out, engine, provider)
    return exit_status(tally, previous, items)
