"""The shipped ONNX files compute what their PyTorch checkpoints compute (two engines, one answer).

Tolerance: max |torch - ORT| <= 1e-4 on logits at batch 1, 3 and 64, and 100.00% argmax
agreement over the full real test set.
"""
import numpy as np
import pytest
import torch

from demo.contract.tensors import IMAGE_INPUT, LOGITS
from export.onnx_export import load_checkpoint, normalized_test_set
from export.parity import ParityError, check_parity
from tests.conftest import require_dataset
from training.registry import REGISTRY

IMAGE_MODELS = [i for i, e in REGISTRY.items() if e.task == "image-classification"]
PARITY_TESTED_TASKS = {"image-classification": "here", "sequence-prediction": "tests/test_hello.py",
                       "tabular": "tests/test_lessons.py"}


def test_every_registered_model_has_a_parity_test():
    untested = sorted(i for i, e in REGISTRY.items() if e.task not in PARITY_TESTED_TASKS)
    assert not untested, f"no parity test covers {untested}"


@pytest.mark.parametrize("model_id", IMAGE_MODELS)
def test_shipped_onnx_matches_pytorch(zoo, model_id):
    entry, model, _, _ = load_checkpoint(model_id, zoo.models_dir)
    require_dataset(entry.dataset)
    inputs, labels = normalized_test_set(entry)
    report = check_parity(model, str(zoo.models_dir / f"{model_id}.onnx"), inputs, labels, IMAGE_INPUT, LOGITS)
    assert report.argmax_agreement == 1.0 and report.examples == len(labels) == 10_000
    assert set(report.max_abs_diff) == {"batch 1", "batch 3", "batch 64"} and max(report.max_abs_diff.values()) <= 1e-4
    assert report.ort_accuracy == pytest.approx(zoo.get(model_id).meta.measurements.test_accuracy, abs=1e-9)


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
