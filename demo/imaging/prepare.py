"""The one preprocessing path for every way an image reaches a model: sketchpad, upload, HTTP API, CLI.

Everything model-specific (size, polarity, recipe, mean/std) comes from the ONNX file's metadata
(`input` block); nothing here knows about MNIST beyond the name of its recipe.
"""
import io
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from demo.imaging.budget import DecodeBudget
from demo.imaging.errors import (EmptyImageError, ImageInputError, ServerBusyError, TooSmallImageError,
                                 UnexpectedImageError, UnsupportedImageError)
from demo.imaging.png import dataset_png
from demo.imaging.read import TOO_LARGE, read_regular_file

from demo.contract import InputSpec, normalize
from demo.settings import DECODE_BUDGET_BYTES, DECODE_WAIT_S, MAX_BYTES, MAX_PIXELS

from demo.imaging.photo import (GARMENT_SIDE, WORK_SIDE, Found, Paper, digit_candidates, find_garment, is_clean,
                                normalize_width, read_paper, room_needed, stroke_width)

ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP, WebP or TIFF"  # to a user, a phone's MPO is a JPEG
MIN_INK_CONTRAST = 24  # grey levels between background and the darkest/brightest stroke
INK_THRESHOLD = 0.2  # fraction of the stroke's peak that counts as ink for cropping
DIGIT_BOX = 20  # MNIST: digit fitted into 20x20, then centred by mass in 28x28
MIN_DIGIT_LENGTH = 2.5  # strokes: a digit is at least this many times as long as its stroke is wide (a "1"
# drawn with a fat pen is 5 or more, a round dot 2): scaled up to 20 px, a dot reads as a confident 0
EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                  5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}  # EXIF Orientation -> the transpose that makes it upright
# where Image.getexif finds an orientation, besides a TIFF's own tags: an EXIF block, PNG's
# ImageMagick-style text copy of one, and XMP (a PNG's iTXt, a JPEG's or WebP's packet)
ORIENTATION_SOURCES = frozenset({"exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp"})
# MNIST's mean stroke width at the 20-px digit scale (demo.imaging.photo.stroke_width over the 10,000 test
# digits: median 2.6 px); photos' strokes are brought toward it
MNIST_STROKE_WIDTH = 2.6
# big photos decode at reduced size (JPEG DCT scaling, else reduce), no smaller than this on the long
# side: a 4000x3000 phone JPEG decodes at 1/8 (500x375, 0.4x the time of a full decode), a digit 8% of
# its frame still 30 px tall, as tall as at the photo analysis' own scale (demo.imaging.photo.WORK_SIDE)
DECODE_SIDE = 480

LOG = logging.getLogger("tinyzoo.preprocess")  # no handler: Python prints an error and its traceback on stderr

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A decompression-bomb warning is a refusal in this process, wherever PIL opens the file (our
# decoder, Gradio's own image handling): one filter at import instead of catch_warnings per image
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# a broken EXIF block is ignored (_upright): Pillow's warning about it was two lines of log or stderr per file
warnings.filterwarnings("ignore", message="(Possibly c|C)orrupt EXIF data", category=UserWarning)


# Decoded-image memory for the whole process (see demo/imaging/budget.py). 12 bytes per pixel:
# the peak of prepare on a 40 Mpx RGBA PNG (decoded pixels + float32 copies, VmHWM 470 MB);
# 512 MiB: one worst-case image at a time, or a few large photos
DECODE_BUDGET = DecodeBudget(limit_bytes=DECODE_BUDGET_BYTES, bytes_per_pixel=12, wait_s=DECODE_WAIT_S, refusal=ServerBusyError)


@dataclass
class Candidate:
    seen: np.ndarray  # uint8 [H, W], a picture the model may see, in its training polarity
    ink_box: tuple[int, int, int, int] | None = None  # where its ink was found: (left, top, right, bottom)
    # in the upright source image's pixels; None when the picture was taken as is (already at size)


@dataclass
class Preprocessed:
    tensor: np.ndarray  # float32 [C, H, W]: the first candidate's, normalized as the model was trained
    seen: np.ndarray  # uint8 [H, W]: the first candidate's
    ink_box: tuple[int, int, int, int] | None
    candidates: list[Candidate]  # every picture the model may see, best placed first: one, but for a
    # photo where several groups of strokes could be the digit (demo.inference.candidates picks)


def open_image(source, reduce_to: int | None = None, grey: bool = False) -> Image.Image:
    """bytes | path | PIL image | numpy array -> decoded PIL image in L, LA, RGB or RGBA.
    reduce_to: a big picture is decoded at reduced size, no smaller than this on its long side;
    grey: a JPEG may decode straight to luminance (its colour planes are then never converted)."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, np.ndarray):
        img = _from_array(source)
    else:
        data = _read_bytes(source)
        try:
            img = Image.open(io.BytesIO(data))
            if img.format not in ALLOWED_FORMATS:
                raise UnsupportedImageError(
                    f"unsupported image format {img.format}: use {FORMAT_NAMES}")
            _check_size(img.size)
            img.info["source_size"] = img.size  # the file's own, before a draft decodes it smaller
            img.seek(0)  # animated GIF/WebP: the first frame
            draft(img, reduce_to, grey)  # after the draft, the budget counts the pixels really decoded
            with DECODE_BUDGET.decoding(*img.size):  # waits (or refuses) while others hold the memory
                img.load()
        except ImageInputError:
            raise
        except UnidentifiedImageError:
            raise UnsupportedImageError(f"not an image (or a format that can't be read): use {FORMAT_NAMES}") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(f"image too large: more than {MAX_PIXELS:,} pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageInputError(f"corrupt or truncated image: {_decoder_words(e)}") from None
        except Exception as e:  # a broken field sends Pillow's decoders down paths that raise anything
            raise ImageInputError(f"corrupt image: it could not be decoded ({str(e)[:120] or type(e).__name__})") from None
        img = _upright(img)
    _check_size(img.size)
    return reduce(_normalize_mode(img), reduce_to)


def _decoder_words(e: Exception) -> str:
    """Pillow's reason in a reader's words where it counts bytes it did not process."""
    if "truncated" in str(e).lower():
        return "the file ends before the picture does (cut off while copying or downloading?)"
    return str(e)


def draft(img: Image.Image, reduce_to: int | None, grey: bool = False) -> None:
    """JPEG: let the decoder scale the DCT by 1/2, 1/4 or 1/8 (far less work than a full decode),
    keeping the long side >= reduce_to. The factor is kept in info['decode_scale'] so boxes found
    on the small picture map back to the file's pixels."""
    if reduce_to and img.format in ("JPEG", "MPO") and max(img.size) >= 2 * reduce_to:
        full = max(img.size)
        k = reduce_to / full
        mode = "L" if grey or img.mode == "L" else "RGB"
        img.draft(mode, (math.ceil(img.width * k), math.ceil(img.height * k)))
        img.info["decode_scale"] = full / max(img.size)


def reduce(img: Image.Image, reduce_to: int | None) -> Image.Image:
    """Other formats decode in full; an integer box-reduce still saves the analysis the work."""
    factor = int(max(img.size) // reduce_to) if reduce_to else 1
    if factor < 2:
        return img
    scale, size = img.info.get("decode_scale", 1.0), img.info.get("source_size", img.size)
    img = img.reduce(factor)
    img.info.update(decode_scale=scale * factor, source_size=size)
    return img


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation by transposing the pixels (ImageOps.exif_transpose would also
    re-encode the EXIF block, which raises on values a crafted file can hold). An unreadable EXIF
    block is ignored: it is optional metadata, and the pixels decoded fine."""
    if not (ORIENTATION_SOURCES.intersection(img.info) or hasattr(img, "tag_v2")):
        return img  # nothing to parse (most PNGs): getexif would cost as much as a 28x28 decode
    try:
        orientation = int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # SyntaxError, struct.error, TypeError...: Pillow's EXIF parser on hostile bytes
        return img
    method = EXIF_TRANSPOSE.get(orientation)
    if method is None:
        return img
    img = img.transpose(method)
    if orientation >= 5:  # a quarter turn: the file's width is the picture's height
        img.info["source_size"] = img.info.get("source_size", img.size[::-1])[::-1]
    return img


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        try:
            data = read_regular_file(source)
        except FileNotFoundError:
            raise ImageInputError(f"{source}: no such file") from None
        except ImageInputError as e:
            raise ImageInputError(f"{source}: {e}") from None
    else:
        raise ImageInputError(f"expected image bytes, a path, a PIL image or an array, got {type(source).__name__}")
    if not data:
        raise ImageInputError("empty file: no image data")
    if len(data) > MAX_BYTES:
        raise ImageInputError(f"file {TOO_LARGE}")
    return data


def _check_size(size: tuple[int, int]) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageInputError(f"image has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"image too large: {w}x{h} is more than {MAX_PIXELS:,} pixels")


def _from_array(a: np.ndarray) -> Image.Image:
    """[H,W], [H,W,1|3|4] arrays of any real dtype; floats are taken as 0..1, ints by their range."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageInputError(f"array image must be [H,W] or [H,W,1|3|4], got shape {list(a.shape)}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageInputError("array image contains NaN or infinity")
        a = np.clip(a, 0, 1) * 255
    elif np.issubdtype(a.dtype, np.integer):
        if a.dtype != np.uint8:
            a = np.clip(a, 0, None) * (255 / max(np.iinfo(a.dtype).max, 1))
    else:
        raise ImageInputError(f"array image has non-numeric dtype {a.dtype}")
    _check_size((a.shape[1], a.shape[0]))
    return Image.fromarray(np.ascontiguousarray(a).astype(np.uint8))


def _normalize_mode(img: Image.Image) -> Image.Image:
    if img.mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit grey: scale by the type's range
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1:  # a float picture in 0..1, as a float array is taken
            top = 1.0
        return Image.fromarray((np.clip(a, 0, top) * (255.0 / top)).astype(np.uint8))
    if img.mode in ("P", "PA"):  # palette may carry transparency
        return img.convert("RGBA")
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def to_grey(img: Image.Image) -> np.ndarray:
    """-> [H,W] 0..255 with transparency flattened onto a background that contrasts with the ink:
    the exact uint8 grey when there is nothing to flatten, float32 when there is."""
    alpha = None
    if img.mode in ("LA", "RGBA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
        img = img.convert("L")
    grey = np.asarray(img if img.mode == "L" else img.convert("L"))
    if alpha is None or alpha.min() > 0.98:
        return grey
    grey = grey.astype(np.float32)
    opaque = alpha > 0.5
    if not opaque.any():
        raise EmptyImageError("the picture is fully transparent: there is nothing on it")
    ink_is_dark = float(np.average(grey, weights=alpha + 1e-6)) < 128  # dark ink goes on white paper
    background = 255.0 if ink_is_dark else 0.0
    return alpha * grey + (1 - alpha) * background


def _border_median(a: np.ndarray) -> float:
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return float(np.partition(border, len(border) // 2)[len(border) // 2])  # np.median costs 10x more here


def orient(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """-> (light-ink-on-dark picture, its background level); the border tells the paper's colour."""
    background = _border_median(grey)
    if background > 127:  # dark ink on light paper: invert
        grey, background = 255 - grey, 255 - background
    if float(grey.max()) - background < MIN_INK_CONTRAST:
        raise EmptyImageError("the picture is blank: one even colour with nothing on it")
    return grey, background


def to_ink(grey: np.ndarray) -> np.ndarray:
    """Grey picture -> ink map (bright strokes on 0 background), 0..255, background removed."""
    grey, background = orient(grey)
    peak = float(grey.max())
    return np.clip((grey.astype(np.float32) - background) / (peak - background), 0, 1) * 255


def _bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((ink > INK_THRESHOLD * 255).any(1))
    cols = np.flatnonzero((ink > INK_THRESHOLD * 255).any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _fit(ink: np.ndarray, box: int, trim: bool = True) -> np.ndarray:
    """Crop to the ink (unless the caller already did: trim=False) and scale so the longer side is
    `box` pixels, keeping the aspect ratio."""
    if trim:
        top, bottom, left, right = _bbox(ink)
        ink = ink[top:bottom, left:right]
    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    patch = np.clip(np.asarray(resized), 0, 255)
    return patch * (255 / max(patch.max(), 1e-6))  # peak stroke back to full intensity


def _paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int) -> np.ndarray:
    h, w = patch.shape
    top = int(np.clip(top, 0, canvas.shape[0] - h))
    left = int(np.clip(left, 0, canvas.shape[1] - w))
    canvas[top:top + h, left:left + w] = patch
    return canvas


def mnist_digit(ink: np.ndarray, size: tuple[int, int], trim: bool = True) -> np.ndarray:
    """The MNIST recipe: digit into 20x20 keeping aspect, centre of mass at the centre of 28x28."""
    patch = _fit(ink, DIGIT_BOX * size[0] // 28, trim)
    ys, xs = np.indices(patch.shape)
    mass = patch.sum()
    cy, cx = (ys * patch).sum() / mass, (xs * patch).sum() / mass
    return _paste(np.zeros(size, np.float32), patch, round(size[0] / 2 - cy - 0.5), round(size[1] / 2 - cx - 0.5))


def fit_pad(ink: np.ndarray, size: tuple[int, int], trim: bool = True) -> np.ndarray:
    """Fashion-MNIST style: the object fills the frame's longer side, centred, padded with background."""
    patch = _fit(ink, min(size), trim)
    h, w = patch.shape
    return _paste(np.zeros(size, np.float32), patch, (size[0] - h) // 2, (size[1] - w) // 2)


RECIPES = {"mnist-digit": mnist_digit, "fit-pad": fit_pad}


@DECODE_BUDGET.scope()  # the decode's share of the budget is held through the float copies too
def find_candidates(source, input_spec: InputSpec) -> list[Candidate]:
    """Any image -> the pictures the model may see (uint8 [H, W] in its training polarity) and where
    their ink was found: one, or for a photo the groups of strokes that could be the digit.

    A picture already at the model's size is taken as is (only polarity): it is a dataset-style
    sample, and re-centring would only blur it. A clean picture (a drawing, a scan, a transparent
    PNG: even background, quiet paper) takes the plain recipe; a photo is analysed first
    (demo.imaging.photo: light, lines, page edges, stroke width) and then takes the same recipe.
    """
    if input_spec.recipe not in RECIPES:
        raise ValueError(f"model metadata names unknown preprocessing recipe {input_spec.recipe!r}")
    try:
        return _prepare(source, input_spec)
    except (ImageInputError, MemoryError):
        raise
    except Exception:
        LOG.exception("preparing an image for a %s model failed", input_spec.recipe)
        raise UnexpectedImageError("this picture could not be prepared for the model (an unforeseen "
                                   "failure, logged for the developers): try another picture") from None


def _prepare(source, input_spec: InputSpec) -> list[Candidate]:
    _, height, width = input_spec.shape
    if isinstance(source, (bytes, bytearray, memoryview, str, Path)):
        source = _read_bytes(source)
        if (grey := dataset_png(source, (height, width))) is not None:
            return _as_is(grey, input_spec)
    img = open_image(source, reduce_to=DECODE_SIDE, grey=input_spec.recipe == "mnist-digit")
    grey = to_grey(img)
    if grey.shape == (height, width):
        return _as_is(grey, input_spec)
    check_room(img, input_spec.recipe)
    if grey.dtype != np.uint8 or is_clean(paper := read_paper(img)):  # float: transparency flattened
        pictures = _clean_pictures(img, grey, input_spec.recipe, (height, width))
    else:
        pictures = _photo_pictures(img, paper, input_spec.recipe, (height, width))
    scale, size = img.info.get("decode_scale", 1.0), img.info.get("source_size", img.size)
    return [Candidate(_in_polarity(ink, input_spec), box and _to_source(box, scale, size)) for ink, box in pictures]


def _as_is(grey: np.ndarray, input_spec: InputSpec) -> list[Candidate]:
    """A picture at the model's size is a dataset-style sample: taken as is, only its polarity set."""
    return [Candidate(_in_polarity(orient(grey)[0], input_spec))]


def _in_polarity(ink: np.ndarray, input_spec: InputSpec) -> np.ndarray:
    """Light ink on 0 -> uint8 in the model's training polarity."""
    if input_spec.polarity == "black-on-white":
        ink = 255 - ink
    return ink if ink.dtype == np.uint8 else np.clip(np.rint(ink), 0, 255).astype(np.uint8)


def _clean_pictures(img: Image.Image, grey: np.ndarray, recipe: str, size: tuple[int, int]) -> list[tuple]:
    """A clean picture -> [(the recipe's picture, the ink's box)]. An object lighter than its even
    backdrop (a white shirt on grey) has no ink darker than it: the garment analysis finds it. A
    picture with no contrast either way is blank, whatever the recipe."""
    try:
        ink = to_ink(grey)
    except EmptyImageError:
        if recipe == "mnist-digit" or float(grey.max()) - float(grey.min()) < MIN_INK_CONTRAST:
            raise
        return _photo_pictures(img, None, recipe, size)
    top, bottom, left, right = _bbox(ink)
    if recipe == "mnist-digit" and max(bottom - top, right - left) < MIN_DIGIT_LENGTH * stroke_width(ink):
        raise EmptyImageError("only a dot: a digit's strokes are longer than they are thick (draw the whole digit)")
    return [(RECIPES[recipe](ink, size), (left, top, right, bottom))]


def _photo_pictures(img: Image.Image, paper: Paper | None, recipe: str, size: tuple[int, int]) -> list[tuple]:
    """A photo (and read_paper's analysis of it) -> [(the recipe's picture, the ink's box in img's pixels)]."""
    if recipe == "mnist-digit":
        found = digit_candidates(paper)
        if not found:
            raise EmptyImageError("couldn't find a digit: no ink in the picture looks like a handwritten digit")
        return [(mnist_digit(normalize_width(f.ink, MNIST_STROKE_WIDTH) * 255, size, trim=False), _box_in(f))
                for f in found]
    garment = find_garment(img)
    if garment is None:
        raise EmptyImageError("couldn't find the object: nothing stands out from the background")
    return [(fit_pad(reading * 255, size, trim=False), _box_in(garment)) for reading in garment.readings]


def _box_in(found: Found) -> tuple:
    """A box at the analysis' work scale -> in img's pixels."""
    return tuple(v * found.scale for v in found.box)


def candidate_pictures(source, input_spec: InputSpec) -> np.ndarray:
    """Any image -> uint8 [K, H, W]: every picture the model may see, best placed first."""
    candidates = find_candidates(source, input_spec)
    if len(candidates) == 1:  # most pictures: a view (np.stack's copy costs a tenth of a 28x28 PNG's decode)
        return candidates[0].seen[None]
    return np.stack([c.seen for c in candidates])


def check_room(img: Image.Image, recipe: str) -> None:
    """Refuse a picture whose analysis copy (no longer than the work side) has no room for the
    smallest digit or object the analysis accepts: too small in itself, or so long for its width
    that scaling its length down leaves too few rows. Sizes are the file's (a big one decodes reduced)."""
    digit = recipe == "mnist-digit"
    work_side, thing = (WORK_SIDE, "a digit") if digit else (GARMENT_SIDE, "an object")
    short, long = sorted(img.info.get("source_size", img.size))
    scale = max(1.0, long / work_side)
    if short / scale >= room_needed((round(long / scale), max(1, round(short / scale))), digit):
        return
    if short < room_needed((short, short), digit):
        raise TooSmallImageError(f"the picture is too small to find {thing} in: "
                                 f"a photo needs at least {room_needed((1, 1), digit)} px on each side")
    widest = work_side / room_needed((work_side, 1), digit)
    raise TooSmallImageError(f"the picture is too thin to find {thing} in (about {long / short:.0f}:1): "
                             f"crop it closer to it, to at most {widest:.0f}:1")


def _to_source(box, decode_scale: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box in the decoded picture's pixels -> in the file's, inside its frame (`size`): a reduced
    decode rounds its short side up, so its last pixel can map a pixel past the frame."""
    left, top, right, bottom = (int(round(v * decode_scale)) for v in box)
    return max(left, 0), max(top, 0), min(right, size[0]), min(bottom, size[1])


def preprocess(source, input_spec: InputSpec) -> Preprocessed:
    """Any image -> the tensor a model takes, per its metadata's `input` block (its first
    candidate's), and every candidate."""
    candidates = find_candidates(source, input_spec)
    first = candidates[0]
    return Preprocessed(normalize(first.seen, input_spec), first.seen, first.ink_box, candidates)
