"""Property-based fuzzing: whatever arrives, the answer is a valid result or a clear error of
our own types, never an unhandled exception (nor one that preprocess only caught as unforeseen).
`make test` runs 200 derandomized cases per property (the hypothesis profiles in conftest.py);
`make fuzz` a random search of 10,000 each (TINYZOO_FUZZ_EXAMPLES) and 10,000 file mutations
(bench.fuzz_decode). An odd picture that fails under `make fuzz` is saved in tests/fuzz_cases/
(TINYZOO_FUZZ_SAVE), the smallest per crash signature, and replayed by every run from then on.

The files in tests/fuzz_cases/ are the hostile images of issue #13 and what the mutation fuzzer
found (see its README): each goes through preprocess and POST /api/classify."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench.fuzz_decode import signature
from bench.odd_pictures import CONTENTS, MODES, OddPicture
from demo.web.api import build_api
from demo.imaging.prepare import ImageInputError, UnexpectedImageError, preprocess
from demo.inference.runtime import InputError, ModelZoo

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


def assert_foreseen(error: ImageInputError):
    """A refusal the code meant: not the safety net that turns a crash into a plain answer."""
    assert not isinstance(error, UnexpectedImageError), signature(error.__context__)


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
        assert_foreseen(e)
        refused = str(e)
    response = api.post(f"/api/classify?model={model_id}", content=data)
    body = response.json()
    if refused is None:
        assert seen.shape == tuple(spec.shape[1:]) and seen.dtype == np.uint8
        assert response.status_code == 200 and body["label"] in ZOO.get(model_id).labels
    else:
        assert refused and 400 <= response.status_code < 500 and body == {"error": refused}


@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=512).map(lambda b: PNG_HEADER + b)))
def test_random_bytes(data):
    try:
        assert_valid(classify_all(data))
    except ImageInputError as e:
        assert_foreseen(e)


array_dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(sizes=(32, 64)),
                         hnp.boolean_dtypes(), hnp.complex_number_dtypes())


@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_random_arrays_as_images(array):
    try:
        assert_valid(classify_all(array))
    except ImageInputError as e:
        assert_foreseen(e)


odd_sizes = st.one_of(st.tuples(st.integers(1, 40), st.integers(1, 40)),  # tiny
                      st.integers(2, 40_000).flatmap(lambda n: st.sampled_from([(1, n), (n, 1)])),  # one pixel wide
                      st.tuples(st.integers(2, 40), st.integers(40, 20_000)).flatmap(  # a strip
                          lambda s: st.sampled_from([s, s[::-1]])),
                      st.tuples(st.integers(1, 4000), st.integers(1, 4000)))  # any aspect ratio


def keep_case(odd: OddPicture, data: bytes, error: BaseException) -> None:
    """Under `make fuzz`: the smallest failing picture per crash signature, into TINYZOO_FUZZ_SAVE."""
    folder = os.environ.get("TINYZOO_FUZZ_SAVE")
    if not folder:
        return
    slug = re.sub(r"[^a-z0-9]+", "-", signature(error).lower()).strip("-")
    path = Path(folder) / f"odd-{slug}.{odd.name.rsplit('.', 1)[1]}"
    if not path.exists() or len(data) < path.stat().st_size:
        path.write_bytes(data)


@settings(max_examples=max(1, settings.default.max_examples // 4))  # 50 in `make test`: each is a whole picture
@given(odd_sizes, st.sampled_from(MODES), st.sampled_from(CONTENTS), st.integers(0, 2**16))
def test_odd_pictures(size, mode, content, seed):
    """Any size from 1 px to 4000 px, any aspect ratio, any mode: a picture or a foreseen refusal."""
    odd = OddPicture(*size, mode, content, seed)
    data = odd.encode()
    for model_id in PREPROCESS_MODELS:
        try:
            preprocess(data, ZOO.get(model_id).meta.input)
        except ImageInputError as e:
            if isinstance(e, UnexpectedImageError):
                keep_case(odd, data, e.__context__)
            assert_foreseen(e)
        except Exception as e:
            keep_case(odd, data, e)
            raise


@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=30)))
def test_random_arrays_as_tensors(array):
    try:
        logits = IMAGE_MODEL.run(array)
        assert logits.shape == (array.shape[0], 10) and np.isfinite(logits).all()
    except InputError:
        pass


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


@given(st.one_of(st.dictionaries(form_names, form_value, max_size=9), st.lists(form_value, max_size=9)))
def test_random_form_values_for_the_lessons(values):
    try:
        pred = FORM_MODEL.predict(values)
        assert 0 <= pred["probability"] <= 1 and pred["label"] in ("No", "Yes")
    except InputError as e:
        assert str(e).startswith("diabetes-mlp: ")
