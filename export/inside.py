"""Look inside: taps (named intermediate outputs), per-layer parity, and where each model fails.

    tinyzoo export --inside all          # every shipped image file, fp32 then int8; graphs untouched

For an fp32 file, every layer the course names (conv1 -> pool1 -> ReLU1 -> ... -> fc; a ResNet by stage)
is found in the graph by the module scope the dynamo exporter records on each node, then checked
against the PyTorch module's output (forward hooks) at batch 1 and 64 — names, shapes, allclose —
every failure collected; one failure and nothing is written. An int8 file taps the same values
(after their DequantizeLinear, as onnxruntime's qdq_loss_debug pairs them) and records each one's
SQNR against the fp32 file. Both get the confusion matrix of the full test set and its most confident
mistakes in models/mistakes/<id>.json; the trace must reproduce the recorded test accuracy.
"""
import ast
import base64
import io
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image
from torch import nn

from demo.contract import Inspection, ModelMetadata, Tap, load_split, normalize, read_manifest, sha256_file
from demo.contract.graph_outputs import with_outputs
from demo.contract.manifest import update_manifest, write_json_atomically
from export.metadata import read_metadata, save_checked, set_metadata
from export.parity import ParityError, cpu_session
from export.quantize import measured_with
from training.models import SmallResNet

TAP_ATOL, TAP_RTOL = 1e-4, 1e-4  # numpy.allclose per element: |ORT - torch| <= atol + rtol * |torch|
TAP_BATCHES = (1, 64)  # the first test images, as the runtime normalizes them
MISTAKES_SHOWN = 32
INT8_ELSEWHERE_TOLERANCE = 0.005  # as tests/test_int8.py's RECORDED_TOLERANCE: int8 sums differ by instruction set
MISTAKES_DIR = "mistakes"
SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # the module path of each node (a Python list literal)
LAYER_TYPES = {nn.Conv2d: ("conv", "conv"), nn.MaxPool2d: ("pool", "pool"), nn.AvgPool2d: ("pool", "pool"),
               nn.ReLU: ("ReLU", "relu"), nn.Tanh: ("tanh", "relu"), nn.Linear: ("fc", "dense")}


class TapError(ParityError):
    pass


@dataclass(frozen=True)
class PlannedTap:
    module: str  # the PyTorch module path, e.g. "features.0"
    name: str
    kind: str


def plan_taps(model: nn.Module) -> list[PlannedTap]:
    """The layers the course names, in forward order. A ResNet is shown by stage: its BatchNorm is
    folded into the convs by the exporter, so the stem and the stages' outputs are what exists."""
    if isinstance(model, SmallResNet):
        return resnet_taps(model)
    counts: dict[str, int] = {}
    plan = []
    for path, module in model.named_modules():
        if type(module) in LAYER_TYPES:
            prefix, kind = LAYER_TYPES[type(module)]
            counts[prefix] = counts.get(prefix, 0) + 1
            plan.append(PlannedTap(path, f"{prefix}{counts[prefix]}", kind))
    if plan and plan[-1].kind == "dense":
        plan[-1] = replace(plan[-1], kind="logits")
    if len([t for t in plan if t.name.startswith("fc")]) == 1:  # softmax regression: the one fc
        plan = [replace(t, name="fc") if t.name == "fc1" else t for t in plan]
    return plan


def resnet_taps(model: SmallResNet) -> list[PlannedTap]:
    blocks = [(i, m) for i, m in enumerate(model.features) if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU))]
    plan = [PlannedTap("features.2", "stem", "conv")]
    widths = []
    for index, block in blocks:
        width = block.body[0].out_channels
        if widths and widths[-1][0] == width:
            widths[-1] = (width, index)
        else:
            widths.append((width, index))
    plan += [PlannedTap(f"features.{index}", f"stage{n}", "residual") for n, (_, index) in enumerate(widths, 1)]
    return plan + [PlannedTap("head.0", "avg pool", "pool"), PlannedTap("head.3", "fc", "logits")]


def locate(proto: onnx.ModelProto, module: str) -> str:
    """The value a module outputs: the output of the last node exported inside its scope."""
    found = None
    for node in proto.graph.node:
        scopes = next((ast.literal_eval(p.value) for p in node.metadata_props if p.key == SCOPES_KEY), [])
        if module in scopes:
            found = node.output[0]
    if found is None:
        raise TapError(f"no node of the graph was exported from module {module!r} (is this a dynamo export?)")
    return found


def node_scopes_readable(proto: onnx.ModelProto) -> bool:
    return any(p.key == SCOPES_KEY for node in proto.graph.node for p in node.metadata_props)


@torch.no_grad()
def torch_taps(model: nn.Module, plan: list[PlannedTap], x: np.ndarray) -> list[np.ndarray]:
    modules = dict(model.named_modules())
    seen: dict[str, np.ndarray] = {}
    hooks = [modules[t.module].register_forward_hook(lambda _m, _i, out, key=t.module: seen.__setitem__(
        key, out.detach().numpy().copy())) for t in plan]
    try:
        model.eval()(torch.from_numpy(x))
    finally:
        for hook in hooks:
            hook.remove()
    return [seen[t.module] for t in plan]


def ort_taps(model_bytes: bytes, input_name: str, outputs: list[str], x: np.ndarray) -> list[np.ndarray]:
    """The taps exactly as the runtime gets them: the same bytes with the taps appended as outputs."""
    session = cpu_session(with_outputs(model_bytes, outputs))
    return session.run(outputs, {input_name: x})


@dataclass
class TapRow:
    tap: PlannedTap
    output: str
    torch_shape: tuple
    ort_shape: tuple
    max_abs_diff: float
    close: bool


def compare_taps(plan, outputs, expected: list[np.ndarray], got: list[np.ndarray]) -> list[TapRow]:
    rows = []
    for tap, output, e, g in zip(plan, outputs, expected, got):
        same_shape = e.shape == g.shape
        diff = float(np.max(np.abs(e - g))) if same_shape else math.inf
        close = same_shape and bool(np.allclose(g, e, atol=TAP_ATOL, rtol=TAP_RTOL))  # False on NaN too
        rows.append(TapRow(tap, output, e.shape, g.shape, diff, close))
    return rows


def print_table(model_id: str, batch_rows: dict[int, list[TapRow]]) -> None:
    print(f"{model_id}: per-layer parity, |ORT - torch| <= {TAP_ATOL:g} + {TAP_RTOL:g}*|torch|")
    print(f"  {'layer':<10} {'graph value':<16} {'shape':<16} " + " ".join(f"{'batch ' + str(b):>16}"
                                                                          for b in batch_rows))
    for i, row in enumerate(next(iter(batch_rows.values()))):
        cells = []
        for rows in batch_rows.values():
            r = rows[i]
            shape_note = "" if r.torch_shape == r.ort_shape else f" shape {r.ort_shape}!"
            cells.append(f"{r.max_abs_diff:9.1e} {'ok' if r.close else 'FAIL'}{shape_note}".rjust(16))
        shape = "x".join(map(str, row.torch_shape[1:]))
        print(f"  {row.tap.name:<10} {row.output:<16} {shape:<16} " + " ".join(cells))


def fp32_taps(model_id: str, model: nn.Module, path: Path, meta: ModelMetadata, inputs: np.ndarray) -> list[Tap]:
    """Every planned tap located, then compared with torch at each batch; all failures raised together."""
    proto = onnx.load(str(path))
    if not node_scopes_readable(proto):
        raise TapError(f"{path}: nodes carry no module scopes; re-export it (`tinyzoo export {model_id}`)")
    plan = plan_taps(model)
    outputs = [locate(proto, t.module) for t in plan]
    batch_rows = {}
    for batch in TAP_BATCHES:
        x = inputs[:batch]
        batch_rows[batch] = compare_taps(plan, outputs, torch_taps(model, plan, x),
                                         ort_taps(path.read_bytes(), meta.tensors.input, outputs, x))
    print_table(model_id, batch_rows)
    failures = [f"batch {b} {r.tap.name} ({r.output}): " + (f"shape {r.ort_shape} in ONNX, {r.torch_shape} in torch"
                if r.torch_shape != r.ort_shape else f"max |Δ| {r.max_abs_diff:.3g}")
                for b, rows in batch_rows.items() for r in rows if not r.close]
    if failures:
        raise TapError(f"{model_id}: {len(failures)} tap check(s) (tap × batch) differ from PyTorch; nothing written:\n  "
                       + "\n  ".join(failures))
    return [Tap(output, t.name, t.kind, tuple(int(d) for d in batch_rows[TAP_BATCHES[0]][i].torch_shape[1:]),
                max_abs_diff=max(rows[i].max_abs_diff for rows in batch_rows.values()))
            for i, (t, output) in enumerate(zip(plan, outputs))]


def sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
    """20 log10(||x|| / ||x - q||), as qdq_loss_debug.compute_signal_to_quantization_noice_ratio."""
    eps = np.finfo(np.float32).eps
    signal = max(float(np.linalg.norm(reference)), eps)
    noise = max(float(np.linalg.norm(reference - quantized)), eps)
    return round(20 * math.log10(signal / noise), 2)


def int8_taps(model_id: str, path: Path, fp32_path: Path, fp32_meta: ModelMetadata, inputs: np.ndarray) -> list[Tap]:
    """The fp32 taps found again in the int8 graph (after dequantization where the quantizer added it);
    a value the quantizer fused away (a ReLU absorbed by a uint8 range) has no int8 tap."""
    if fp32_meta.inspection is None:
        raise TapError(f"{model_id}: its fp32 file has no taps yet; run `tinyzoo export --inside` on it first")
    produced = {out for node in onnx.load(str(path)).graph.node for out in node.output}
    pairs = []
    for tap in fp32_meta.inspection.taps:
        for candidate in (f"{tap.output}_DequantizeLinear_Output", tap.output):
            if candidate in produced:
                pairs.append((tap, candidate))
                break
    x = inputs[:max(TAP_BATCHES)]
    reference = ort_taps(fp32_path.read_bytes(), fp32_meta.tensors.input, [t.output for t, _ in pairs], x)
    quantized = ort_taps(path.read_bytes(), fp32_meta.tensors.input, [c for _, c in pairs], x)
    taps = [Tap(candidate, tap.name, tap.kind, tap.shape, sqnr_db=sqnr_db(ref, q))
            for (tap, candidate), ref, q in zip(pairs, reference, quantized)]
    print(f"{model_id}: per-layer SQNR against fp32 (dB): "
          + ", ".join(f"{t.name} {t.sqnr_db:.1f}" for t in taps))
    return taps


def first_weights(proto: onnx.ModelProto) -> str | None:
    """The first Conv/Gemm's weights when they are float32 in this graph (an initializer or a dequantized
    value); None where a dynamic int8 file keeps them as int8."""
    floats = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    produced = {out for node in proto.graph.node for out in node.output}
    node = next((n for n in proto.graph.node if n.op_type in ("Conv", "Gemm")), None)
    if node is None:
        return None
    name = node.input[1]
    return name if name in floats or (name in produced and name.endswith("_DequantizeLinear_Output")) else None


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def where_it_fails(path: Path, meta: ModelMetadata, images: np.ndarray, labels: np.ndarray) -> dict:
    """The file's own answers on the full test set -> confusion (rows = true class) and the most
    confident mistakes (calibrated probability, as the app shows it)."""
    session = cpu_session(str(path))
    x = normalize(images, meta.input)
    logits = np.concatenate([session.run([meta.tensors.output], {meta.tensors.input: x[i:i + 1000]})[0]
                             for i in range(0, len(x), 1000)]).astype(np.float64)
    temperature = meta.calibration.temperature if meta.calibration else 1.0
    z = logits / temperature
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    predicted = probs.argmax(1)
    classes = len(meta.labels)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:MISTAKES_SHOWN]
    mistakes = [{"index": int(i), "true": int(labels[i]), "predicted": int(predicted[i]),
                 "confidence": round(float(probs[i, predicted[i]]), 4), "png": png_base64(images[i])} for i in worst]
    return {"model": meta.id, "dataset": meta.dataset, "labels": list(meta.labels), "test_examples": int(len(labels)),
            "accuracy": float(np.trace(confusion) / len(labels)), "confusion": confusion.tolist(), "mistakes": mistakes}


def check_accuracy(meta: ModelMetadata, report: dict) -> None:
    """The confusion matrix must reproduce the recorded accuracy exactly; only an int8 file measured on
    another instruction set may differ (its int8 kernels flip a few borderline answers), within
    INT8_ELSEWHERE_TOLERANCE, and the report then says which CPU it comes from."""
    here = measured_with()
    report["measured_with"] = asdict(here)
    recorded, got = meta.measurements.test_accuracy, report["accuracy"]
    if got == recorded:
        return
    recorded_on = meta.variant.quantization.measured_with if meta.variant else None
    elsewhere = recorded_on is not None and recorded_on.cpu_flags != here.cpu_flags
    if not (elsewhere and abs(got - recorded) <= INT8_ELSEWHERE_TOLERANCE):
        raise TapError(f"{meta.id}: the confusion matrix gives accuracy {got:.4f}, the file records {recorded:.4f}; "
                       "nothing written")
    print(f"{meta.id}: confusion measured on {here.cpu} ({', '.join(here.cpu_flags)}): accuracy {got:.4f}; "
          f"{recorded:.4f} recorded with {', '.join(recorded_on.cpu_flags)}")


def write_mistakes(models_dir: Path, model_id: str, report: dict) -> str:
    """-> the file's path relative to the models dir, as the metadata and the manifest name it."""
    relative = f"{MISTAKES_DIR}/{model_id}.json"
    (models_dir / MISTAKES_DIR).mkdir(parents=True, exist_ok=True)
    write_json_atomically(models_dir / relative, report)
    return relative


def look_inside(models_dir: Path, model_id: str, data_dir=None, checkpoints_dir: Path | None = None) -> None:
    """Taps (checked), confusion and mistakes for one shipped image file; its graph stays the same bytes.
    checkpoints_dir: where <id>.safetensors is, when not beside the file (export --out-dir)."""
    models_dir = Path(models_dir)
    rows = read_manifest(models_dir)["models"]
    path = models_dir / rows[model_id]["onnx"]
    meta = read_metadata(path)
    images, labels = load_split(meta.dataset, "test", data_dir)
    inputs = normalize(images[:max(TAP_BATCHES)], meta.input)
    if meta.variant is None:
        from export.onnx_export import load_checkpoint  # the exporter imports this module

        _, model, _, _ = load_checkpoint(model_id, checkpoints_dir or models_dir)
        taps = fp32_taps(model_id, model, path, meta, inputs)
    else:
        fp32_path = models_dir / rows[meta.variant.variant_of]["onnx"]
        taps = int8_taps(model_id, path, fp32_path, read_metadata(fp32_path), inputs)
        # the fp32 file's metadata was just rewritten: its graph is the one quantized, its bytes moved
        meta = replace(meta, variant=replace(meta.variant, fp32_sha256=sha256_file(fp32_path)))
    report = where_it_fails(path, meta, images, labels)
    check_accuracy(meta, report)
    mistakes = write_mistakes(models_dir, model_id, report)
    proto = onnx.load(str(path))
    inspection = Inspection(tuple(taps), TAP_ATOL, TAP_RTOL, TAP_BATCHES, mistakes, first_weights(proto))
    set_metadata(proto, replace(meta, inspection=inspection))
    save_checked(proto, path)
    update_manifest(models_dir, model_id, {**rows[model_id], "sha256": sha256_file(path), "bytes": path.stat().st_size,
                                           "mistakes": mistakes, "mistakes_sha256": sha256_file(models_dir / mistakes)})
    print(f"{model_id}: {len(taps)} taps, {len(report['mistakes'])} most confident mistakes of "
          f"{report['test_examples'] - int(np.trace(report['confusion']))} -> {mistakes}")


def look_inside_all(model_ids: list[str], models_dir: Path, data_dir=None) -> None:
    """fp32 files first: an int8 file's taps are found and measured against its fp32 file's."""
    rows = read_manifest(models_dir)["models"]
    images = [i for i in model_ids if rows.get(i, {}).get("task") == "image-classification"]
    if model_ids != ["all"] and len(images) != len(model_ids):
        raise TapError(f"not shipped image models: {', '.join(sorted(set(model_ids) - set(images)))}")
    wanted = [i for i, r in rows.items() if r.get("task") == "image-classification"] if model_ids == ["all"] else images
    for model_id in sorted(wanted, key=lambda i: "variant_of" in rows[i]):
        look_inside(models_dir, model_id, data_dir)
