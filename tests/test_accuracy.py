"""Accuracy floors on the real test sets, measured the way users are served: each test image
through demo's one preprocessing function and the shipped ONNX file in ONNX Runtime."""
import numpy as np
import pytest

from tests.conftest import FP32_RECORDED_TOLERANCE
from training.registry import REGISTRY


@pytest.mark.parametrize("model_id", [i for i, e in REGISTRY.items() if e.task == "image-classification"])
def test_shipped_model_reaches_its_floor(zoo, test_split, model_id):
    entry = REGISTRY[model_id]
    images, labels = test_split(entry.dataset)
    model = zoo.get(model_id)
    batch = np.stack([model.preprocess(img).tensor for img in images])
    predictions = model.run(batch).argmax(1)
    accuracy = float((predictions == labels).mean())
    assert accuracy >= entry.accuracy_floor, f"{model_id}: {accuracy:.4f} < floor {entry.accuracy_floor}"
    # the figure recorded in the file is the one users get through the runtime (on the exporting CPU)
    assert abs(accuracy - model.meta["test_accuracy"]) <= FP32_RECORDED_TOLERANCE
