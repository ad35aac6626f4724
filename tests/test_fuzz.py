"""Property-based fuzzing: whatever arrives, the answer is a valid result or a clear error of
our own types, never an unhandled exception. A few hundred cases per property by default;
`make fuzz` runs 10,000 each (TINYZOO_FUZZ_EXAMPLES) and 10,000 file mutations (bench.fuzz_decode).

The files in tests/fuzz_cases/ are the hostile images of issue #13 and what the mutation fuzzer
found (see its README): each goes through preprocess and POST /api/classify."""
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from demo.web.api import build_api
from demo.imaging.prepare import ImageInputError, preprocess
from demo.inference.runtime import InputError, ModelZoo

EXAMPLES = int(os.environ.get("TINYZOO_FUZZ_EXAMPLES", 200))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
ZOO = ModelZoo(provider="cpu")
IMAGE_MODEL, TEXT_MODEL, FORM_MODEL = ZOO.get("mnist-cnn"), ZOO.get("hello-lstm"), ZOO.get("diabetes-mlp")
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
FUZZ_CASES = sorted(p for p in (Path(__file__).parent / "fuzz_cases").iterdir() if p.suffix != ".md")
PREPROCESS_MODELS = ("mnist-cnn", "fashion-cnn")  # the two input specs (recipes mnist-digit and fit-pad)


def assert_valid(pred):
    """A prediction over every class: labels from the model, probabilities sorted and summing to 1."""
    labels = IMAGE_MODEL.labels
    confidences = [t["confidence"] for t in pred.top_k]
    assert sorted(t["label"] for t in pred.top_k) == sorted(labels)
    assert pred.label == pred.top_k[0]["label"] and pred.confidence == confidences[0]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    assert abs(sum(confidences) - 1) < 1e-4


def classify_all(image):
    return IMAGE_MODEL.classify(image, top_k=len(IMAGE_MODEL.labels))


def test_fuzz_cases_are_present():
    assert len(FUZZ_CASES) >= 14, "tests/fuzz_cases/ lost its files"


@pytest.fixture(scope="module")
def api():
    return TestClient(build_api(ZOO), raise_server_exceptions=False)


@pytest.mark.parametrize("case", FUZZ_CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("model_id", PREPROCESS_MODELS)
def test_fuzz_case_is_a_picture_or_a_clear_error(api, case, model_id):
    """Through preprocess: a picture or an ImageInputError. Through the API: the same verdict,
    as 200 with a label or a 4xx JSON error, never a 500."""
    data = case.read_bytes()
    spec = ZOO.get(model_id).meta.input
    try:
        seen = preprocess(data, spec).seen
        refused = None
    except ImageInputError as e:
        refused = str(e)
    response = api.post(f"/api/classify?model={model_id}", content=data)
    body = response.json()
    if refused is None:
        assert seen.shape == tuple(spec.shape[1:]) and seen.dtype == np.uint8
        assert response.status_code == 200 and body["label"] in ZOO.get(model_id).labels
    else:
        assert refused and 400 <= response.status_code < 500 and body == {"error": refused}


@FUZZ
@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=512).map(lambda b: PNG_HEADER + b)))
def test_random_bytes(data):
    try:
        assert_valid(classify_all(data))
    except ImageInputError:
        pass


array_dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(sizes=(32, 64)),
                         hnp.boolean_dtypes(), hnp.complex_number_dtypes())


@FUZZ
@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_random_arrays_as_images(array):
    try:
        assert_valid(classify_all(array))
    except ImageInputError:
        pass


@FUZZ
@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=30)))
def test_random_arrays_as_tensors(array):
    try:
        logits = IMAGE_MODEL.run(array)
        assert logits.shape == (array.shape[0], 10) and np.isfinite(logits).all()
    except InputError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_random_strings_for_the_sequence_model(text):
    try:
        pred = TEXT_MODEL.predict(text)
        assert len(pred.predicted) == len(text) and set(pred.predicted) <= set(TEXT_MODEL.vocab)
    except InputError as e:
        assert str(e)


form_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=12), st.lists(st.integers(), max_size=2))
form_names = st.sampled_from([f.name for f in FORM_MODEL.features] + ["insulin", ""])


@FUZZ
@given(st.one_of(st.dictionaries(form_names, form_value, max_size=9), st.lists(form_value, max_size=9)))
def test_random_form_values_for_the_lessons(values):
    try:
        pred = FORM_MODEL.predict(values)
        assert 0 <= pred["probability"] <= 1 and pred["label"] in ("No", "Yes")
    except InputError as e:
        assert str(e).startswith("diabetes-mlp: ")
