"""The shipped ONNX files compute what their PyTorch checkpoints compute (two engines, one answer).

Tolerance: max |torch - ORT| <= 1e-4 on logits at batch 1, 3 and 64, and 100.00% argmax
agreement over the full real test set. Every registered model, whatever its task, is also
checked here on seeded random inputs built from the ONNX file's own input signature.
"""
import numpy as np
import pytest
import torch

from demo.contract.tensors import IMAGE_INPUT, LOGITS
from export.onnx_export import load_checkpoint, normalized_test_set
from export.parity import ATOL, ParityError, check_parity, compare, cpu_session
from tests.conftest import FP32_RECORDED_TOLERANCE, require_dataset
from training.registry import REGISTRY

IMAGE_MODELS = [i for i, e in REGISTRY.items() if e.task == "image-classification"]


def random_feeds(session, meta, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One seeded input per ONNX input: batch (and any other free axis) 3; token ids within the vocabulary."""
    feeds = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else 3 for d in spec.shape]
        if spec.type == "tensor(int64)":
            feeds[spec.name] = rng.integers(len(meta.sequence.idx_to_char), size=shape)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize("model_id", list(REGISTRY))
def test_every_registered_model_matches_pytorch(zoo, model_id):
    _, model, _, _ = load_checkpoint(model_id, zoo.models_dir)
    session = cpu_session(str(zoo.models_dir / f"{model_id}.onnx"))
    feeds = random_feeds(session, zoo.get(model_id).meta, np.random.default_rng(0))
    with torch.no_grad():
        assert compare(model, session, feeds, [o.name for o in session.get_outputs()], ATOL, model_id) <= ATOL


@pytest.mark.parametrize("model_id", IMAGE_MODELS)
def test_shipped_onnx_matches_pytorch(zoo, model_id):
    entry, model, _, _ = load_checkpoint(model_id, zoo.models_dir)
    require_dataset(entry.dataset)
    inputs, labels = normalized_test_set(entry)
    report = check_parity(model, str(zoo.models_dir / f"{model_id}.onnx"), inputs, labels, IMAGE_INPUT, LOGITS)
    assert report.argmax_agreement == 1.0 and report.examples == len(labels) == 10_000
    assert set(report.max_abs_diff) == {"batch 1", "batch 3", "batch 64"} and max(report.max_abs_diff.values()) <= ATOL
    assert all(p.is_contiguous() for p in model.parameters())  # handed back in the default layout
    # recorded on the exporting machine; fp32 sums differ a little by instruction set
    recorded = zoo.get(model_id).meta.measurements.test_accuracy
    assert abs(report.ort_accuracy - recorded) <= FP32_RECORDED_TOLERANCE


def test_parity_gate_catches_a_changed_weight(zoo):
    """The gate is real: one perturbed weight in the torch model must fail the check."""
    entry, model, _, _ = load_checkpoint("fashion-softmax", zoo.models_dir)
    require_dataset(entry.dataset)
    inputs, labels = normalized_test_set(entry)
    with torch.no_grad():
        model.linear.bias[3] += 0.01
    with pytest.raises(ParityError, match="batch 1: output 'logits' max \\|torch - ORT\\|"):
        check_parity(model, str(zoo.models_dir / "fashion-softmax.onnx"), inputs, labels, IMAGE_INPUT, LOGITS)


def test_parity_gate_checks_output_names_first(zoo):
    entry, model, _, _ = load_checkpoint("fashion-softmax", zoo.models_dir)
    inputs = np.zeros((64, *entry.input.shape), np.float32)
    with pytest.raises(ParityError, match="output names"):
        check_parity(model, str(zoo.models_dir / "fashion-softmax.onnx"), inputs, np.zeros(64, np.int64),
                     IMAGE_INPUT, "probabilities")
