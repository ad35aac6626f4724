"""The dataset's own kind of file, read fast: a PNG already at the model's size, 8-bit grey, with
nothing in it but its pixels (a test set saved as files, as `tinyzoo classify` is given by the
thousand). OpenCV's libpng decodes one in a fifth of the time Pillow takes to open and load it
(~10 us against ~50 us for 28x28: bench/classify_speed.py); anything else is left to Pillow.

Only what Pillow would decode to the very same pixels is taken: no transparency (tRNS), no
orientation or text (eXIf, tEXt, zTXt, iTXt can carry one), no palette, no colour profile; the
size is read from the header first, so nothing larger than the model's input is ever decoded here.
"""
import struct

import cv2
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY, DEPTH = 0, 8  # IHDR colour type 0: greyscale, no alpha
PIXELS_ONLY = {b"IDAT", b"IEND", b"pHYs", b"tIME"}  # chunks after IHDR that change no pixel


def dataset_png(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """PNG bytes of exactly size (height, width), 8-bit grey, pixels only -> uint8 [H, W];
    None for any other file (or one libpng refuses): the caller's general path reads it."""
    if len(data) < 33 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if (height, width) != size or (depth, colour) != (DEPTH, GREY) or not _pixels_only(data):
        return None
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return grey if grey is not None and grey.shape == size and grey.dtype == np.uint8 else None


def _pixels_only(data: bytes) -> bool:
    """Every chunk after IHDR is one that changes no pixel, up to IEND."""
    at = 33  # signature (8) + IHDR: length, type, 13 bytes, CRC
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind not in PIXELS_ONLY:
            return False
        if kind == b"IEND":
            return True
        at += 12 + length
    return False
