"""Checkpoint -> self-describing ONNX file, gated by parity with PyTorch.

    python -m export mnist-cnn            # models/mnist-cnn.safetensors -> models/mnist-cnn.onnx
    python -m export all

The file is the contract with demo/: everything the runtime needs (labels, input spec,
normalization, polarity, measured accuracy, source checkpoint sha256, versions) is
demo.contract.ModelMetadata, JSON under the metadata_props key "tinyzoo". Parity failure raises
and writes nothing.
"""
import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from safetensors.torch import load_file

from demo.contract import (Measurements, ModelMetadata, Parity, Provenance, SequenceSpec, TensorNames, TrainSummary,
                           normalize, read_manifest, sha256_file, update_manifest)
from demo.contract.tensors import FEATURES_INPUT, IMAGE_INPUT, LOGITS, TABULAR_OUTPUTS, TOKENS_INPUT, state_names
from export.examples import write_examples
from export.inside import look_inside
from export.metadata import rewrite_all, save_checked, set_metadata
from export.parity import (ATOL, BATCH_SIZES, ParityError, ParityReport, check_names, check_parity,
                           check_sequence_parity, compare, cpu_session)
from training.charrnn import CharRNN, encode
from training.config import MAX_TEXT
from training.data import PROJECT_ROOT, load_split
from training.models import count_parameters
from training.registry import REGISTRY, ModelEntry, get_entry

OPSET = 18
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"


def load_checkpoint(model_id: str, models_dir: Path) -> tuple[ModelEntry, torch.nn.Module, dict, Path]:
    """Weights come from safetensors: loading executes no pickle. The checkpoint's JSON carries
    the constructor args (the registry's, plus any fixed by the data, e.g. vocab_size)."""
    entry = get_entry(model_id)
    weights, record_path = Path(models_dir) / f"{model_id}.safetensors", Path(models_dir) / f"{model_id}.json"
    for path in (weights, record_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train it first (`tinyzoo train {model_id}` or `make models`)")
    record = json.loads(record_path.read_text())
    saved_args = record.get("model_args") or {}
    derived = {k: saved_args[k] for k in entry.derived_args if k in saved_args}
    if saved_args != {**entry.model_args, **derived} or len(derived) != len(entry.derived_args):
        raise ValueError(f"{record_path}: trained with model_args {saved_args}, but the registry "
                         f"now says {entry.model_args} (+ {list(entry.derived_args)}); retrain `tinyzoo train {model_id}`")
    model = entry.make_model(**derived)
    model.load_state_dict(load_file(weights), strict=True)
    return entry, model.eval(), record, weights


def to_onnx(model: torch.nn.Module, entry: ModelEntry) -> onnx.ModelProto:
    # dynamo exporter; batch 2 example so the batch axis is not specialised to 1
    example = torch.zeros(2, *entry.input.shape)
    program = torch.onnx.export(
        model, (example,), dynamo=True, input_names=[IMAGE_INPUT], output_names=[LOGITS],
        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET, external_data=False, verbose=False,
    )
    return program.model_proto


def normalized_test_set(entry: ModelEntry, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The test set exactly as the runtime feeds it: the contract's normalize()."""
    images, labels = load_split(entry.dataset, "test", data_dir)
    return normalize(images, entry.input), labels


def export_image(entry: ModelEntry, model, record: dict, data_dir) -> tuple[onnx.ModelProto, ParityReport, dict]:
    proto = to_onnx(model, entry)
    inputs, labels = normalized_test_set(entry, data_dir)
    report = check_parity(model, proto.SerializeToString(), inputs, labels, IMAGE_INPUT, LOGITS)
    return proto, report, {"tensors": TensorNames(IMAGE_INPUT, LOGITS)}


def sequence_io_names(model: CharRNN) -> tuple[list[str], list[str]]:
    state_in, state_out = state_names(["h", "c"][:model.state_count])
    return [TOKENS_INPUT, *state_in], [LOGITS, *state_out]


def sequence_to_onnx(model: CharRNN) -> onnx.ModelProto:
    # Legacy TorchScript exporter on purpose: torch 2.14's dynamo exporter unrolls nn.RNN over the
    # example's time steps (sequence length fixed at 5) and declares a static sequence axis on the
    # LSTM/GRU outputs; the legacy path emits ONNX RNN/LSTM/GRU ops with a truly dynamic length.
    inputs, outputs = sequence_io_names(model)
    tokens = torch.zeros(2, 5, dtype=torch.long)
    axes = {TOKENS_INPUT: {0: "batch", 1: "sequence"}, LOGITS: {0: "batch", 1: "sequence"},
            **{name: {1: "batch"} for name in inputs[1:] + outputs[1:]}}
    buffer = io.BytesIO()
    torch.onnx.export(model, (tokens, *model.initial_state(2)), buffer, dynamo=False, input_names=inputs,
                      output_names=outputs, dynamic_axes=axes, opset_version=OPSET)
    return onnx.load_from_string(buffer.getvalue())


def export_sequence(entry: ModelEntry, model: CharRNN, record: dict) -> tuple[onnx.ModelProto, ParityReport, dict]:
    proto = sequence_to_onnx(model)
    vocab, pair = record["vocab"], record["pair"]
    inputs, outputs = sequence_io_names(model)
    tokens = encode(pair["input_text"], vocab).numpy()
    targets = encode(pair["target_text"], vocab).numpy()
    report = check_sequence_parity(model, proto.SerializeToString(), inputs, outputs, tokens, targets,
                                   (model.layers, model.hidden), len(vocab))
    return proto, report, {
        "tensors": TensorNames(TOKENS_INPUT, LOGITS, tuple(inputs[1:]), tuple(outputs[1:])),
        "sequence": SequenceSpec(tuple(vocab), MAX_TEXT, model.layers, model.hidden, pair, record["solved_at_epoch"]),
    }


def export_tabular(entry: ModelEntry, model, record: dict) -> tuple[onnx.ModelProto, ParityReport, dict]:
    """Lesson models: raw feature values [N, F] -> [N, outputs], any scaling inside the graph."""
    output_name = TABULAR_OUTPUTS[entry.lesson.output]
    features = len(entry.lesson.features)
    program = torch.onnx.export(
        model, (torch.zeros(2, features),), dynamo=True, input_names=[FEATURES_INPUT], output_names=[output_name],
        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET, external_data=False, verbose=False,
    )
    proto = program.model_proto
    inputs, targets = entry.lesson.eval_data()
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    session = cpu_session(proto.SerializeToString())
    check_names(session, [FEATURES_INPUT], [output_name])
    report = ParityReport(examples=len(inputs))
    for bs in BATCH_SIZES:
        report.max_abs_diff[f"batch {bs}"] = compare(model, session, {FEATURES_INPUT: inputs[:bs]}, [output_name],
                                                     ATOL, f"batch {bs}")
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    got = session.run([output_name], {FEATURES_INPUT: inputs})[0]
    decide = {"logits": lambda v: v.argmax(1), "probability": lambda v: (v[:, 0] >= 0.5).astype(np.int64)}.get(
        entry.lesson.output)
    report.ort_accuracy = None  # measured only where the evaluation data has targets
    if decide is not None:  # classifiers: every decision must agree, as for the image models
        report.argmax_agreement = float((decide(expected) == decide(got)).mean())
        if report.argmax_agreement != 1.0:
            raise ParityError(f"decisions agree on {report.argmax_agreement:.2%} of {len(inputs)} inputs; 100% required")
        if targets is not None:
            report.ort_accuracy = float((decide(got) == np.asarray(targets).astype(np.int64)).mean())
            report.torch_accuracy = float((decide(expected) == np.asarray(targets).astype(np.int64)).mean())
    else:
        report.argmax_agreement = 1.0
    return proto, report, {"tensors": TensorNames(FEATURES_INPUT, output_name),
                           "results": {k: v for k, v in record["results"].items() if k != "plots"}}


# one exporter per trainer family (the registry entry names it): (entry, model, record, data_dir)
EXPORTERS = {"image": export_image, "sequence": lambda e, m, r, _: export_sequence(e, m, r),
             "lesson": lambda e, m, r, _: export_tabular(e, m, r)}


def compact_history(record: dict) -> list[dict]:
    """The checkpoint's per-epoch metrics (what the app plots), numbers cut to 5 significant digits."""
    return [{k: float(f"{v:.5g}") if isinstance(v, float) else v for k, v in row.items()}
            for row in record.get("history", [])]


def export_model(model_id: str, models_dir: Path = DEFAULT_MODELS_DIR, out_dir: Path | None = None,
                 data_dir=None) -> dict:
    """-> the manifest row written for this model."""
    out_dir = Path(out_dir or models_dir)
    entry, model, record, weights_path = load_checkpoint(model_id, models_dir)
    proto, report, task_meta = EXPORTERS[entry.family](entry, model, record, data_dir)

    results = task_meta.pop("results", {})
    metadata = ModelMetadata(
        **entry.metadata(), **task_meta,
        measurements=Measurements(report.ort_accuracy, report.examples, count_parameters(model),
                                  Parity(ATOL, report.max_abs_diff, report.argmax_agreement), results),
        provenance=Provenance(weights_path.name, sha256_file(weights_path), record["model_args"], {
            "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "opset": OPSET,
            "exporter": "torch.onnx legacy" if entry.task == "sequence-prediction" else "torch.onnx dynamo"}),
        train=TrainSummary(record["seconds_per_epoch"], record["epochs"], record["device"], record["config"],
                           record.get("selected_epoch"), tuple(compact_history(record))),
    )
    set_metadata(proto, metadata)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model_id}.onnx"
    save_checked(proto, path)

    row = {
        "onnx": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "checkpoint": weights_path.name,
        "checkpoint_sha256": metadata.provenance.checkpoint_sha256,
        "task": entry.task,
        "dataset": entry.dataset,
        "params": metadata.measurements.params,
        "test_accuracy": report.ort_accuracy,
        "seconds_per_epoch": record["seconds_per_epoch"],
        "epochs": record["epochs"],
    }
    update_manifest(out_dir, model_id, row)
    diffs = ", ".join(f"{case}: {d:.1e}" for case, d in report.max_abs_diff.items())
    accuracy = "n/a" if report.ort_accuracy is None else f"{report.ort_accuracy:.4f}"
    print(f"{path}: parity ok ({diffs}; argmax {report.argmax_agreement:.2%} of {report.examples}), "
          f"test accuracy {accuracy}, {row['bytes'] / 1024:.0f} KiB")
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help=f"model ids, or 'all'. Registered: {', '.join(REGISTRY)}")
    p.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR), help="where the checkpoints are")
    p.add_argument("--out-dir", default=None, help="where .onnx + manifest.json go (default: --models-dir)")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (env TINYZOO_DATA)")
    p.add_argument("--int8", action="store_true",
                   help="quantize the (already exported) image models to <id>-int8.onnx, gated on accuracy")
    p.add_argument("--triton", metavar="DIR", default=None,
                   help="write a Triton model repository of the exported models into DIR")
    p.add_argument("--rewrite-metadata", action="store_true",
                   help="rewrite the shipped files' metadata in the current schema version (graph untouched; "
                        "'all' = every file in manifest.json, int8 included)")
    p.add_argument("--inside", action="store_true",
                   help="tap every named layer of the shipped image files (checked against PyTorch per layer; "
                        "SQNR for int8), and write each one's confusion matrix and most confident mistakes "
                        "to <models-dir>/mistakes (graph untouched; 'all' = every image file)")
    p.add_argument("--examples", action="store_true",
                   help="write one test-set PNG per class to <models-dir>/examples for the app")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    models_dir = Path(args.models_dir)
    if args.examples:
        write_examples(models_dir, args.data_dir)
        if not args.models:
            return 0
    if not args.models:
        parser.error("name the models to export (or 'all')")
    shipped = list(read_manifest(models_dir)["models"])  # int8 files included
    if args.rewrite_metadata:
        rewrite_all(shipped if args.models == ["all"] else args.models, models_dir)
        return 0
    if args.inside:
        from export.inside import TapError, look_inside_all

        try:
            look_inside_all(args.models, models_dir, args.data_dir)
        except TapError as e:  # a tap that differs from PyTorch, or an id that is no shipped image model
            print(f"tinyzoo export: {e}", file=sys.stderr)
            return 2
        return 0
    if args.triton:
        from export.triton import write_repository

        write_repository(shipped if args.models == ["all"] else args.models, models_dir, Path(args.triton))
        return 0
    ids = list(REGISTRY) if args.models == ["all"] else args.models
    for model_id in ids:
        get_entry(model_id)
    out_dir = Path(args.out_dir) if args.out_dir else models_dir
    if args.int8:
        from export.quantize import quantize_model

        for model_id in ids if args.models != ["all"] else [i for i in ids if get_entry(i).task == "image-classification"]:
            quantize_model(model_id, models_dir, args.data_dir)
            calibrated(models_dir, f"{model_id}-int8")
            look_inside(models_dir, f"{model_id}-int8", args.data_dir)
    else:
        for model_id in ids:
            export_model(model_id, models_dir, out_dir, args.data_dir)
            if get_entry(model_id).task == "image-classification":
                calibrated(out_dir, model_id)
                look_inside(out_dir, model_id, args.data_dir, models_dir)
    return 0


def calibrated(models_dir: Path, model_id: str) -> None:
    """Every shipped image file carries its temperature: a fresh export or int8 file is fitted at once."""
    from export.calibrate import HELD_OUT, calibrate

    c = calibrate(models_dir, model_id, HELD_OUT, "test")
    print(f"{model_id}: calibrated, T = {c.temperature:.3f} (NLL {c.nll_before:.4f} -> {c.nll_after:.4f})")
