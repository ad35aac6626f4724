"""Property-based fuzzing: whatever arrives, the answer is a valid result or a clear error of
our own types, never an unhandled exception. A few hundred cases per property by default;
`make fuzz` runs 10,000 each (TINYZOO_FUZZ_EXAMPLES)."""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from demo.preprocess import ImageInputError
from demo.runtime import InputError, ModelZoo

EXAMPLES = int(os.environ.get("TINYZOO_FUZZ_EXAMPLES", 200))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
ZOO = ModelZoo(provider="cpu")
IMAGE_MODEL, TEXT_MODEL, FORM_MODEL = ZOO.get("mnist-cnn"), ZOO.get("hello-lstm"), ZOO.get("diabetes-mlp")
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def assert_valid(pred):
    assert pred.label in IMAGE_MODEL.labels and 0 <= pred.confidence <= 1
    assert abs(sum(t["confidence"] for t in pred.top_k) - 1) < 1e-3 or len(pred.top_k) < len(IMAGE_MODEL.labels)


@FUZZ
@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=512).map(lambda b: PNG_HEADER + b)))
def test_random_bytes(data):
    try:
        assert_valid(IMAGE_MODEL.classify(data))
    except ImageInputError:
        pass


array_dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(sizes=(32, 64)),
                         hnp.boolean_dtypes(), hnp.complex_number_dtypes())


@FUZZ
@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_random_arrays_as_images(array):
    try:
        assert_valid(IMAGE_MODEL.classify(array))
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
