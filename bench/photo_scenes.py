"""Seeded, varied photos of real test items the way people take them: digits written on paper
(uneven light, shadows hard, soft, deep, round or band-shaped, pencil, markers thin and broad,
ruled and grid paper, coloured pens, small digits, tilt, phone-sized frames with the desk at the
edges and an EXIF orientation) and garments in shop photos (white, grey, ramp and drop-shadow
backgrounds, dark garments, off-centre, askew, JPEG).

Every scene is built as reflectance x illumination, then blurred, noised and JPEG-encoded, so the
physics a real camera adds (multiplicative light, shadows darkening ink and paper alike) holds.
numpy and Pillow, and scipy.ndimage's dilation for a broad nib; one generator per condition, each
drawing all its randomness from `rng`.
"""
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

DIGIT_CONDITIONS = ("even light", "uneven light", "soft shadow", "pencil", "grid paper", "ruled paper", "blue pen",
                    "small digit", "tilted", "phone frame", "phone, hard shadow", "phone, near an edge",
                    "phone, soft shadow", "phone, deep shadow", "phone, curved shadow",
                    "phone, shadow over all", "phone, band shadow", "phone, ruled", "phone, marker",
                    "phone, thick marker")
FASHION_CONDITIONS = ("white", "grey", "dark garment", "ramp", "drop shadow", "tilt", "coloured", "light garment",
                      "vignetting", "off-centre", "phone frame", "jpeg", "noise", "blur", "neutral garment",
                      "neutral, drop shadow")
INKS = {"black": (25, 25, 30), "blue": (30, 50, 150), "dark blue": (20, 30, 90), "red": (170, 30, 40),
        "green": (20, 100, 50)}
LINE_COLOURS = ((120, 160, 220), (150, 150, 150), (110, 180, 170), (200, 140, 140))


@dataclass
class Photo:
    data: bytes  # the encoded file, as a user would upload it
    label: int
    condition: str


def _resize(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BICUBIC) -> np.ndarray:
    """float [H,W] -> float [h,w] with size=(w, h)."""
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, resample))


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in about -1..1: random values on a coarse grid, smoothly upsampled."""
    h, w = shape
    coarse = rng.uniform(-1, 1, (max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))))
    return _resize(coarse, (w, h))


def paper(shape: tuple[int, int], rng: np.random.Generator, tone=None) -> np.ndarray:
    """RGB reflectance 0..1 of a sheet: white to cream, with fibre texture and fine grain."""
    tone = np.asarray(tone if tone is not None else rng.uniform(0.86, 0.98) * rng.uniform([0.97, 0.96, 0.9], 1.0))
    texture = 1 + rng.uniform(0.005, 0.025) * smooth_noise(shape, int(rng.integers(8, 40)), rng)
    grain = 1 + rng.uniform(0.0, 0.015) * rng.standard_normal(shape)
    return tone[None, None, :] * (texture * grain)[..., None]


def ramp(shape: tuple[int, int], rng: np.random.Generator, low: tuple[float, float] = (0.4, 0.6)) -> np.ndarray:
    """Illumination falling linearly from 1 to `low` along a random direction."""
    h, w = shape
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xs / w - 0.5) * np.cos(angle) + (ys / h - 0.5) * np.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    return 1 - (1 - rng.uniform(*low)) * t


def soft_shadow(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Illumination with a soft-edged shadow (a hand, a phone) over part of the frame."""
    h, w = shape
    mask = Image.new("L", (w, h), 0)
    cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
    r = rng.uniform(0.35, 0.7) * max(h, w)
    points = [(cx + r * rng.uniform(0.6, 1.2) * np.cos(a), cy + r * rng.uniform(0.6, 1.2) * np.sin(a))
              for a in np.sort(rng.uniform(0, 2 * np.pi, 7))]
    ImageDraw.Draw(mask).polygon(points, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.03, 0.1) * max(h, w)))
    depth = rng.uniform(0.3, 0.55)
    return 1 - depth * np.asarray(mask, np.float32) / 255


def digit_strokes(digit: np.ndarray, side: int, rng: np.random.Generator, width: float = 1.0,
                  bold: float = 0.0) -> np.ndarray:
    """uint8 28x28 MNIST digit -> ink coverage 0..1 at side x side, strokes scaled by `width`, then
    widened by `bold` (a share of `side`) on each side: a felt-tip wider than the digit's own outline."""
    cover = _resize(digit.astype(np.float32) / 255, (side, side))
    cover = np.clip(cover, 0, 1)
    if width != 1.0:  # thinner / thicker pen: move the iso-line the stroke is cut at
        cut = np.clip(0.5 - 0.45 * np.log(width), 0.08, 0.9)
        cover = np.clip((cover - cut) / 0.25 + 0.5, 0, 1)
    return disk_max(cover, int(round(bold * side))) if bold else cover


def disk_max(a: np.ndarray, radius: int) -> np.ndarray:
    """The maximum over a disk of `radius` px around each pixel (a round nib's stroke), zeros beyond the edge."""
    ys, xs = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return ndimage.grey_dilation(a, footprint=ys ** 2 + xs ** 2 <= radius ** 2, mode="constant", cval=0.0)


def pencil_grain(cover: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Graphite: light, grainy coverage (paper tooth shows through)."""
    grain = np.clip(rng.uniform(0.4, 1.0, cover.shape) + 0.3 * rng.standard_normal(cover.shape), 0, 1)
    return cover * rng.uniform(0.35, 0.6) * grain


def ruled_lines(shape: tuple[int, int], spacing: float, rng: np.random.Generator, grid: bool) -> np.ndarray:
    """Coverage 0..1 of printed ruled (horizontal) or grid lines."""
    h, w = shape
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    thick = max(1, int(round(rng.uniform(0.012, 0.03) * spacing * (3 if grid else 1))))
    offset = rng.uniform(0, spacing)
    for y in np.arange(offset, h, spacing):
        draw.line([(0, y), (w, y)], fill=255, width=thick)
    if grid:
        for x in np.arange(rng.uniform(0, spacing), w, spacing):
            draw.line([(x, 0), (x, h)], fill=255, width=thick)
    return np.asarray(layer, np.float32) / 255 * rng.uniform(0.35, 0.7)


def mix(base: np.ndarray, cover: np.ndarray, colour) -> np.ndarray:
    """Paint `colour` (RGB 0..255) over an RGB reflectance with coverage 0..1."""
    colour = np.asarray(colour, np.float32) / 255
    return base * (1 - cover[..., None]) + colour[None, None, :] * cover[..., None]


def camera(rgb: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (55, 95),
           exif_orientation: int = 1, sharpen: bool = False, blur: tuple[float, float] = (0.3, 1.4),
           noise: tuple[float, float] = (1.5, 6), colour_noise: float = 0.0) -> bytes:
    """Linear RGB 0..1 -> JPEG bytes after lens blur (Gaussian sigma in px per 1000 px of frame),
    sensor noise (grey levels; colour_noise adds that share of it per channel), (optionally) a
    phone's sharpening (dark and light halos along every edge, a shadow's too) and a rotated sensor."""
    img = Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(*blur) * max(img.size) / 1000))
    a = np.asarray(img, np.float32)
    sigma = rng.uniform(*noise)
    a += sigma * rng.standard_normal(a.shape[:2])[..., None]
    if colour_noise:
        a += colour_noise * sigma * rng.standard_normal(a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if sharpen:
        img = img.filter(ImageFilter.UnsharpMask(rng.uniform(1, 3) * max(img.size) / 1000, int(rng.uniform(60, 160)), 2))
    exif = Image.Exif()
    if exif_orientation != 1:  # the sensor's pixels are stored rotated; the tag says how to turn them upright
        img = img.transpose({6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270,
                             3: Image.Transpose.ROTATE_180}[exif_orientation])
        exif[0x0112] = exif_orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(*quality)), exif=exif)
    return buf.getvalue()


def page_with_digit(digit: np.ndarray, shape: tuple[int, int], frac: float, rng: np.random.Generator,
                    ink="black", pencil=False, lines=None, tilt=0.0, width=None, where=(0.15, 0.85),
                    light=None, bold=0.0) -> np.ndarray:
    """RGB reflectance of a sheet with one digit `frac` of the page height tall, somewhere on it
    (`where`: the range its position is drawn from, a share of the free space); `light`, if
    given, (shape, digit's centre (y, x)) -> the illumination falling on the page."""
    h, w = shape
    page = paper(shape, rng)
    side = max(16, int(frac * h * 28 / 20))  # MNIST's 20-px digit sits in a 28-px box
    if lines:
        spacing = side * rng.uniform(0.55, 0.85) if lines == "ruled" else side * rng.uniform(0.22, 0.4)
        page = mix(page, ruled_lines(shape, spacing, rng, grid=lines == "grid"), LINE_COLOURS[rng.integers(4)])
    cover = digit_strokes(digit, side, rng, width if width is not None else rng.uniform(0.7, 1.3), bold)
    if pencil:
        cover = pencil_grain(cover, rng)
    if tilt:
        cover = np.asarray(Image.fromarray(cover.astype(np.float32), mode="F").rotate(tilt, Image.Resampling.BICUBIC,
                                                                                   expand=True))
    ch, cw = cover.shape
    top = int(rng.uniform(*where) * (h - ch)) if h > ch else 0
    left = int(rng.uniform(*where) * (w - cw)) if w > cw else 0
    full = np.zeros(shape, np.float32)
    full[top:top + ch, left:left + cw] = np.clip(cover, 0, 1)[:h - top, :w - left]
    colour = (90, 90, 95) if pencil else INKS[ink]
    page = mix(page, full, colour)
    return page if light is None else page * light(shape, (top + ch / 2, left + cw / 2))[..., None]


def frame_size(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    long_side = int(rng.integers(low, high))
    short = int(long_side * rng.uniform(0.66, 0.8))
    return (short, long_side) if rng.random() < 0.5 else (long_side, short)


def desk_photo(page: np.ndarray, out_shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The page seen in perspective on a desk that shows at the frame's edges."""
    h, w = out_shape
    wood = np.asarray(rng.uniform([0.25, 0.15, 0.08], [0.55, 0.4, 0.25]), np.float32)
    streaks = 1 + 0.15 * _resize(rng.uniform(-1, 1, (3, 60)), (w, h))[..., None]
    desk = wood[None, None, :] * streaks
    ph, pw = page.shape[:2]
    # the page's corners land inside the frame with jitter: perspective + a little rotation
    inset = lambda: rng.uniform(0.0, 0.1)  # noqa: E731
    corners = [(w * inset(), h * inset()), (w * (1 - inset()), h * inset()),
               (w * (1 - inset()), h * (1 - inset())), (w * inset(), h * (1 - inset()))]
    coeffs = _perspective_coeffs(corners, [(0, 0), (pw, 0), (pw, ph), (0, ph)])
    layers = []
    for c in range(3):
        layers.append(np.asarray(Image.fromarray(page[..., c].astype(np.float32), mode="F").transform(
            (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR, fillcolor=-1.0)))
    warped = np.stack(layers, -1)
    return np.where(warped[..., :1] < 0, desk, warped)


def _perspective_coeffs(dst, src) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform needs to map output points `dst` to input `src`."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.asarray(rows, np.float64), np.asarray(src, np.float64).reshape(8)).tolist()


def shadow_through(shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator,
                   blur: tuple[float, float] = (0.5, 3), depth: tuple[float, float] = (0.35, 0.65),
                   shift: float = 0.0) -> np.ndarray:
    """A shadow (the phone's, a hand's) whose edge runs through `centre` at any angle, blurred by
    `blur` px: a hard edge by default; a soft one (a hand held high) when that is a share of the digit.
    `depth`: the share of the light it takes; `shift` px: the edge that far from `centre`, into the lit
    side (the digit wholly in the shadow) or out of it."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    dark = ((xs - centre[1]) * np.cos(angle) + (ys - centre[0]) * np.sin(angle)) > -shift
    mask = Image.fromarray((dark * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    return 1 - rng.uniform(*depth) * np.asarray(mask, np.float32) / 255


def curved_shadow(shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A hard-edged round shadow (a head's, a hand's) whose rim runs through `centre`, the digit
    inside or outside it."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = rng.uniform(0.25, 0.9) * min(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    cy, cx = centre[0] + radius * np.sin(angle), centre[1] + radius * np.cos(angle)
    dark = (np.hypot(ys - cy, xs - cx) < radius) != (rng.random() < 0.5)
    mask = Image.fromarray((dark * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
    return 1 - rng.uniform(0.4, 0.75) * np.asarray(mask, np.float32) / 255


def band_shadow(shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator, digit_px: float) -> np.ndarray:
    """The hard shadow of something thin (a pen, the phone's edge) held over the page: a dark band
    0.3-1.5 digits wide across the frame, over the digit or beside it."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    distance = (xs - centre[1]) * np.cos(angle) + (ys - centre[0]) * np.sin(angle) - rng.uniform(-0.6, 0.6) * digit_px
    dark = np.abs(distance) < rng.uniform(0.15, 0.75) * digit_px
    mask = Image.fromarray((dark * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
    return 1 - rng.uniform(0.35, 0.75) * np.asarray(mask, np.float32) / 255


def phone_page(digit: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """A 2400-4000 px phone photo of a page: the digit 8-16% of the frame's short side, pen, pencil
    or marker, ruled or grid lines, tilt up to 18 degrees, with or without the desk showing, any
    EXIF orientation, sharpened as phones do; "hard shadow": a sharp shadow's edge through the
    digit; "soft shadow": a blurred one, its penumbra about half to twice the digit's height;
    "deep shadow": a sharp one taking 60-85% of the light, the digit (a thick pen or marker) in it
    or on its edge; "curved shadow": a round one (a head's, a hand's) whose rim crosses the digit;
    "band shadow": a pen's or the phone's edge's, a dark band across the frame; "shadow over all":
    a sharp one over page and desk alike; "near an edge": the digit anywhere on the page, up to its
    corners; "ruled": a pen's digit across ruled lines; "marker": a felt-tip's, 1.6-2.4x a pen's width;
    "thick marker": a broad felt-tip's, wider than the digit's own outline by 2-5% of its box each side."""
    shape = frame_size(rng, 2400, 4001)
    work = (shape[0] // 4, shape[1] // 4)
    desk = rng.random() < 0.5
    page_shape = (int(work[0] * 0.9), int(work[1] * 0.9)) if desk else work
    frac = rng.uniform(0.08, 0.16) * min(work) / page_shape[0]
    pen = ({"phone, marker": "marker", "phone, thick marker": "marker", "phone, ruled": "pen"}.get(condition)
           or rng.choice(["pen", "pencil", "marker"]))
    options = dict(pencil=pen == "pencil", width={"pen": rng.uniform(0.7, 1.2), "pencil": rng.uniform(0.6, 0.9),
                                                  "marker": rng.uniform(1.4, 1.9)}[pen])
    digit_px = frac * page_shape[0]
    if condition == "phone, hard shadow":
        options["light"] = lambda s, centre: shadow_through(s, centre, rng)
    elif condition == "phone, deep shadow":  # a thick pen or marker, the edge through or beside the digit
        options.update(pencil=False, width=rng.uniform(1.0, 1.9))
        shift = rng.uniform(-0.5, 1.2) * digit_px
        options["light"] = lambda s, centre: shadow_through(s, centre, rng, depth=(0.6, 0.85), shift=shift)
    elif condition == "phone, band shadow":
        options["light"] = lambda s, centre: band_shadow(s, centre, rng, digit_px)
    elif condition == "phone, curved shadow":
        options["light"] = lambda s, centre: curved_shadow(s, centre, rng)
    elif condition == "phone, soft shadow":
        options["light"] = lambda s, centre: shadow_through(s, centre, rng, (0.1 * digit_px, 0.6 * digit_px))
    elif condition == "phone, marker":  # a felt-tip's thick stroke, its ink not always black
        options["width"] = rng.uniform(1.6, 2.4)
    elif condition == "phone, thick marker":
        options.update(width=rng.uniform(1.4, 2.2), bold=rng.uniform(0.02, 0.05))
    where = (0.0, 1.0) if condition == "phone, near an edge" else (0.15, 0.85)
    lines = "ruled" if condition == "phone, ruled" else ["ruled", "grid"][rng.integers(2)]
    page = page_with_digit(digit, page_shape, frac, rng, ink=["black", "blue"][rng.integers(2)],
                           lines=lines, tilt=rng.uniform(-18, 18), where=where, **options)
    scene = desk_photo(page, work, rng) if desk else page
    scene = scene * ramp(work, rng, (0.7, 0.95))[..., None]
    if condition == "phone, shadow over all":  # the phone's or a hand's shadow falls on the desk too
        across = rng.uniform(0.3, 0.7, 2) * np.asarray(work)
        scene = scene * shadow_through(work, tuple(across), rng, depth=(0.4, 0.8))[..., None]
    scene = np.stack([_resize(scene[..., c], (shape[1], shape[0])) for c in range(3)], -1)
    return camera(scene, rng, (60, 93), exif_orientation=int(rng.choice([1, 3, 6, 8])), sharpen=True)


def digit_photo(digit: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """One photo of a 28x28 MNIST digit written on paper under `condition`."""
    if condition.startswith("phone,"):
        return phone_page(digit, condition, rng)
    if condition == "phone frame":
        # built at a quarter of the size, upscaled: the detail a 12 MP phone adds is blur and noise anyway
        shape = frame_size(rng, 3000, 4001)
        work = (shape[0] // 4, shape[1] // 4)
        page_shape = (int(work[0] * 0.9), int(work[1] * 0.9))
        frac = rng.uniform(0.08, 0.16) * max(shape) / max(page_shape) / 4
        page = page_with_digit(digit, page_shape, frac, rng, ink=["black", "blue"][rng.integers(2)], lines="ruled",
                               tilt=rng.uniform(-12, 12))
        scene = desk_photo(page, work, rng) * soft_shadow(work, rng)[..., None]
        scene = np.stack([_resize(scene[..., c], (shape[1], shape[0])) for c in range(3)], -1)
        return camera(scene, rng, (70, 95), exif_orientation=int(rng.choice([1, 3, 6, 8])))
    small = condition == "small digit"
    shape = frame_size(rng, 1200, 2400) if small else frame_size(rng, 400, 1200)
    frac = rng.uniform(0.06, 0.12) if small else rng.uniform(0.25, 0.5)
    options = {"pencil": dict(pencil=True, width=rng.uniform(0.6, 0.9)),
               "grid paper": dict(lines="grid"), "ruled paper": dict(lines="ruled"),
               "blue pen": dict(ink=["blue", "dark blue"][rng.integers(2)]),
               "tilted": dict(tilt=rng.choice([-1, 1]) * rng.uniform(8, 18))}.get(condition, {})
    if condition in ("even light", "small digit"):
        options["ink"] = list(INKS)[rng.integers(len(INKS))]
    scene = page_with_digit(digit, shape, frac, rng, **options)
    light = {"uneven light": lambda: ramp(shape, rng), "soft shadow": lambda: soft_shadow(shape, rng)}
    if condition in light:
        scene = scene * light[condition]()[..., None]
    elif condition != "even light":  # real photos are rarely evenly lit: a gentle fall-off everywhere else
        scene = scene * ramp(shape, rng, (0.8, 0.95))[..., None]
    return camera(scene, rng)


def garment_photo(item: np.ndarray, condition: str, rng: np.random.Generator) -> bytes:
    """One shop-style photo of a 28x28 Fashion-MNIST item (which is the negated grey of a product
    photo on white): a coloured garment, off-centre in a larger frame, on a `condition` background."""
    phone = condition == "phone frame"  # the whole phone frame, the garment a smaller part of it
    shape = frame_size(rng, 2400, 4000) if phone else frame_size(rng, 500, 1600)
    h, w = shape
    side = int(rng.uniform(*((0.25, 0.45) if phone else (0.4, 0.75))) * min(h, w))
    darkness, alpha = garment_cutout(item)
    v = np.clip(_resize(darkness, (side, side)), 0, 1)
    coverage = np.clip(_resize(alpha, (side, side)), 0, 1)
    if condition == "tilt":  # laid down or photographed askew: 6-20 degrees either way
        angle = rng.choice([-1, 1]) * rng.uniform(6, 20)
        v, coverage = (np.clip(np.asarray(Image.fromarray(a, mode="F").rotate(angle, Image.Resampling.BICUBIC)), 0, 1)
                       for a in (v, coverage))
    tint = rng.uniform(0.55, 1.35, 3)
    neutral = condition.startswith("neutral")  # grey, black, white or beige cloth: little hue to tell it from a shadow
    if neutral:
        tint = 1 + (tint - 1) * rng.uniform(0, 0.15)
    tint /= tint @ [0.299, 0.587, 0.114]  # luminance 1: the tint changes the hue, not the grey
    reflect = (1 - v)[..., None] * tint[None, None, :]
    if neutral:
        reflect = reflect * rng.uniform(0.55, 1.0)
    elif condition == "dark garment":
        reflect = reflect * rng.uniform(0.4, 0.6)
    elif condition == "light garment":  # pale cloth, nearly white: its shading a third as deep, its hue faint
        reflect = (1 - rng.uniform(0.25, 0.45) * v)[..., None] * (1 + 0.3 * (tint - 1))[None, None, :]
    scene = paper(shape, rng, tone=backdrop_tone(condition, rng))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    if condition == "off-centre":
        top, left = against_an_edge((top, left), shape, side, rng)
    full_cover = np.zeros(shape, np.float32)
    full_cover[top:top + side, left:left + side] = coverage
    light = garment_light = shop_light(condition, full_cover, side, rng)
    if condition.endswith("drop shadow"):
        garment_light = 1.0  # a drop shadow falls beside the garment; the other lights fall on it too
    garment = np.zeros_like(scene)
    garment[top:top + side, left:left + side] = np.clip(reflect, 0, 1)
    scene = (scene * light[..., None] * (1 - full_cover[..., None])
             + garment * np.asarray(garment_light)[..., None] * full_cover[..., None])
    return camera(scene, rng, **SHOP_CAMERAS.get(condition, {"quality": (65, 95)}))


def garment_cutout(item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 28x28 Fashion-MNIST item -> (the cloth's darkness 0..1, its coverage 0..1). The item's
    outline is anti-aliased against the white it was shot on: an outline pixel fainter than the
    cloth beside it is that cloth covering part of the pixel. Unmixed, a coloured or grey backdrop
    shows through there (no white fringe); on white, the photo's grey is the item's."""
    v = item.astype(np.float32) / 255
    solid = item > 0  # gaps between straps stay open: the backdrop shows through them
    outline = solid & ~ndimage.binary_erosion(solid)
    beside = ndimage.grey_dilation(np.where(solid & ~outline, v, 0), size=3)  # the darkest cloth next to it
    # with no cloth beside it (a speck, a thin strap), a pixel is taken as cloth at least a quarter dark
    beside = np.where(outline & (beside == 0), np.maximum(v, 0.25), beside)
    partial = outline & (beside > v)
    alpha = np.where(partial, v / np.maximum(beside, 1e-6), solid).astype(np.float32)
    return np.where(partial, beside, v).astype(np.float32), alpha


SHOP_CAMERAS = {"jpeg": {"quality": (15, 40)},
                "noise": {"quality": (65, 95), "noise": (8, 20), "colour_noise": 0.6},
                "blur": {"quality": (65, 95), "blur": (6, 16)}}  # 6-16 px per 1000: about half to one item pixel


def backdrop_tone(condition: str, rng: np.random.Generator) -> np.ndarray:
    """The backdrop's RGB reflectance: white to off-white, a mid grey, or a coloured card."""
    if condition == "coloured":
        hue = rng.uniform(0.2, 1.0, 3)
        return hue / hue.max() * rng.uniform(0.55, 0.95)
    tone = rng.uniform(0.55, 0.75) if condition == "grey" else rng.uniform(0.9, 1.0)
    return np.full(3, tone) * rng.uniform([0.97, 0.97, 0.95], 1.0)


def against_an_edge(place: tuple[int, int], shape: tuple[int, int], side: int,
                    rng: np.random.Generator) -> tuple[int, int]:
    """The garment's box moved to within 3% of one edge of the frame, anywhere along it."""
    (top, left), (h, w) = place, shape
    gap = int(rng.uniform(0, 0.03) * min(h, w))
    edge = int(rng.integers(4))
    if edge < 2:
        return (gap if edge == 0 else h - side - gap), left
    return top, (gap if edge == 2 else w - side - gap)


def shop_light(condition: str, cover: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Illumination over the frame: even, a ramp, vignetting, or the garment's drop shadow."""
    h, w = cover.shape
    if condition.endswith("drop shadow"):
        dy, dx = (rng.uniform(0.03, 0.08) * side * rng.choice([-1, 1]) for _ in range(2))
        shadow = Image.fromarray((cover * 255).astype(np.uint8)).transform(
            (w, h), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy))
        shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(rng.uniform(0.02, 0.05) * side)), np.float32) / 255
        return 1 - rng.uniform(0.25, 0.45) * shadow
    if condition == "ramp":
        return ramp((h, w), rng, (0.45, 0.65))
    if condition == "vignetting":  # the lens darkens the corners: 30-55% of the light lost there
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((ys / h - 0.5) ** 2 + (xs / w - 0.5) ** 2) * 2
        return 1 - rng.uniform(0.3, 0.55) * r2
    return np.ones((h, w), np.float32)


def make_photos(images: np.ndarray, labels: np.ndarray, conditions, per_condition: int, seed: int,
                render) -> list[Photo]:
    """per_condition photos of each condition, items drawn at random (without replacement) from the test set."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), per_condition * len(conditions), replace=False)
    photos = []
    for i, index in enumerate(picks):
        condition = conditions[i // per_condition]
        photos.append(Photo(render(images[index], condition, rng), int(labels[index]), condition))
    return photos
