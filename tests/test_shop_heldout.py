"""bench/shop_heldout.py: the held-out shop photos are drawn from the seed alone, and every condition
renders a JPEG of its stated frame size (800-2000 px long side, 2400-4000 for phone_frame)."""
import io

import pytest
from PIL import Image

from bench.shop_heldout import BASE_LONG_SIDE, CONDITIONS, LABELS, PHONE_LONG_SIDE, iter_photos


def test_same_seed_gives_the_same_bytes():
    first = [p.jpeg for p in iter_photos(seed=3, per_condition=2, conditions=("plain",))]
    again = [p.jpeg for p in iter_photos(seed=3, per_condition=2, conditions=("plain",))]
    other = [p.jpeg for p in iter_photos(seed=4, per_condition=2, conditions=("plain",))]
    assert first == again
    assert first[0] != first[1] and first[0] != other[0]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_every_condition_renders_a_jpeg_of_its_frame_size(condition):
    photo = next(iter_photos(seed=0, per_condition=1, conditions=(condition,)))
    image = Image.open(io.BytesIO(photo.jpeg))
    image.load()
    low, high = PHONE_LONG_SIDE if condition == "phone_frame" else BASE_LONG_SIDE
    assert image.format == "JPEG" and image.mode == "RGB"
    assert low <= max(image.size) <= high
    assert min(image.size) >= max(image.size) * 9 / 16 - 1
    assert photo.condition == condition and photo.label in LABELS
