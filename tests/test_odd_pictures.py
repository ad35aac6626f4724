"""Odd pictures (issue #22): tiny, one pixel wide, long strips, noise, every mode, through every
image model's preprocessing, `POST /api/classify` of the served app, and `tinyzoo classify`.
Each is classified or refused in plain words (a 4xx JSON error, an error row): never a 500, never
a Python exception's name, never the safety net's "unforeseen failure"."""
import csv
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bench.odd_pictures import OddPicture
from demo.imaging.prepare import ImageInputError, TooSmallImageError, UnexpectedImageError
from tests.conftest import ROOT, drawn_digit_png, post

ODD = [OddPicture(*size, mode, content) for size, mode, content in [
    ((1, 1), "L", "flat"), ((1, 40), "L", "noise"), ((40, 1), "RGB", "light-on-dark"),
    ((2, 500), "L", "noise"), ((500, 2), "L", "noise"), ((2000, 40), "L", "light-on-dark"),
    ((3000, 13), "L", "light-on-dark"), ((1, 40000), "L", "light-on-dark"), ((20000, 2), "L", "noise"),
    ((12, 12), "L", "noise"), ((5, 7), "RGB", "noise"), ((300, 40), "L", "seven"),
    ((64, 64), "I;16", "noise"), ((40, 90), "P", "seven"), ((90, 40), "RGBA", "light-on-dark"),
    ((33, 33), "LA", "seven"), ((200, 3), "1", "noise"), ((50, 50), "F", "ramp"), ((9, 400), "I", "seven"),
]]
EXCEPTION_NAME = re.compile(r"\b\w*(Error|Exception|Warning)\b|Traceback|out of bounds")


def assert_plain(message: str) -> None:
    assert message and not EXCEPTION_NAME.search(message), message
    assert "unforeseen" not in message, message


@pytest.fixture(scope="module")
def image_models(zoo):
    models = zoo.ids("image-classification")
    assert len(models) == 20  # mnist/fashion x softmax/mlp/cnn/lenet5/resnet x fp32/int8
    return models


@pytest.mark.parametrize("odd", ODD, ids=lambda o: o.name)
def test_every_image_model_classifies_or_refuses_in_plain_words(zoo, image_models, odd):
    data = odd.encode()
    for model_id in image_models:
        model = zoo.get(model_id)
        try:
            assert model.classify(data, top_k=1).label in model.labels
        except ImageInputError as e:
            assert not isinstance(e, UnexpectedImageError), f"{model_id}: {e!r} from {e.__context__!r}"
            assert_plain(str(e))


@pytest.mark.parametrize("size, words", [((1, 40), "too small"), ((12, 12), "too small"), ((500, 2), "too small"),
                                         ((2000, 40), "too thin"), ((40, 3000), "too thin")])
def test_a_photo_without_room_for_a_digit_is_refused_as_too_small_or_too_thin(zoo, size, words):
    data = OddPicture(*size, "L", "noise").encode()
    for model_id in ("mnist-cnn", "fashion-cnn"):
        with pytest.raises(TooSmallImageError, match=words):
            zoo.get(model_id).prepare(data)


def test_a_photo_of_a_digit_on_a_strip_within_the_limit_is_still_read(zoo):
    """A 7 on a noisy 960x120 strip of paper (8:1): the shape alone is no refusal, the 7 is read."""
    strip = Image.new("L", (960, 120), 255)
    strip.paste(Image.open(io.BytesIO(drawn_digit_png(120))).convert("L"), (420, 0))
    noisy = np.asarray(strip, np.float32) + np.random.default_rng(0).normal(0, 6, (120, 960))
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    assert zoo.get("mnist-cnn").classify(photo).label == "7"


@pytest.mark.parametrize("odd", ODD, ids=lambda o: o.name)
def test_the_served_app_answers_200_or_a_4xx_json_error(live_server, image_models, odd):
    data = odd.encode()
    for model_id in image_models:
        status, body = post(f"{live_server}/api/classify?model={model_id}", data)
        assert status == 200 or (400 <= status < 500 and set(body) == {"error"}), (model_id, status, body)
        if status != 200:
            assert_plain(body["error"])


def test_the_cli_writes_one_plain_row_per_odd_picture(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for odd in ODD:
        (folder / odd.name).write_bytes(odd.encode())
    out = tmp_path / "results.csv"
    proc = subprocess.run([sys.executable, "-m", "demo.cli", "classify", str(folder), "--model", "mnist-cnn",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"].rsplit("/", 1)[1] for r in rows) == sorted(o.name for o in ODD)
    failed = [r for r in rows if r["error"]]
    assert failed and all(r["label"] == "" for r in failed)
    for row in failed:
        assert_plain(row["error"])
    assert proc.returncode == 1, proc.stderr  # documented: 1 when some files could not be classified
    assert "Traceback" not in proc.stderr
