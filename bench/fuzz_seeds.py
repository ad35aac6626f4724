"""Valid image files the decode fuzzer starts from, and the hand-built hostile files of issue #13.

Seeds: every allowed format in the layouts a decoder handles differently (palette, 16-bit, CMYK,
alpha, multi-frame GIF/TIFF/WebP, compressed TIFF, EXIF blocks), all small so a mutation is
cheap to decode. Everything is drawn here, deterministically: no file on disk is needed.
"""
import io
import struct

from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

EXIF_ORIENTATION = 0x0112


def digit(size: int = 40) -> Image.Image:
    """A black '7' on white paper."""
    img = Image.new("L", (size, size), 255)
    s = size / 40
    ImageDraw.Draw(img).line([(9 * s, 8 * s), (30 * s, 8 * s), (17 * s, 33 * s)], fill=0, width=max(1, int(4 * s)))
    return img


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def exif_with_software() -> Image.Exif:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[0x0131] = "tinyzoo fuzz seed"  # Software: an ASCII value stored out of line
    exif[0x011A] = IFDRational(72, 1)  # XResolution: a RATIONAL, also out of line
    return exif


def seeds() -> dict[str, bytes]:
    """name (ending in the file extension) -> bytes of a valid image."""
    seven = digit()
    sideways = seven.rotate(90, expand=True)  # stored rotated, EXIF says how to turn it upright
    rgba = Image.merge("RGBA", (*seven.convert("RGB").split(), seven.point(lambda v: 255 - v)))
    palette = seven.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    sixteen = seven.point(lambda v: v * 257, mode="I").convert("I;16")
    frames = [seven, seven.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    exif = exif_with_software()
    return {
        "gray.png": encode(seven, "PNG"),
        "rgba.png": encode(rgba, "PNG"),
        "palette-trns.png": encode(palette, "PNG", transparency=0),
        "16bit.png": encode(sixteen, "PNG"),
        "1bit.png": encode(seven.convert("1"), "PNG"),
        "exif.png": encode(sideways, "PNG", exif=exif),
        "exif.jpg": encode(sideways.convert("RGB"), "JPEG", exif=exif, quality=80),
        "progressive.jpg": encode(seven, "JPEG", progressive=True, quality=70),
        "cmyk.jpg": encode(seven.convert("CMYK"), "JPEG", quality=80),
        "lossy.webp": encode(seven.convert("RGB"), "WEBP", quality=60),
        "lossless-exif.webp": encode(rgba, "WEBP", lossless=True, exif=exif),
        "animated.webp": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100),
        "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        "transparent.gif": encode(palette, "GIF", transparency=0),
        "multipage.tif": encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "16bit.tif": encode(sixteen, "TIFF"),
        "cmyk-lzw.tif": encode(seven.convert("CMYK"), "TIFF", compression="tiff_lzw"),
        "palette-deflate.tif": encode(palette, "TIFF", compression="tiff_adobe_deflate"),
        "exif.tif": encode(sideways, "TIFF", exif=exif),
        "rgb.bmp": encode(seven.convert("RGB"), "BMP"),
        "palette.bmp": encode(palette, "BMP"),
        "1bit.bmp": encode(seven.convert("1"), "BMP"),
    }


def byte_order(data: bytes, base: int) -> str | None:
    """struct's byte-order prefix for a TIFF header at `base`, None when there is none."""
    return {b"II": "<", b"MM": ">"}.get(bytes(data[base:base + 2]))


def ifd_entries(data: bytes, base: int = 0) -> list[tuple[int, str]]:
    """(offset, byte order) of every 12-byte entry in the IFD chain of the TIFF structure at `base`
    (a TIFF file, or an EXIF block inside another format); stops at anything out of range."""
    order = byte_order(data, base)
    entries = []
    if order is None or len(data) < base + 8:
        return entries
    offset, seen = struct.unpack_from(order + "I", data, base + 4)[0], set()
    while 0 < offset < len(data) - base - 2 and offset not in seen and len(seen) < 8:
        seen.add(offset)
        start = base + offset
        count = struct.unpack_from(order + "H", data, start)[0]
        entries += [(start + 2 + 12 * i, order) for i in range(min(count, 64)) if start + 14 + 12 * i <= len(data)]
        next_at = start + 2 + 12 * count
        if next_at + 4 > len(data):
            break
        offset = struct.unpack_from(order + "I", data, next_at)[0]
    return entries


def edit_entry(data: bytes, tag: int, base: int = 0, new_tag: int | None = None, new_type: int | None = None,
               first_only: bool = True) -> bytes:
    """Change the tag id and/or the type of the IFD entry holding `tag`, value bytes untouched."""
    out = bytearray(data)
    for entry, order in ifd_entries(data, base):
        if struct.unpack_from(order + "H", out, entry)[0] != tag:
            continue
        if new_tag is not None:
            struct.pack_into(order + "H", out, entry, new_tag)
        if new_type is not None:
            struct.pack_into(order + "H", out, entry + 2, new_type)
        if first_only:
            break
    return bytes(out)


def exif_jpeg(retag: int, new_tag: int) -> bytes:
    """An upright-after-EXIF JPEG whose EXIF entry `retag` now claims to be `new_tag`, its type
    and value unchanged: parsing is fine, re-encoding the block (ImageOps.exif_transpose) is not."""
    data = encode(digit().rotate(90, expand=True).convert("RGB"), "JPEG", exif=exif_with_software(), quality=80)
    return edit_entry(data, retag, base=data.index(b"Exif\x00\x00") + 6, new_tag=new_tag)


def crafted() -> dict[str, bytes]:
    """The hostile files of issue #13 and variants: each one got past the decoder's error
    handling (or Pillow's) with something other than a decode error, deep in Pillow."""
    rgb = digit().convert("RGB")
    multipage = encode(digit(), "TIFF", save_all=True, append_images=[digit(24)])
    return {
        # getexif(): "not a TIFF file" SyntaxError, and struct.error on a header with no IFD offset
        "webp-exif-not-tiff.webp": encode(rgb, "WEBP", exif=b"Exif\x00\x00garbage, not a TIFF header"),
        "webp-exif-truncated.webp": encode(rgb, "WEBP", exif=b"MM\x00*"),
        # exif_transpose() re-encodes EXIF: Software (ASCII) posing as ImageLength (a number) is
        # struct.error; XResolution (RATIONAL) posing as Artist (text) is AttributeError
        "jpeg-exif-ascii-imagelength.jpg": exif_jpeg(0x0131, 0x0101),
        "jpeg-exif-rational-artist.jpg": exif_jpeg(0x011A, 0x013B),
        # load(): the first page's StripOffsets typed RATIONAL is TypeError, typed LONG8 OverflowError
        "tiff-multipage-rational-strips.tif": edit_entry(multipage, 0x0111, new_type=5),
        "tiff-multipage-long8-strips.tif": edit_entry(multipage, 0x0111, new_type=16),
    }
