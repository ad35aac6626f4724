"""Look inside (issue 25): every tap of the shipped files against PyTorch, mnist-cnn's first layers in plain
numpy, the shipped confusion matrices and mistakes, the inspection session and the occlusion map."""
import base64
import io

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image

from demo.contract import ModelMetadata, normalize
from demo.contract.graph_outputs import GraphBytesError, with_outputs
from demo.inference.inside import all_models, inspector, mistakes, patch_starts

IMAGE_FP32 = [f"{d}-{a}" for d in ("mnist", "fashion") for a in ("softmax", "mlp", "cnn", "lenet5", "resnet")]
IMAGE_ALL = IMAGE_FP32 + [f"{i}-int8" for i in IMAGE_FP32]
COURSE_NAMES = {"mnist-cnn": ["conv1", "pool1", "ReLU1", "conv2", "pool2", "ReLU2", "fc1", "ReLU3", "fc2"],
                "mnist-lenet5": ["conv1", "ReLU1", "pool1", "conv2", "ReLU2", "pool2", "fc1", "ReLU3", "fc2", "ReLU4",
                                 "fc3"],
                "mnist-resnet": ["stem", "stage1", "stage2", "stage3", "avg pool", "fc"],
                "mnist-mlp": ["fc1", "ReLU1", "fc2", "ReLU2", "fc3", "ReLU3", "fc4", "ReLU4", "fc5"],
                "mnist-softmax": ["fc"]}


@pytest.mark.parametrize("model_id", IMAGE_FP32)
def test_every_tap_equals_pytorch_within_its_tolerance(zoo, test_split, model_id):
    """The shipped file's taps, as the runtime exposes them, against forward hooks on the checkpoint."""
    torch = pytest.importorskip("torch")
    from export.inside import plan_taps, torch_taps
    from export.onnx_export import load_checkpoint

    model = zoo.get(model_id)
    inspection = model.meta.inspection
    _, module, _, _ = load_checkpoint(model_id, zoo.models_dir)
    plan = plan_taps(module)
    assert [t.name for t in inspection.taps] == [t.name for t in plan]
    images, _ = test_split(model.meta.dataset)
    x = normalize(images[100:164], model.meta.input)  # not the images export checked on
    with torch.no_grad():
        expected = torch_taps(module, plan, x)
    got = inspector(zoo, model_id).session.run([t.output for t in inspection.taps], {model.input_name: x})
    for tap, e, g in zip(inspection.taps, expected, got):
        assert g.shape == e.shape and g.shape[1:] == tap.shape, tap.name
        np.testing.assert_allclose(g, e, atol=inspection.atol, rtol=inspection.rtol, err_msg=f"{model_id} {tap.name}")
        assert tap.max_abs_diff <= inspection.atol + inspection.rtol * float(np.abs(e).max())


def test_course_names_the_layers_in_forward_order(zoo):
    for model_id, names in COURSE_NAMES.items():
        taps = zoo.get(model_id).meta.inspection.taps
        assert [t.name for t in taps] == names
        assert taps[-1].kind == "logits" and taps[-1].shape == (10,)


def test_mnist_cnn_first_conv_relu_pool_in_plain_numpy(zoo, test_split):
    """conv1 (5x5, valid) -> pool1 (2x2 max) -> ReLU from the file's own initializers, against the tap."""
    model = zoo.get("mnist-cnn")
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(model.path)).graph.initializer}
    kernel, bias = weights["features.0.weight"].astype(np.float64), weights["features.0.bias"].astype(np.float64)
    images, _ = test_split("mnist")
    x = normalize(images[:4], model.meta.input).astype(np.float64)  # [4, 1, 28, 28]
    windows = np.lib.stride_tricks.sliding_window_view(x[:, 0], (5, 5), axis=(1, 2))  # [4, 24, 24, 5, 5]
    conv = np.einsum("nhwij,cij->nchw", windows, kernel[:, 0]) + bias[None, :, None, None]
    pooled = conv.reshape(4, 10, 12, 2, 12, 2).max(axis=(3, 5))
    relu = np.maximum(pooled, 0)
    taps = {t.name: t.output for t in model.meta.inspection.taps}
    session = inspector(zoo, "mnist-cnn").session
    got_conv, got_relu = session.run([taps["conv1"], taps["ReLU1"]], {model.input_name: x.astype(np.float32)})
    np.testing.assert_allclose(got_conv, conv, atol=1e-5)
    np.testing.assert_allclose(got_relu, relu, atol=1e-5)
    assert (got_relu == 0).any() and (got_relu > 0).any()  # the ReLU did something


@pytest.mark.parametrize("model_id", IMAGE_ALL)
def test_confusion_matrix_sums_to_the_test_set_and_its_trace_is_the_accuracy(zoo, model_id):
    meta = zoo.get(model_id).meta
    report = mistakes(zoo, model_id)
    confusion = np.asarray(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == meta.measurements.test_examples == 10_000
    accuracy = np.trace(confusion) / confusion.sum()
    assert accuracy == report["accuracy"]
    recorded_on = meta.variant.quantization.measured_with if meta.variant else None
    if recorded_on and tuple(report["measured_with"]["cpu_flags"]) != recorded_on.cpu_flags:
        assert abs(accuracy - meta.measurements.test_accuracy) <= 0.005  # int8 kernels of another instruction set
    else:
        assert accuracy == meta.measurements.test_accuracy
    assert zoo.manifest["models"][model_id]["test_accuracy"] == meta.measurements.test_accuracy
    shown = report["mistakes"]
    assert 0 < len(shown) <= 32 and len(shown) <= confusion.sum() - np.trace(confusion)
    assert all(m["true"] != m["predicted"] for m in shown)
    assert [m["confidence"] for m in shown] == sorted((m["confidence"] for m in shown), reverse=True)
    assert all(np.asarray(m["pixels"]).shape == (28, 28) for m in shown)


@pytest.mark.parametrize("model_id", ["mnist-cnn", "fashion-resnet-int8"])
def test_shipped_mistakes_are_the_test_images_and_the_model_gets_them_wrong(zoo, test_split, model_id):
    model = zoo.get(model_id)
    images, labels = test_split(model.meta.dataset)
    for mistake in mistakes(zoo, model_id)["mistakes"][:8]:
        pixels = np.asarray(mistake["pixels"], np.uint8)
        np.testing.assert_array_equal(pixels, images[mistake["index"]])
        assert labels[mistake["index"]] == mistake["true"]
        probs = model.probabilities(model.run(normalize(pixels[None], model.meta.input)))[0]
        assert probs.argmax() == mistake["predicted"]
        assert probs.max() == pytest.approx(mistake["confidence"], abs=1e-4 if model.meta.variant is None else 0.02)


@pytest.mark.parametrize("model_id", [i for i in IMAGE_ALL if i.endswith("-int8")])
def test_int8_taps_carry_their_sqnr_against_fp32(zoo, model_id):
    inspection = zoo.get(model_id).meta.inspection
    fp32_names = [t.name for t in zoo.get(model_id.removesuffix("-int8")).meta.inspection.taps]
    assert inspection.taps and all(t.sqnr_db is not None and t.max_abs_diff is None for t in inspection.taps)
    assert [t.name for t in inspection.taps] == [n for n in fp32_names if n in {t.name for t in inspection.taps}]
    assert inspection.taps[-1].name == fp32_names[-1] and inspection.taps[-1].sqnr_db > 15  # the logits survive


def digit_png(zoo, label: str) -> bytes:
    from demo.contract import read_examples

    example = next(e for e in read_examples(zoo.models_dir, "mnist") if e.label == label)
    return example.path.read_bytes()


def test_inspection_answers_as_classify_does_and_occlusion_points_at_the_ink(zoo):
    image = digit_png(zoo, "7")
    classified = zoo.get("mnist-cnn").classify(image)
    looked = inspector(zoo, "mnist-cnn").inspect(image)
    assert looked.prediction.label == classified.label == "7"
    assert looked.prediction.confidence == pytest.approx(classified.confidence, abs=1e-6)
    np.testing.assert_array_equal(looked.seen, classified.seen)
    ink = looked.seen > 64
    assert looked.occlusion.shape == (28, 28)
    assert looked.occlusion[ink].mean() > looked.occlusion[~ink].mean()  # hiding ink costs the answer more


def test_occlusion_patches_cover_every_pixel_and_the_resnet_gets_a_coarser_grid(zoo):
    assert patch_starts(28, 6, 2)[-1] == 22 and patch_starts(28, 8, 3) == [0, 3, 6, 9, 12, 15, 18, 20]
    cnn, resnet = inspector(zoo, "mnist-cnn"), inspector(zoo, "mnist-resnet")
    assert (cnn.patch, cnn.stride) == (6, 2) and resnet.stride > cnn.stride


def test_first_layer_weights_come_from_the_file(zoo):
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(zoo.get("mnist-softmax").path)).graph.initializer}
    np.testing.assert_array_equal(inspector(zoo, "mnist-softmax").first_layer_weights(), weights["linear.weight"])
    assert inspector(zoo, "mnist-cnn").first_layer_weights().shape == (10, 1, 5, 5)
    assert inspector(zoo, "mnist-mlp-int8").first_layer_weights() is None  # dynamic int8: int8 weights only


def test_all_models_of_a_dataset_answer_the_same_input(zoo):
    rows = all_models(zoo, digit_png(zoo, "3"), "mnist")
    assert sorted(r["model"] for r in rows) == sorted(i for i in IMAGE_ALL if i.startswith("mnist"))
    assert all(r["label"] == "3" and 0 < r["confidence"] <= 1 and r["params"] > 0 for r in rows)


def test_with_outputs_refuses_bytes_that_are_not_a_model():
    with pytest.raises(GraphBytesError):
        with_outputs(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", ["x"])
    with pytest.raises(GraphBytesError, match="one graph"):
        with_outputs(b"\x08\x0a", ["x"])  # ir_version only


def test_version_2_metadata_reads_as_version_3_without_taps(zoo):
    current = zoo.get("mnist-cnn").meta.to_dict()
    old = {k: v for k, v in current.items() if k != "inspection"} | {"schema_version": 2}
    meta = ModelMetadata.from_dict(old)
    assert meta.inspection is None and meta.schema_version == 3


def test_mistake_pictures_are_png(zoo):
    import json

    row = zoo.manifest["models"]["mnist-cnn"]
    raw = json.loads((zoo.models_dir / row["mistakes"]).read_text())
    picture = Image.open(io.BytesIO(base64.b64decode(raw["mistakes"][0]["png"])))
    assert picture.format == "PNG" and picture.size == (28, 28)


def scratch_copy(tmp_path, zoo, model_id: str):
    import json
    import shutil

    for suffix in (".onnx", ".safetensors", ".json"):
        shutil.copy(zoo.models_dir / f"{model_id}{suffix}", tmp_path / f"{model_id}{suffix}")
    row = zoo.manifest["models"][model_id]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {model_id: row}}))
    return tmp_path


def test_export_prints_the_parity_table_and_reproduces_the_shipped_taps(tmp_path, zoo, capsys):
    pytest.importorskip("torch")
    from export.onnx_export import main

    models = scratch_copy(tmp_path, zoo, "mnist-softmax")
    assert main(["--inside", "mnist-softmax", "--models-dir", str(models)]) == 0
    table = capsys.readouterr().out
    assert "per-layer parity" in table and "batch 64" in table and " ok" in table and "FAIL" not in table
    shipped = zoo.get("mnist-softmax").meta.inspection
    from export.metadata import read_metadata

    again = read_metadata(models / "mnist-softmax.onnx").inspection
    assert [(t.output, t.name, t.shape) for t in again.taps] == [(t.output, t.name, t.shape) for t in shipped.taps]
    assert (models / "mistakes" / "mnist-softmax.json").read_bytes() == \
        (zoo.models_dir / "mistakes" / "mnist-softmax.json").read_bytes()


def test_a_tap_that_differs_from_pytorch_writes_nothing(tmp_path, zoo):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    from export.inside import TapError, look_inside

    models = scratch_copy(tmp_path, zoo, "mnist-softmax")
    weights = load_file(models / "mnist-softmax.safetensors")
    weights["linear.bias"] = weights["linear.bias"] + torch.tensor(1e-3)  # the checkpoint no longer is the file
    save_file(weights, models / "mnist-softmax.safetensors")
    before = (models / "mnist-softmax.onnx").read_bytes()
    with pytest.raises(TapError, match=r"(?s)2 tap check\(s\) .*batch 1 fc .*batch 64 fc"):
        look_inside(models, "mnist-softmax")
    assert (models / "mnist-softmax.onnx").read_bytes() == before and not (models / "mistakes").exists()


def test_export_inside_refuses_a_model_that_is_not_a_shipped_image_model(zoo, capsys):
    pytest.importorskip("torch")
    from export.onnx_export import main

    assert main(["--inside", "hello-rnn", "--models-dir", str(zoo.models_dir)]) == 2
    assert "not shipped image models: hello-rnn" in capsys.readouterr().err
