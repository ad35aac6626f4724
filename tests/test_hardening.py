"""Hostile files: models with external data, pickle checkpoints, odd image modes and orientation."""
import io
import json
import pickle
import shutil

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from demo.contract import sha256_file
from demo.preprocess import ImageInputError, open_image
from demo.runtime import ModelError, ModelZoo
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
    with pytest.raises(Exception):
        load_checkpoint("mnist-softmax", tmp_path)
    (tmp_path / "evil.pt").write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "evil.pt", weights_only=True)
    assert not marker.exists(), "the payload ran"


def test_exif_orientation_is_honoured():
    seven = Image.open(io.BytesIO(drawn_digit_png())).convert("L")
    rotated = seven.rotate(90, expand=True)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with "rotate 90 CW to display" in EXIF
    buf = io.BytesIO()
    rotated.save(buf, format="JPEG", exif=exif, quality=95)
    upright = np.asarray(open_image(buf.getvalue()).convert("L"), np.float32)
    assert np.abs(upright - np.asarray(seven, np.float32)).mean() < 8


@pytest.mark.parametrize("mode", ["P", "LA", "1", "I", "F"])
def test_every_image_mode_classifies(zoo, mode):
    seven = Image.open(io.BytesIO(drawn_digit_png())).convert("L")
    img = seven.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode in ("I", "F") else "PNG")
    assert zoo.get("mnist-cnn").classify(buf.getvalue()).label == "7"


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
