"""A model repository NVIDIA Triton Inference Server loads as is (onnxruntime backend):

    DIR/<id>/config.pbtxt     platform onnxruntime_onnx, batching, instance group, I/O (dims exclude batch)
    DIR/<id>/1/model.onnx     the shipped file, byte for byte
    DIR/<id>/labels.txt       class names, one per line (image and lesson classifiers)

    python -m export --triton triton-repo all
"""
import shutil
from pathlib import Path

import onnx

from demo.contract import ModelMetadata, read_manifest, sha256_file
from export.metadata import read_metadata

MAX_BATCH = 256  # demo/inference/remote.py's TRITON_MAX_BATCH: --backend triton sends at most this many rows a call
ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64",
                  onnx.TensorProto.INT32: "TYPE_INT32", onnx.TensorProto.UINT8: "TYPE_UINT8"}


def tensor_entries(values, batched: bool, labels: bool = False) -> list[str]:
    """ONNX graph inputs/outputs -> config.pbtxt entries; a dynamic axis is -1, the batch axis dropped."""
    entries = []
    for value in values:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.dim_value else -1 for d in tensor.shape.dim]
        dims = dims[1:] if batched else dims
        label = '\n    label_filename: "labels.txt"' if labels else ""
        entries.append(f'  {{\n    name: "{value.name}"\n    data_type: {ONNX_TO_TRITON[tensor.elem_type]}\n'
                       f'    dims: [ {", ".join(map(str, dims))} ]{label}\n  }}')
    return entries


def model_config(model_id: str, graph: onnx.GraphProto, meta: ModelMetadata) -> str:
    # char RNN state tensors are [layers, batch, hidden]: batch isn't the first axis, so Triton can't batch them
    batched = meta.task != "sequence-prediction"
    has_labels = bool(meta.labels)
    lines = [f'name: "{model_id}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {MAX_BATCH if batched else 0}",
             "input [", ",\n".join(tensor_entries(graph.input, batched)), "]",
             "output [", ",\n".join(tensor_entries(graph.output[:1], batched, has_labels)
                                    + tensor_entries(graph.output[1:], batched)), "]"]
    if batched:
        lines.append("dynamic_batching {\n  max_queue_delay_microseconds: 100\n}")
    lines.append("instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]")
    return "\n".join(lines) + "\n"


def write_repository(model_ids: list[str], models_dir: Path, out_dir: Path) -> list[Path]:
    written = []
    manifest = read_manifest(models_dir)["models"]
    for model_id in model_ids:
        if model_id not in manifest:
            raise SystemExit(f"{model_id}: not in {Path(models_dir) / 'manifest.json'}; export it first")
        source = Path(models_dir) / manifest[model_id]["onnx"]
        meta = read_metadata(source)
        graph = onnx.load(str(source), load_external_data=False).graph
        folder = Path(out_dir) / model_id
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / "1" / "model.onnx")
        # Triton must run the very bytes the app and CLI read their metadata from (--backend triton)
        if sha256_file(folder / "1" / "model.onnx") != manifest[model_id]["sha256"]:
            raise SystemExit(f"{source}: sha256 differs from the manifest's; re-export {model_id} before serving it")
        (folder / "config.pbtxt").write_text(model_config(model_id, graph, meta))
        if meta.labels:
            (folder / "labels.txt").write_text("\n".join(meta.labels) + "\n")
        written.append(folder)
        print(f"{folder}: config.pbtxt, 1/model.onnx{', labels.txt' if meta.labels else ''}")
    return written
