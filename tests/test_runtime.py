"""The torch-free runtime: labels from metadata, provider reporting, clear errors on bad input."""
import io
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from demo.imaging.prepare import EmptyImageError, ImageInputError
from demo.inference import runtime
from demo.inference.runtime import InputError, ModelError, ModelZoo
from tests.conftest import drawn_digit_png

real_requested = runtime.requested_providers


def test_fixed_fashion_test_image_gets_its_label(zoo, test_split):
    images, labels = test_split("fashion")
    model = zoo.get("fashion-cnn")
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="PNG")
    pred = model.classify(buf.getvalue())
    assert model.labels[labels[0]] == "Ankle boot"
    assert pred.label == "Ankle boot" and pred.confidence > 0.5
    assert pred.top_k[0]["label"] == pred.label and len(pred.top_k) == 3
    assert pred.provider == "CPUExecutionProvider"
    assert pred.seen.shape == (28, 28) and pred.seen.dtype == np.uint8


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_drawn_seven_on_white_paper_is_a_seven(zoo, mode):
    pred = zoo.get("mnist-cnn").classify(drawn_digit_png(mode=mode))
    assert pred.label == "7", pred.top_k
    assert pred.seen[0].max() == 0 and pred.seen.max() == 255  # white-on-black, background cleared


def test_labels_and_names_come_from_metadata(zoo):
    model = zoo.get("fashion-mlp")
    assert model.labels == list(model.meta.labels) and len(model.labels) == 10
    assert model.input_name == model.session.get_inputs()[0].name
    assert model.output_name == model.session.get_outputs()[0].name


def test_provider_is_what_the_session_got(zoo):
    model = zoo.get("mnist-softmax")
    assert model.provider == model.session.get_providers()[0] == "CPUExecutionProvider"


def test_a_float_picture_in_0_to_1_reads_as_the_same_picture_in_0_to_255(zoo):
    """A float TIFF (mode F) scaled 0..1 was read as 0..255: all but black, so called blank."""
    grey = np.asarray(Image.open(io.BytesIO(drawn_digit_png())).convert("L"), np.float32)
    seen = []
    for scale in (1 / 255, 1.0):
        tiff = io.BytesIO()
        Image.fromarray(grey * scale, mode="F").save(tiff, format="TIFF")
        seen.append(zoo.get("mnist-cnn").prepare(tiff.getvalue()).seen)
    np.testing.assert_allclose(seen[0].astype(int), seen[1].astype(int), atol=1)  # the 1/255 scaling's rounding
    assert seen[0].max() > 200


@pytest.mark.parametrize("gpu, providers, message", [
    (False, ["CUDAExecutionProvider", "CPUExecutionProvider"], "the NVIDIA driver reports no GPU here"),
    (True, ["CPUExecutionProvider"], "this ONNX Runtime has no CUDA provider"),
    (True, ["CUDAExecutionProvider", "CPUExecutionProvider"], "could not start it on this GPU"),
])
def test_cuda_asked_for_in_so_many_words_is_refused_where_it_cannot_run(zoo, monkeypatch, gpu, providers, message):
    """--provider cuda on a machine where the session would get the CPU: one plain refusal; auto falls
    back quietly. The last case: a GPU and a CUDA provider whose libraries this machine lacks (or
    that a session given this one CPU provider cannot have)."""
    monkeypatch.setattr(runtime, "gpu_present", lambda: gpu)
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: providers)
    cuda_fails = gpu and "CUDAExecutionProvider" in providers  # the session then gets the CPU alone
    monkeypatch.setattr(runtime, "requested_providers",
                        lambda preference=None: ["CPUExecutionProvider"] if cuda_fails else real_requested(preference))
    row = zoo.manifest["models"]["mnist-softmax"]
    with pytest.raises(ModelError, match=message):
        runtime.ImageClassifier(zoo.models_dir / row["onnx"], row["sha256"], provider="cuda")
    assert runtime.ImageClassifier(zoo.models_dir / row["onnx"], row["sha256"], provider="auto").provider \
        == "CPUExecutionProvider"


@pytest.mark.parametrize("batch, message", [
    (np.zeros((2, 28, 28), np.float32), r"shape \[N, 1, 28, 28\], got \[2, 28, 28\]"),
    (np.zeros((2, 1, 32, 32), np.float32), r"got \[2, 1, 32, 32\]"),
    (np.zeros((0, 1, 28, 28), np.float32), "empty batch"),
    (np.full((1, 1, 28, 28), np.nan, np.float32), "NaN"),
    (np.array([["a"] * 28] * 28, dtype=object)[None, None], "numeric"),
])
def test_bad_tensor_gets_a_clear_error(zoo, batch, message):
    with pytest.raises(InputError, match=message):
        zoo.get("mnist-cnn").run(batch)


def jpeg_of_a_digit() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(drawn_digit_png())).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"this is not an image", "not an image"),
    (b"", "empty file"),
    (drawn_digit_png()[:200], "corrupt or truncated"),
    (jpeg_of_a_digit()[:1200], "the file ends before the picture does"),  # not Pillow's "(N bytes not processed)"
])
def test_non_image_gets_a_clear_error(zoo, data, message):
    with pytest.raises(ImageInputError, match=message):
        zoo.get("mnist-cnn").classify(data)


def test_blank_picture_is_empty_not_a_guess(zoo):
    buf = io.BytesIO()
    Image.new("L", (100, 100), 255).save(buf, format="PNG")
    with pytest.raises(EmptyImageError, match="blank"):
        zoo.get("mnist-cnn").classify(buf.getvalue())


@pytest.mark.parametrize("radius", [6, 20, 60])
def test_a_dot_is_no_digit(zoo, radius):
    """One click on the pad: a round dot, scaled up to the digit box, read as a confident 0."""
    dot = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(dot).ellipse((140 - radius, 100 - radius, 140 + radius, 100 + radius), fill=0)
    with pytest.raises(EmptyImageError, match="only a dot"):
        zoo.get("mnist-cnn").classify(dot)


def test_a_digit_drawn_with_a_fat_pen_is_no_dot(zoo):
    """A short 1 with a marker as wide as a third of its length: still strokes, still read."""
    one = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(one).line((140, 90, 140, 190), fill=0, width=34)
    assert zoo.get("mnist-cnn").classify(one).label == "1"


def test_unknown_model_names_the_available_ones(zoo):
    with pytest.raises(ModelError, match="unknown model 'mnist-nope'.*mnist-cnn"):
        zoo.get("mnist-nope")


def test_corrupt_model_file_is_refused_by_name(zoo, tmp_path):
    shutil.copy(zoo.models_dir / "manifest.json", tmp_path)
    data = bytearray((zoo.models_dir / "mnist-softmax.onnx").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "mnist-softmax.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"mnist-softmax\.onnx: sha256 does not match.*make models"):
        ModelZoo(tmp_path, provider="cpu").get("mnist-softmax")


def test_missing_model_file_says_how_to_rebuild(zoo, tmp_path):
    shutil.copy(zoo.models_dir / "manifest.json", tmp_path)
    with pytest.raises(ModelError, match=r"mnist-cnn\.onnx: model file missing.*make models"):
        ModelZoo(tmp_path, provider="cpu").get("mnist-cnn")
