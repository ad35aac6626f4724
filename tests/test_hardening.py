"""Hostile files: models with external data, pickle checkpoints, tampered or malformed manifests,
odd image modes and orientation."""
import io
import json
import pickle
import shutil

import numpy as np
import onnx
import pytest
import torch
from PIL import Image, PngImagePlugin
from safetensors import SafetensorError

from demo.contract import sha256_file
from demo.imaging.prepare import ImageInputError, open_image
from demo.imaging.read import read_regular_file
from demo.inference.runtime import ImageClassifier, ModelError, ModelZoo
from demo.web.server import main as demo_main
from export.onnx_export import load_checkpoint
from tests.conftest import drawn_digit_png


def test_model_with_external_data_is_refused(zoo, tmp_path):
    proto = onnx.load(str(zoo.models_dir / "mnist-mlp.onnx"))
    onnx.save_model(proto, str(tmp_path / "mnist-mlp.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    manifest = {"models": {"mnist-mlp": {**zoo.manifest["models"]["mnist-mlp"],
                                         "sha256": sha256_file(tmp_path / "mnist-mlp.onnx")}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="external data"):
        ModelZoo(tmp_path, provider="cpu").get("mnist-mlp")


def tampered_copy(zoo, folder, row_edit) -> None:
    """folder: the shipped manifest with mnist-softmax's row edited, and a mnist-softmax.onnx whose
    bytes differ from the shipped file by one byte."""
    data = bytearray((zoo.models_dir / "mnist-softmax.onnx").read_bytes())
    data[-100] ^= 0xFF
    (folder / "mnist-softmax.onnx").write_bytes(bytes(data))
    manifest = json.loads((zoo.models_dir / "manifest.json").read_text())
    manifest["models"] = {"mnist-softmax": manifest["models"]["mnist-softmax"]}
    row_edit(manifest["models"]["mnist-softmax"])
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("row_edit", [
    lambda row: row.update(sha256=None),
    lambda row: row.pop("sha256"),
    lambda row: row.update(sha256=""),
    lambda row: row.update(sha256="not-a-digest"),
], ids=["null", "missing", "empty", "not-hex"])
def test_manifest_row_without_a_digest_is_refused(zoo, tmp_path, row_edit):
    tampered_copy(zoo, tmp_path, row_edit)
    with pytest.raises(ModelError, match=r"manifest\.json: model 'mnist-softmax': 'sha256' .*(missing|not a 64-digit)"):
        ModelZoo(tmp_path, provider="cpu")


def test_tampered_model_with_its_digest_is_refused(zoo, tmp_path):
    tampered_copy(zoo, tmp_path, lambda row: None)
    with pytest.raises(ModelError, match=r"mnist-softmax\.onnx: sha256 does not match"):
        ModelZoo(tmp_path, provider="cpu").get("mnist-softmax")


def test_a_model_cannot_be_loaded_without_a_digest(zoo):
    with pytest.raises(ModelError, match="no valid sha256 to verify it against"):
        ImageClassifier(zoo.models_dir / "mnist-softmax.onnx", None, "cpu")


@pytest.mark.parametrize("manifest, message", [
    ("[1, 2]", "not a manifest"),
    ('"models"', "not a manifest"),
    ('{"models": []}', "not a manifest"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    ('{"models": {"mnist-cnn": "mnist-cnn.onnx"}}', "model 'mnist-cnn': row must be an object, got str"),
    ('{"models": {"mnist-cnn": {"sha256": "%s", "task": "image-classification"}}}' % ("0" * 64),
     "model 'mnist-cnn': 'onnx' missing"),
    ('{"models": {"mnist-cnn": {"onnx": "mnist-cnn.onnx", "sha256": "%s"}}}' % ("0" * 64),
     "model 'mnist-cnn': 'task' missing"),
    ('{"models": {"x": {"onnx": "../x.onnx", "sha256": "%s", "task": "tabular"}}}' % ("0" * 64),
     "'onnx' must be a file name inside the models folder"),
], ids=["list", "string", "models-list", "bad-json", "not-utf8", "string-row", "no-onnx", "no-task", "path-escape"])
def test_malformed_manifest_names_the_file(tmp_path, manifest, message):
    path = tmp_path / "manifest.json"
    path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    with pytest.raises(ModelError, match=f"^{str(path)}: .*{message}"):
        ModelZoo(tmp_path, provider="cpu")


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "typo", "typo: no such models folder"),
    (lambda d: d, "no models (manifest.json missing or empty)"),
    (lambda d: (d / "manifest.json").write_text('{"models": {"a": 1}}') and d, "model 'a': row must be an object"),
], ids=["missing-folder", "empty-folder", "malformed-manifest"])
def test_demo_refuses_to_start_without_models_in_one_line(tmp_path, capsys, setup, message):
    models_dir = setup(tmp_path)
    assert demo_main(["--models-dir", str(models_dir), "--port", "7651"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("tinyzoo demo: ") and message in err


@pytest.mark.parametrize("key", ["id", "labels", "input"])
def test_model_metadata_missing_a_key_is_a_model_error(zoo, tmp_path, key):
    proto = onnx.load(str(zoo.models_dir / "mnist-softmax.onnx"))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["tinyzoo"])
    del meta[key]
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"tinyzoo": json.dumps(meta)})
    onnx.save_model(proto, str(tmp_path / "mnist-softmax.onnx"))
    row = {**zoo.manifest["models"]["mnist-softmax"], "sha256": sha256_file(tmp_path / "mnist-softmax.onnx")}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"mnist-softmax": row}}))
    with pytest.raises(ModelError, match=f"mnist-softmax\\.onnx: (version \\d+ )?metadata.*'{key}'"):
        ModelZoo(tmp_path, provider="cpu").get("mnist-softmax")


class Payload:
    """Unpickling this would run a shell command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_checkpoint_is_refused_without_running(zoo, tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"linear.weight": Payload(marker)})
    shutil.copy(zoo.models_dir / "mnist-softmax.json", tmp_path)
    (tmp_path / "mnist-softmax.safetensors").write_bytes(evil)  # a pickle posing as the checkpoint
    with pytest.raises(SafetensorError, match="deserializing header"):
        load_checkpoint("mnist-softmax", tmp_path)
    (tmp_path / "evil.pt").write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "evil.pt", weights_only=True)
    assert not marker.exists(), "the payload ran"


def sideways_seven(fmt: str, where: str) -> bytes:
    """The drawn 7 stored sideways, with "rotate 90 CW to display" (orientation 6) in `where`."""
    rotated = Image.open(io.BytesIO(drawn_digit_png())).convert("L").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    if where == "exif":
        rotated.save(buf, format=fmt, exif=exif, quality=95)
    elif where == "xmp":
        xmp = '<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
        text = PngImagePlugin.PngInfo()
        text.add_itxt("XML:com.adobe.xmp", xmp)  # where a PNG carries XMP
        rotated.save(buf, format=fmt, xmp=xmp.encode(), pnginfo=text)
    else:  # a TIFF's own tags
        rotated.save(buf, format=fmt, tiffinfo={0x0112: 6})
    return buf.getvalue()


@pytest.mark.parametrize("fmt, where", [("JPEG", "exif"), ("PNG", "exif"), ("WEBP", "exif"), ("JPEG", "xmp"),
                                        ("PNG", "xmp"), ("TIFF", "tags")])
def test_exif_orientation_is_honoured(fmt, where):
    """Every place Pillow finds an orientation in (open_image skips the EXIF parse when none is there)."""
    seven = np.asarray(Image.open(io.BytesIO(drawn_digit_png())).convert("L"), np.float32)
    upright = np.asarray(open_image(sideways_seven(fmt, where)).convert("L"), np.float32)
    assert upright.shape == seven.shape and np.abs(upright - seven).mean() < 8


@pytest.mark.parametrize("mode", ["P", "LA", "1", "I", "F"])
def test_every_image_mode_classifies(zoo, mode):
    seven = Image.open(io.BytesIO(drawn_digit_png())).convert("L")
    img = seven.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode in ("I", "F") else "PNG")
    assert zoo.get("mnist-cnn").classify(buf.getvalue()).label == "7"


def test_the_reader_reads_what_is_there_when_fstat_says_less():
    """A /proc file is a regular file whose st_size is 0: the reader asks for st_size + 1 bytes
    first, then reads the rest (still bounded by MAX_BYTES)."""
    data = read_regular_file("/proc/self/status")
    assert data.startswith(b"Name:") and b"VmRSS" in data


def test_decompression_bomb_warning_is_an_error():
    img = Image.new("L", (7000, 7000), 255)  # 49 Mpx: over the 40 Mpx cap
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    with pytest.raises(ImageInputError, match="too large"):
        open_image(buf.getvalue())


def test_formats_outside_the_allowlist_are_refused():
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PPM")
    with pytest.raises(ImageInputError, match="unsupported image format PPM"):
        open_image(buf.getvalue())
