"""The dataset-size PNG read by OpenCV (demo/imaging/png.py) gives the very pixels Pillow gives,
and leaves every other file to Pillow: the one preparation path answers the same either way."""
import io
import re
import struct
import tracemalloc
import zlib
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, PngImagePlugin

from demo.imaging import prepare
from demo.imaging.errors import ImageInputError
from demo.imaging.png import SIGNATURE, dataset_png
from demo.imaging.prepare import find_candidates

SIZE = (28, 28)


def png(pixels: np.ndarray, mode: str | None = None, **options) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(out, "PNG", **options)
    return out.getvalue()


def general_path(data: bytes, input_spec) -> list:
    """find_candidates as it reads the file with Pillow alone."""
    with mock.patch.object(prepare, "dataset_png", lambda data, size: None):
        return find_candidates(data, input_spec)


digits = hnp.arrays(np.uint8, SIZE)


@given(digits, st.integers(0, 9), st.booleans(), st.sampled_from([None, (72, 72), (300, 150)]))
def test_the_same_pixels_as_pillow(pixels, level, optimize, dpi):
    data = png(pixels, compress_level=level, optimize=optimize, **({"dpi": dpi} if dpi else {}))
    assert np.array_equal(dataset_png(data, SIZE), np.asarray(Image.open(io.BytesIO(data))))


@given(digits)
def test_the_same_pictures_for_the_model(zoo, pixels):
    spec = zoo.get("mnist-cnn").meta.input
    data = png(pixels)
    try:
        expected = [c.seen for c in general_path(data, spec)]
    except ImageInputError as e:  # a blank picture: the same refusal
        with pytest.raises(ImageInputError, match=str(e)):
            find_candidates(data, spec)
        return
    assert [c.seen.tolist() for c in find_candidates(data, spec)] == [e.tolist() for e in expected]


def with_text(pixels: np.ndarray) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "orientation lives here")
    return png(pixels, pnginfo=info)


@pytest.mark.parametrize("kind", ["other size", "16-bit", "RGB", "palette", "grey+alpha", "transparency",
                                  "text chunk", "not a PNG", "truncated"])
def test_every_other_file_is_left_to_pillow(kind):
    pixels = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8)
    data = {"other size": lambda: png(np.zeros((28, 29), np.uint8)),
            "16-bit": lambda: png(pixels.astype(np.uint16) * 257, "I;16"),
            "RGB": lambda: png(pixels, "RGB"),
            "palette": lambda: png(pixels, "P"),
            "grey+alpha": lambda: png(pixels, "LA"),
            "transparency": lambda: png(pixels, transparency=0),
            "text chunk": lambda: with_text(pixels),
            "not a PNG": lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
            "truncated": lambda: png(pixels)[:-30]}[kind]()
    assert dataset_png(data, SIZE) is None


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def rebuilt(rows: bytes, tail: bytes = b"") -> bytes:
    """A 28x28 8-bit grey PNG around this (deflated) pixel stream, every CRC true."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
    return SIGNATURE + header + chunk(b"IDAT", rows) + chunk(b"IEND", b"") + tail


ROWS = b"".join(b"\x00" + bytes(range(i, i + 28)) for i in range(28))  # filter byte 0, then the row


@pytest.mark.parametrize("kind", ["pixel byte flipped", "stream not deflate", "stream short", "stream long",
                                  "filter 7", "bytes after IEND"])
def test_a_damaged_file_gets_pillows_answer_and_libpng_says_nothing(zoo, capfd, kind):
    """Damage libpng would complain of on stderr (past any handling here) never reaches it: Pillow
    reads the file, and its answer or refusal is the one given."""
    spec = zoo.get("mnist-cnn").meta.input
    intact = rebuilt(zlib.compress(ROWS))
    data = {"pixel byte flipped": lambda: intact[:45] + bytes([intact[45] ^ 0xFF]) + intact[46:],
            "stream not deflate": lambda: rebuilt(ROWS),
            "stream short": lambda: rebuilt(zlib.compress(ROWS[:-29])),
            "stream long": lambda: rebuilt(zlib.compress(ROWS + bytes(29))),
            "filter 7": lambda: rebuilt(zlib.compress(b"\x07" + ROWS[1:])),
            "bytes after IEND": lambda: rebuilt(zlib.compress(ROWS), b"trailing")}[kind]()
    assert dataset_png(intact, SIZE) is not None and dataset_png(data, SIZE) is None
    try:
        expected = [c.seen.tolist() for c in general_path(data, spec)]
    except ImageInputError as e:
        with pytest.raises(ImageInputError, match=re.escape(str(e))):
            find_candidates(data, spec)
    else:
        assert [c.seen.tolist() for c in find_candidates(data, spec)] == expected
    assert "libpng" not in capfd.readouterr().err


def test_a_small_file_that_inflates_to_a_quarter_gigabyte_is_never_unpacked():
    """A 28x28 header over a deflate stream of 256 MiB of zeros (a zlib bomb of 260 KB): at most
    the 812 bytes a 28x28 needs, plus one, are ever inflated before the file is left to Pillow."""
    bomb = zlib.compressobj(9)
    zeros = bytes(2**24)
    data = rebuilt(b"".join(bomb.compress(zeros) for _ in range(16)) + bomb.flush())
    tracemalloc.start()
    try:
        assert dataset_png(data, SIZE) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(data)  # zlib's copy of the input left unread, nothing of the 256 MiB
