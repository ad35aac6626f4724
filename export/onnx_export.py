"""Checkpoint -> self-describing ONNX file, gated by parity with PyTorch.

    python -m export mnist-cnn            # models/mnist-cnn.safetensors -> models/mnist-cnn.onnx
    python -m export all

The file is the contract with demo/: everything the runtime needs (labels, input spec,
normalization, polarity, measured accuracy, source checkpoint sha256, versions) is JSON under
the metadata_props key "tinyzoo". Parity failure raises and writes nothing.
"""
import argparse
import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from safetensors.torch import load_file

from demo.manifest import sha256_file, update_manifest
from export.parity import ATOL, check_parity
from training.data import PROJECT_ROOT, load_split
from training.models import count_parameters
from training.registry import REGISTRY, ModelEntry, get_entry
from training.train import Normalizer

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "image", "logits"
METADATA_KEY = "tinyzoo"
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"


def load_checkpoint(model_id: str, models_dir: Path) -> tuple[ModelEntry, torch.nn.Module, dict, Path]:
    """Weights come from safetensors: loading executes no pickle."""
    entry = get_entry(model_id)
    weights, record_path = Path(models_dir) / f"{model_id}.safetensors", Path(models_dir) / f"{model_id}.json"
    for path in (weights, record_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train it first (`tinyzoo train {model_id}` or `make models`)")
    record = json.loads(record_path.read_text())
    if record.get("model_args") != entry.model_args:
        raise ValueError(f"{record_path}: trained with model_args {record.get('model_args')}, but the registry "
                         f"now says {entry.model_args}; retrain `tinyzoo train {model_id}`")
    model = entry.make_model()
    model.load_state_dict(load_file(weights), strict=True)
    return entry, model.eval(), record, weights


def to_onnx(model: torch.nn.Module, entry: ModelEntry) -> onnx.ModelProto:
    # dynamo exporter; batch 2 example so the batch axis is not specialised to 1
    example = torch.zeros(2, *entry.input.shape)
    program = torch.onnx.export(
        model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET, external_data=False, verbose=False,
    )
    return program.model_proto


def normalized_test_set(entry: ModelEntry, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_split(entry.dataset, "test", data_dir)
    normalize = Normalizer(entry, "cpu")
    x = normalize(normalize.pixels(torch.from_numpy(images.copy()))).numpy()
    return np.ascontiguousarray(x, dtype=np.float32), labels


def export_model(model_id: str, models_dir: Path = DEFAULT_MODELS_DIR, out_dir: Path | None = None,
                 data_dir=None) -> dict:
    """-> the manifest row written for this model."""
    out_dir = Path(out_dir or models_dir)
    entry, model, record, weights_path = load_checkpoint(model_id, models_dir)
    proto = to_onnx(model, entry)
    inputs, labels = normalized_test_set(entry, data_dir)
    report = check_parity(model, proto.SerializeToString(), inputs, labels, INPUT_NAME, OUTPUT_NAME)

    metadata = {
        **entry.metadata(),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "output": "logits",  # softmax is the runtime's job
        "test_accuracy": report.ort_accuracy,
        "test_examples": report.examples,
        "parity": {"atol": ATOL, "max_abs_diff": report.max_abs_diff, "argmax_agreement": report.argmax_agreement},
        "params": count_parameters(model),
        "checkpoint": weights_path.name,
        "checkpoint_sha256": sha256_file(weights_path),
        "train": {"seconds_per_epoch": record["seconds_per_epoch"], "epochs": len(record["history"]),
                  "device": record["device"], "config": record["config"]},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                     "opset": OPSET, "exporter": "torch.onnx dynamo"},
    }
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
    proto.doc_string = f"tinyzoo {model_id}: {entry.arch} on {entry.dataset}; metadata JSON under '{METADATA_KEY}'"

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model_id}.onnx"
    tmp = out_dir / f".{model_id}.onnx.tmp"
    onnx.save_model(proto, tmp, save_as_external_data=False)
    onnx.checker.check_model(str(tmp), full_check=True)
    os.replace(tmp, path)

    row = {
        "onnx": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "checkpoint": weights_path.name,
        "checkpoint_sha256": metadata["checkpoint_sha256"],
        "task": entry.task,
        "dataset": entry.dataset,
        "params": metadata["params"],
        "test_accuracy": report.ort_accuracy,
        "seconds_per_epoch": record["seconds_per_epoch"],
        "epochs": len(record["history"]),
    }
    update_manifest(out_dir, model_id, row)
    diffs = ", ".join(f"b{bs}: {d:.1e}" for bs, d in report.max_abs_diff.items())
    print(f"{path}: parity ok ({diffs}; argmax {report.argmax_agreement:.2%} of {report.examples}), "
          f"test accuracy {report.ort_accuracy:.4f}, {row['bytes'] / 1024:.0f} KiB")
    return row


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help=f"model ids, or 'all'. Registered: {', '.join(REGISTRY)}")
    p.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR), help="where the checkpoints are")
    p.add_argument("--out-dir", default=None, help="where .onnx + manifest.json go (default: --models-dir)")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (env TINYZOO_DATA)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    ids = list(REGISTRY) if args.models == ["all"] else args.models
    for model_id in ids:
        get_entry(model_id)
    for model_id in ids:
        export_model(model_id, Path(args.models_dir), args.out_dir and Path(args.out_dir), args.data_dir)
    return 0
