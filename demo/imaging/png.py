"""The dataset's own kind of file, read fast: a PNG already at the model's size, 8-bit grey, with
nothing in it but its pixels (a test set saved as files, as `tinyzoo classify` is given by the
thousand). OpenCV's libpng decodes one in a fifth of the time Pillow takes to open and load it
(~10 us against ~50 us for 28x28: bench/classify_speed.py); anything else is left to Pillow.

Only what Pillow would decode to the very same pixels is taken: no transparency (tRNS), no
orientation or text (eXIf, tEXt, zTXt, iTXt can carry one), no palette, no colour profile; the
size is read from the header first, so nothing larger than the model's input is ever decoded here.
The file is checked whole first (every chunk's CRC, the pixel stream's length and row filters), so
libpng meets nothing to complain of: its complaints go to stderr, past any caller's handling, and
a damaged file is Pillow's to refuse, with Pillow's message.
"""
import struct
import zlib

import cv2
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR: 8-bit, colour type 0 (grey, no alpha), compression 0, filter method 0, not interlaced
PLAIN_GREY = (8, 0, 0, 0, 0)
PIXELS_ONLY = {b"IHDR", b"IDAT", b"IEND", b"pHYs", b"tIME"}  # chunks that change no pixel
LAST_FILTER = 4  # row filter types 0..4 (None, Sub, Up, Average, Paeth)


def dataset_png(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """PNG bytes of exactly size (height, width), 8-bit grey, pixels only, intact -> uint8 [H, W];
    None for any other file: the caller's general path reads it."""
    if len(data) < 33 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, *layout = struct.unpack(">IIBBBBB", data[16:29])
    if (height, width) != size or tuple(layout) != PLAIN_GREY:
        return None
    pixels = _pixel_stream(data, height * (width + 1))
    if pixels is None or max(pixels[::width + 1]) > LAST_FILTER:
        return None
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return grey if grey is not None and grey.shape == size and grey.dtype == np.uint8 else None


def _pixel_stream(data: bytes, expected: int) -> bytearray | None:
    """The inflated IDAT stream, `expected` bytes long, of a file whose every chunk is whole,
    CRC-true and one that changes no pixel, ending at IEND with nothing after it; else None.
    Never inflates more than expected + 1 bytes: a small file's stream can unpack to gigabytes."""
    at, stream, pixels = len(SIGNATURE), zlib.decompressobj(), bytearray()
    data = memoryview(data)  # chunks are read in place, not copied
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        end = at + 12 + length
        if kind not in PIXELS_ONLY or end > len(data):
            return None
        if zlib.crc32(data[at + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            return None
        if kind == b"IDAT":
            try:
                pixels += stream.decompress(data[at + 8:end - 4], expected + 1 - len(pixels))
            except zlib.error:
                return None
            if stream.unconsumed_tail or len(pixels) > expected:
                return None
        if kind == b"IEND":
            whole = end == len(data) and stream.eof and not stream.unused_data and len(pixels) == expected
            return pixels if whole else None
        at = end
    return None
