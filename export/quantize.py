"""fp32 ONNX -> int8 ONNX for the image models, gated on accuracy.

CNNs: static quantization (QDQ, per-channel int8 weights, uint8 activations) calibrated on
training images. Linear/MLP: dynamic quantization (int8 weights, activations quantized per
batch at run time). The int8 file carries the fp32 file's metadata plus its own measured test
accuracy; a drop of more than 0.3 points fails the export and writes nothing.

    python -m export --int8 mnist-cnn        # -> models/mnist-cnn-int8.onnx + manifest row
"""
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from demo.contract import (InputSpec, MeasuredWith, ModelMetadata, Quantization, Variant, normalize, read_manifest,
                           sha256_file, update_manifest)
from export.metadata import read_metadata, save_checked, set_metadata
from export.parity import cpu_session
from training.data import load_split
from training.registry import get_entry

MAX_DROP = 0.003  # accuracy points (as a fraction) int8 may lose against fp32
CALIBRATION_IMAGES = 1000
# the x86 features ORT's int8 kernels dispatch on: the recorded accuracy depends on which are there
INT8_CPU_FLAGS = ("sse4_1", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                  "amx_tile", "amx_int8")


class QuantizationError(RuntimeError):
    pass


class TrainingImages(CalibrationDataReader):
    """A seeded random sample of training images, normalized as the model expects, in batches."""

    def __init__(self, input_spec: InputSpec, input_name: str, dataset: str, count: int, data_dir=None, batch: int = 100):
        images, _ = load_split(dataset, "train", data_dir)
        pick = np.random.default_rng(0).choice(len(images), count, replace=False)
        self.batches = [normalize(images[pick[i:i + batch]], input_spec) for i in range(0, count, batch)]
        self.input_name = input_name
        self.position = 0

    def get_next(self):
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1]}


def measured_with() -> MeasuredWith:
    """The ORT version and CPU an int8 accuracy was measured with: int8 kernels (and so a few
    predictions) differ by instruction set, so a recorded figure says where it came from."""
    cpuinfo = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            cpuinfo.setdefault(key.strip(), value.strip())  # the first core's entry
    except OSError:  # not Linux: platform's name, no flags
        pass
    flags = set(cpuinfo.get("flags", "").split())
    return MeasuredWith(onnxruntime.__version__, cpuinfo.get("model name") or platform.processor() or platform.machine(),
                        tuple(f for f in INT8_CPU_FLAGS if f in flags))


def measure_accuracy(onnx_path: Path, meta: ModelMetadata, data_dir=None) -> float:
    images, labels = load_split(meta.dataset, "test", data_dir)
    x = normalize(images, meta.input)
    session = cpu_session(str(onnx_path))
    names = meta.tensors
    predicted = np.concatenate([session.run([names.output], {names.input: x[i:i + 1000]})[0].argmax(1)
                                for i in range(0, len(x), 1000)])
    return float((predicted == labels).mean())


def quantize_model(model_id: str, models_dir: Path, data_dir=None) -> dict:
    entry = get_entry(model_id)
    if entry.task != "image-classification":
        raise QuantizationError(f"{model_id}: int8 variants are made for image models only")
    models_dir = Path(models_dir)
    fp32_path = models_dir / f"{model_id}.onnx"
    meta = read_metadata(fp32_path)
    int8_id = f"{model_id}-int8"
    out_path = models_dir / f"{int8_id}.onnx"
    static = entry.arch not in ("softmax", "mlp")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = Path(tmp) / "int8.onnx"
        # the dynamo exporter's value_info annotations trip ONNX shape inference inside the quantizer
        # ("inferred shape and existing shape differ"); drop them and let inference redo them
        source = onnx.load(str(fp32_path))
        del source.graph.value_info[:]
        cleaned = Path(tmp) / "fp32.onnx"
        onnx.save_model(source, str(cleaned))
        if static:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(cleaned), str(prepared))  # shape inference + graph folding first
            reader = TrainingImages(meta.input, meta.tensors.input, entry.dataset, CALIBRATION_IMAGES, data_dir)
            # the first conv, which sees the raw image, stays fp32: quantized, fashion-cnn lost 0.57 points
            # (whatever the calibration method); kept, it loses 0.08 and costs little (1->10 channels)
            first_conv = next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")
            quantize_static(str(prepared), str(tmp_out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=[first_conv])
            method = Quantization("static", format="QDQ", weights="int8 per-channel", activations="uint8",
                                  calibration=f"{CALIBRATION_IMAGES} training images (seeded sample), MinMax",
                                  kept_fp32=(first_conv,))
        else:
            quantize_dynamic(str(cleaned), str(tmp_out), weight_type=QuantType.QInt8)
            method = Quantization("dynamic", weights="int8", activations="uint8, per batch at run time")
        accuracy = measure_accuracy(tmp_out, meta, data_dir)
        fp32_accuracy = meta.measurements.test_accuracy
        drop = fp32_accuracy - accuracy
        print(f"{int8_id}: test accuracy {accuracy:.4f} (fp32 {fp32_accuracy:.4f}, drop {drop * 100:+.2f} pt)")
        if drop > MAX_DROP:
            raise QuantizationError(f"{int8_id}: accuracy drops {drop * 100:.2f} points (> {MAX_DROP * 100:.1f}); not written")
        proto = onnx.load(str(tmp_out))
        method = replace(method, measured_with=measured_with())
        # the fp32 taps name values of the fp32 graph: export --inside finds them again in this one
        set_metadata(proto, replace(meta, id=int8_id, precision="int8", inspection=None,
                                    measurements=replace(meta.measurements, test_accuracy=accuracy),
                                    variant=Variant(model_id, fp32_accuracy, sha256_file(fp32_path), method)))
        save_checked(proto, out_path)

    fp32_row = read_manifest(models_dir)["models"][model_id]
    row = {**fp32_row, "onnx": out_path.name, "sha256": sha256_file(out_path), "bytes": out_path.stat().st_size,
           "test_accuracy": accuracy, "precision": "int8", "variant_of": model_id}
    update_manifest(models_dir, int8_id, row)
    return row
