"""Photo analysis: find the ink (or the garment) in a picture taken with a camera, whatever the light.

A photo is paper x light x ink: dividing by a local estimate of the paper's brightness removes ramps
and shadows; the ink is what is darker than its own neighbourhood (in any colour channel, so blue
pens and grey pencil both count). Printed ruled/grid lines, desk and page edges (ink touching the
frame's border) and specks are removed before the digit is chosen as the strongest plausible group
of strokes. Garments are separated from a smooth (ramp, grey) background fitted on the frame's
border, a drop shadow being the neutral, soft darkening beside them.

numpy + Pillow only; everything runs on a copy at most WORK_SIDE pixels long.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

WORK_SIDE = 512  # analysis resolution: a digit 8% of a phone frame is still ~40 px tall here
GARMENT_SIDE = 256  # a garment fills a good part of its frame: ~100 px or more here
CLOSING_SHARE = 0.2  # the paper estimate fills dark details up to this share of the frame: strokes, even a
# close-up's or the pad's (its pen is 12% of the digit), while shadows and the desk stay
DETAIL_SHARE = 0.06  # polarity: details up to this share of the frame are strokes, whole; the gaps between
# them (a 0's loop) and a lit corner beside a hard shadow are wider and count only in part
MIN_DIGIT_SIDE = 10  # px at work scale: anything smaller is a speck, not a digit
BORDER_MARGIN = 0.015  # ink this close to the frame's edge (share of its long side) is page edge or desk
DARK_GARMENT = 0.25  # even the garment's lightest parts are this dark: a dark garment, shading stretched
MIN_INK = 0.15  # a digit's strokes are at least this much darker than their paper somewhere
LINE_SPAN = 0.6  # a ruled/grid line covers at least this share of the frame along its direction
LINE_WIDTH = 0.025  # ... and is at most this thick (share of the frame): thicker is a digit's stroke
FLAT_BACKGROUND = 10.0  # grey levels: a flatter background (and quiet paper) is a clean picture
QUIET_PAPER = 1.5  # grey levels of noise (MAD) a screen drawing or a scan stays under
CLEAN_INK = 0.4  # in a clean picture, ink is at least this much darker than the paper...
INK_EDGE_SHARE = 0.06  # ... and its anti-aliased edge lies within this share of the frame of it
BORDER_INK = 0.2  # ... and it covers less than this share of the frame's edge


@dataclass
class Found:
    ink: np.ndarray  # float32 [h, w] 0..1 at work scale, the chosen strokes only
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the ink at work scale
    scale: float  # source pixels per work pixel


def to_work(img: Image.Image, side: int = 0) -> tuple[np.ndarray, float]:
    """-> float32 [H, W, C] 0..255 no longer than `side` (WORK_SIDE), and source pixels per work pixel."""
    img = img if img.mode in ("L", "RGB") else img.convert("RGB")  # convert() to its own mode copies
    scale = max(img.size) / (side or WORK_SIDE)
    if scale > 1:
        img = img.resize((max(1, round(img.width / scale)), max(1, round(img.height / scale))),
                         Image.Resampling.BOX, reducing_gap=2.0)
    a = np.asarray(img, np.float32)
    return (a[..., None] if a.ndim == 2 else a), max(scale, 1.0)


def box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges repeated: shifted slices, r is small here."""
    if radius < 1:
        return a
    n = 2 * radius + 1
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (a.ndim - 2)
    p = np.pad(a.astype(np.float32), pad, mode="edge")
    rows = sum(p[i:i + a.shape[0]] for i in range(n))
    return sum(rows[:, i:i + a.shape[1]] for i in range(n)) / (n * n)


def sliding_max(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Max over a window of odd `size` along `axis`, edges repeated, in O(1) per pixel whatever the
    size (van Herk / Gil-Werman: running maxima forward and backward within blocks of `size`)."""
    a = np.moveaxis(a, axis, 0)
    n, r = a.shape[0], size // 2
    p = np.pad(a, [(r, r + (-(n + 2 * r)) % size)] + [(0, 0)] * (a.ndim - 1), mode="edge")  # a C-order copy
    forward, backward = p.reshape(-1, size, *a.shape[1:]), p.copy().reshape(-1, size, *a.shape[1:])
    # one whole-row np.maximum per step: ten times faster than ufunc.accumulate along a middle axis
    for i in range(1, size):
        np.maximum(forward[:, i - 1], forward[:, i], out=forward[:, i])
        np.maximum(backward[:, size - i], backward[:, size - i - 1], out=backward[:, size - i - 1])
    forward, backward = forward.reshape(p.shape), backward.reshape(p.shape)
    return np.moveaxis(np.maximum(backward[:n], forward[size - 1:size - 1 + n]), 0, axis)


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Max over size x size (a boolean mask: dilated), edges repeated."""
    return sliding_max(sliding_max(a, size, 0), size, 1)


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    return -max_filter(-a, size)


def closing(a: np.ndarray, size: int) -> np.ndarray:
    """Grey closing (max, then min, over size x size): dark details narrower than the window are
    filled, while steps (a shadow's or a page's edge) and ramps come out exactly as they went in."""
    return min_filter(max_filter(a, size), size)


def background(channel: np.ndarray) -> np.ndarray:
    """The paper's brightness under the local light: the lightly smoothed picture, closed over
    CLOSING_SHARE of the frame, so strokes vanish from it but shadows and ramps stay. (A per-block
    estimate smeared a hard shadow edge over its block: the shadowed side then read as ink.)"""
    return closing(box_blur(channel, 1), _odd(CLOSING_SHARE * max(channel.shape)))


def _odd(size: float) -> int:
    return max(3, int(size) | 1)


@dataclass
class Paper:
    """A photo's luminance at work scale, turned so the paper is the bright side, and the paper's
    brightness under the local light: the clean-picture check and the ink map both start from
    these, so they are computed once per picture."""
    grey: np.ndarray  # float32 [H, W] 0..255
    level: np.ndarray  # float32 [H, W]: background(grey)
    scale: float  # source pixels per work pixel
    flipped: bool  # the picture was light on dark (grey is its negative)


def read_paper(img: Image.Image) -> Paper:
    """Luminance, not the most-contrasting channel: phone JPEGs halve the colour resolution, and a
    coloured pen's hue bleeds a halo around its strokes that luminance doesn't have (a blue or red
    pen is still 70-80% darker than paper in luminance)."""
    work, scale = to_work(img)
    grey = work @ np.asarray([0.299, 0.587, 0.114], np.float32) if work.shape[-1] == 3 else work[..., 0]
    flipped = dark_background(grey)
    grey = 255 - grey if flipped else grey
    return Paper(grey, background(grey), scale, flipped)


def is_clean(paper: Paper) -> bool:
    """A drawing, a scan or a screenshot: even background and quiet paper. Those keep the plain
    recipe (nothing to normalize away), photos take the full analysis."""
    return quiet_paper(paper.grey, paper.level) or one_paper_level(paper.grey)


def one_paper_level(grey: np.ndarray) -> bool:
    """A marker stroke wider than the closing darkens the local estimate; a noiseless picture whose
    pixels are paper, ink, or ink's anti-aliased edge is still clean. A photo of a page is not, even
    where its paper is quiet: a shadow or the desk leaves mid-tones far from any ink."""
    level = float(np.percentile(grey, 95))
    if not quiet_paper(grey, np.full_like(grey, level)):
        return False
    darker = level - grey
    ink = darker >= CLEAN_INK * level
    if frame_edge(ink).mean() > BORDER_INK:
        return False  # a drawing's strokes stay inside its frame; a hard shadow or the desk runs along it
    near_ink = max_filter(ink.astype(np.uint8), _odd(INK_EDGE_SHARE * max(grey.shape))) > 0
    return float(((darker >= 8) & ~ink & ~near_ink).mean()) < 0.02


def frame_edge(a: np.ndarray) -> np.ndarray:
    """The pixels along the frame's four edges, in one row (the corners twice)."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def quiet_paper(grey: np.ndarray, bg: np.ndarray) -> bool:
    """Most pixels sit at the paper level `bg`, which is flat, with less noise than a camera makes."""
    paper = np.abs(grey - bg) < 8  # pixels at the paper's own level (not ink)
    if paper.mean() < 0.3:
        return False
    noise = float(np.median(np.abs(grey[paper] - bg[paper])))
    return float(bg.max() - bg.min()) < FLAT_BACKGROUND and noise < QUIET_PAPER


def dark_background(grey: np.ndarray) -> bool:
    """Light ink on dark paper (a blackboard, a white-on-black drawing): the far tail (the ink,
    however little of it) reaches further above the picture's median than below it."""
    sample = grey[::2, ::2].ravel()  # a quarter of the pixels: the same tails, a quarter of the sorting
    n = len(sample) - 1
    lo, mid, hi = np.partition(sample, [n // 5000, n // 2, n - n // 5000])[[n // 5000, n // 2, n - n // 5000]]
    return hi - mid > mid - lo


def photo_polarity(paper: Paper) -> Paper:
    """A photo read as light on dark must also show its strongest light details (strokes) standing
    out of their surroundings more than its strongest dark ones; else it is dark ink after all. The
    tails alone took a page half in shadow on a dark desk for light ink on dark paper. Clean
    pictures keep the tails' verdict (their strokes and the gaps they enclose both reach full
    contrast: no tie-break here)."""
    if not paper.flipped:
        return paper
    grey = 255 - paper.grey  # as taken
    sample = grey[::2, ::2]
    size = _odd(DETAIL_SHARE * max(sample.shape))
    # a lit corner's tip beside a hard shadow is a thin light detail: the frame's margin is left out,
    # as much of it as leaves a row and a column in a thin picture
    inside = tuple(slice(m, n - m) for n in sample.shape for m in [min(size, (n - 1) // 2)])
    dark_details = (closing(sample, size) - sample)[inside]
    light_details = (sample + closing(-sample, size))[inside]  # the picture minus its opening
    if np.percentile(light_details, 99.9) > np.percentile(dark_details, 99.9):
        return paper
    return Paper(grey, background(grey), paper.scale, False)


def ink_map(paper: Paper) -> np.ndarray:
    """-> float32 [H, W] 0..1: how much darker than its local paper each pixel is, lightly smoothed."""
    # relative to the local paper, but never to a near-black one: dividing by a dark background
    # (a deep shadow, an inverted picture) would turn its noise into ink
    if paper.flipped:  # light ink: its contrast is relative to the ink itself, (ink - board) / ink, which
        # the light cancels out of (chalk in a shadow is as much chalk); the board's noise stays small
        scale = np.maximum(255 - paper.grey, 2 * (255 - paper.level) + 16)
    else:
        scale = np.maximum(paper.level, 0.5 * float(np.percentile(paper.level, 99)) + 1.0)
    return box_blur(np.clip((paper.level - paper.grey) / scale, 0, 1), 1)


@dataclass
class Components:
    labels: np.ndarray  # int32 [H, W]: 1..n, 0 background
    n: int
    top: np.ndarray  # [n] bounding boxes, bottom/right exclusive
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray


def components(mask: np.ndarray) -> Components:
    """8-connected labelling by row runs (no scipy), boxes taken from the runs."""
    h, w = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    n = len(rows)
    roots = _min_run_of_group(*_touching_runs(rows, starts, ends, w + 2), n)
    ids = np.unique(roots, return_inverse=True)[1] + 1 if n else roots
    count = int(ids.max()) if n else 0
    marks = np.zeros(h * w + 1, np.int64)
    marks[rows * w + starts] += ids  # run starts are distinct, so are run ends
    marks[rows * w + ends] -= ids
    labels = np.cumsum(marks[:-1]).reshape(h, w).astype(np.int32)
    box = [np.full(count + 1, h), np.full(count + 1, -1), np.full(count + 1, w), np.full(count + 1, -1)]
    for out, op, values in zip(box, (np.minimum, np.maximum, np.minimum, np.maximum), (rows, rows, starts, ends - 1)):
        op.at(out, ids, values)
    return Components(labels, count, box[0][1:], box[1][1:] + 1, box[2][1:], box[3][1:] + 1)


def _touching_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, stride: int):
    """-> (a, b): every pair of runs, a in the row below b, that touch 8-connected (b.end >= a.start
    and b.start <= a.end; ends exclusive). Runs are keyed row * stride + column, so one sorted
    search over all rows finds, for each run, the span of touching runs in the row above."""
    lo = np.searchsorted(rows * stride + ends, (rows - 1) * stride + starts, "left")
    hi = np.searchsorted(rows * stride + starts, (rows - 1) * stride + ends, "right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(len(rows)), counts)
    b = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return a, b


def _min_run_of_group(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """-> for each of n runs, the lowest run index connected to it through the (a, b) pairs:
    labels only ever drop to a connected run's, the pairs and each label's own label pull them
    down together (pointer jumping), until nothing changes. Vectorized: a Python union-find
    spent ~10 ms per photo here."""
    label = np.arange(n)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        for target in (a, b, label[a], label[b]):
            np.minimum.at(new, target, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def remove_lines(mask: np.ndarray) -> np.ndarray:
    """Printed ruled and grid lines, and page edges, out of a binary ink mask. Per family
    (near-horizontal, near-vertical), the angle within 30 degrees whose projection has the sharpest
    row; rows covering LINE_SPAN of the frame are lines, widened while their neighbours stay
    line-like. Repeated: a page edge seen in perspective has its own angle. Where a stroke crosses
    a line, the gap is filled back from the stroke on both sides."""
    out = mask.copy()
    for vertical in (False, True):
        for _ in range(3):
            ys, xs = np.nonzero(out)
            along, across, extent = (ys, xs, mask.shape[0]) if vertical else (xs, ys, mask.shape[1])
            if len(ys) < LINE_SPAN * extent:
                break
            counts, offset = _sharpest_projection(along, across)
            lines = counts >= LINE_SPAN * extent
            if not lines.any():
                break
            band = _widen(lines, counts >= 0.15 * extent)
            band = _thin_runs(band, LINE_WIDTH * extent)
            if not band.any():
                break
            on_line = band[offset]
            out[ys[on_line], xs[on_line]] = False
    return out | _bridged(mask & ~out, out)


def _projection(along: np.ndarray, across: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    offset = np.rint(across - along * np.tan(np.radians(degrees))).astype(np.int64)
    offset -= offset.min()
    return np.bincount(offset), offset


def _sharpest_projection(along: np.ndarray, across: np.ndarray):
    """Coarse (3 degree) then fine (0.5 degree) search for the angle with the highest row."""
    coarse = max(np.arange(-30, 31, 3.0), key=lambda d: _projection(along[::2], across[::2], d)[0].max())
    fine = max(np.arange(coarse - 2, coarse + 2.1, 0.5), key=lambda d: _projection(along, across, d)[0].max())
    return _projection(along, across, fine)


def _thin_runs(rows: np.ndarray, widest: float) -> np.ndarray:
    """Only the runs of consecutive line rows no wider than `widest`: a printed line is thin."""
    edges = np.diff(np.r_[0, rows.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros_like(rows)
    for a, b in zip(starts, ends):
        out[a:b] = b - a <= max(widest, 2)
    return out


def _widen(rows: np.ndarray, allowed: np.ndarray, steps: int = 8) -> np.ndarray:
    for _ in range(steps):
        grown = rows | (np.r_[rows[1:], False] | np.r_[False, rows[:-1]]) & allowed
        if (grown == rows).all():
            break
        rows = grown
    return rows


def _bridged(removed: np.ndarray, kept: np.ndarray, reach: int = 4) -> np.ndarray:
    """Removed pixels with kept ink on both sides (above and below, or left and right) within
    `reach`: a stroke crossing a line, put back."""
    def near(shift_axis, sign):
        found = np.zeros_like(kept)
        for d in range(1, reach + 1):
            found |= np.roll(kept, sign * d, axis=shift_axis)
        return found
    return removed & ((near(0, 1) & near(0, -1)) | (near(1, 1) & near(1, -1)))


def threshold(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """-> (weak ink mask, strong level): the weak mask is anything clearly above the paper's noise,
    the strong level what the digit's own strokes reach."""
    med = float(np.median(ink))
    sigma = 1.4826 * float(np.median(np.abs(ink - med))) + 1e-3
    peak = float(np.percentile(ink, 99.9))
    low = max(med + 5 * sigma, 0.3 * peak, 0.06)
    high = max(med + 8 * sigma, 0.55 * peak, MIN_INK)
    return ink > low, high


def choose_digit(ink: np.ndarray, mask: np.ndarray, strong: float) -> tuple[np.ndarray, tuple] | None:
    """-> (mask of the digit's components, box) or None: border-touching components are page edges
    and desk; the digit is the component with the most ink plus its close neighbours."""
    parts = components(mask)
    n = parts.n
    if n == 0:
        return None
    h, w = mask.shape
    top, bottom, left, right = parts.top, parts.bottom, parts.left, parts.right
    inked = parts.labels[mask]
    mass = np.bincount(inked, weights=ink[mask], minlength=n + 1)[1:]
    peak = np.zeros(n + 1)
    np.maximum.at(peak, inked, ink[mask])
    margin = max(1, int(BORDER_MARGIN * max(h, w)))
    touches = (top <= margin) | (left <= margin) | (bottom >= h - margin) | (right >= w - margin)
    tall, wide = bottom - top, right - left
    # a digit's box is at most ~10 times longer than wide (a "1"); longer is an edge or a line
    plausible = (peak[1:] >= strong) & (np.maximum(tall, wide) >= 3) & (np.maximum(tall, wide) <= 10 * np.minimum(tall, wide))
    candidates = plausible & ~touches
    if not candidates.any():
        return None
    # people aim at what they photograph: ink far from the centre counts up to half less
    off_centre = np.hypot((top + bottom) / h - 1, (left + right) / w - 1) / np.sqrt(2)
    seed = int(np.argmax(np.where(candidates, mass * (1 - 0.5 * off_centre), -1)))
    box = [top[seed], left[seed], bottom[seed], right[seed]]
    chosen = {seed}
    grown = True
    while grown:  # broken strokes: neighbours within a third of the digit's size join it
        grown = False
        reach = 0.35 * max(box[2] - box[0], box[3] - box[1])
        for i in np.flatnonzero(candidates & (mass >= 0.03 * mass[seed])):
            if i in chosen:
                continue
            gap_y = max(box[0] - bottom[i], top[i] - box[2], 0)
            gap_x = max(box[1] - right[i], left[i] - box[3], 0)
            if max(gap_y, gap_x) <= reach:
                chosen.add(i)
                box = [min(box[0], top[i]), min(box[1], left[i]), max(box[2], bottom[i]), max(box[3], right[i])]
                grown = True
    if max(box[2] - box[0], box[3] - box[1]) < MIN_DIGIT_SIDE:
        return None
    keep = np.isin(parts.labels, np.asarray(sorted(chosen)) + 1)
    return keep, (int(box[1]), int(box[0]), int(box[3]), int(box[2]))


def room_needed(work_shape: tuple[int, int], digit: bool) -> int:
    """The short side (px at work scale) below which the analysis can find nothing: a digit of
    MIN_DIGIT_SIDE clear of choose_digit's border margin, or a garment as big with
    smooth_background's band of backdrop on both sides."""
    if digit:
        return MIN_DIGIT_SIDE + 2 * (max(1, int(BORDER_MARGIN * max(work_shape))) + 1)
    return MIN_DIGIT_SIDE + 2 * 2


def find_digit(paper: Paper) -> Found | None:
    """The handwritten digit's ink in a photo (read_paper's analysis), or None when nothing
    plausible is there."""
    ink = ink_map(photo_polarity(paper))
    weak, strong = threshold(ink)
    mask = remove_lines(weak)
    chosen = choose_digit(ink, mask, strong)
    if chosen is None:
        return None
    keep, box = chosen
    keep = max_filter(keep, 3)  # the strokes' soft edges
    digit = np.where(keep & (mask | ~weak), ink, 0)
    left, top, right, bottom = box
    crop = digit[max(0, top - 1):bottom + 1, max(0, left - 1):right + 1]
    level = np.percentile(crop[crop > 0], 90) if (crop > 0).any() else 1.0
    return Found(np.clip(crop / max(level, 1e-3), 0, 1), box, paper.scale)


def stroke_width(patch: np.ndarray) -> float:
    """Mean stroke width in pixels of a bright-on-dark patch: area over half the perimeter
    (a long stroke of width w has area w*L and perimeter ~2L)."""
    ink = patch > 0.5 * patch.max()
    area = ink.sum()
    inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    perimeter = area - inner.sum()
    return float(2 * area / max(perimeter, 1))


def normalize_width(crop: np.ndarray, target_at_20: float) -> np.ndarray:
    """Thicken thin strokes (pencil, fine pens) and thin fat ones (markers) toward the width the
    model was trained on, measured at the 20-px digit scale."""
    px_per_20 = max(crop.shape) / 20
    width = stroke_width(crop) / px_per_20
    radius = int(round((target_at_20 - width) / 2 * px_per_20))
    if radius >= 1 and width < 0.75 * target_at_20:
        return max_filter(crop, 2 * radius + 1)
    if radius <= -1 and width > 1.5 * target_at_20:
        return min_filter(crop, 2 * -radius + 1)
    return crop


@dataclass
class Garment:
    ink: np.ndarray  # float32 [h, w] 0..1, Fashion-MNIST polarity (dark garment -> bright), cropped
    box: tuple[int, int, int, int]  # (left, top, right, bottom) at work scale
    scale: float


def smooth_background(channel: np.ndarray, border: float = 0.04) -> np.ndarray:
    """A quadratic surface fitted (robustly, twice) to the frame's border band: a shop backdrop
    with a ramp or vignetting; the garment sits inside the frame."""
    h, w = channel.shape
    band = max(2, int(border * min(h, w)))
    ring = np.ones((h, w), bool)
    ring[band:-band, band:-band] = False
    ys, xs = np.nonzero(ring)
    ys, xs = ys[::3], xs[::3]  # a third of the ring fits the same six coefficients
    u, v = xs / w - 0.5, ys / h - 0.5
    design = np.stack([np.ones_like(u), u, v, u * u, v * v, u * v], 1)
    values = channel[ys, xs]
    keep = np.ones(len(values), bool)
    for _ in range(3):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        resid = values - design @ coef
        keep = np.abs(resid) < 2.5 * 1.4826 * np.median(np.abs(resid[keep])) + 2
    gy, gx = np.mgrid[0:h, 0:w]
    u, v = gx / w - 0.5, gy / h - 0.5
    return (coef[0] + coef[1] * u + coef[2] * v + coef[3] * u * u + coef[4] * v * v + coef[5] * u * v).astype(np.float32)


def find_garment(img: Image.Image) -> Garment | None:
    """The garment's silhouette and shading on a non-uniform backdrop, or None."""
    work, scale = to_work(img, GARMENT_SIDE)
    work = box_blur(work, 1)
    bg = np.stack([np.maximum(smooth_background(work[..., c]), 1.0) for c in range(work.shape[-1])], -1)
    ratio = work / bg
    lum = ratio.mean(-1)
    spread = ratio.max(-1) - ratio.min(-1) if work.shape[-1] > 1 else np.zeros_like(lum)
    edges = _gradient(lum)
    # a drop shadow: a neutral, smooth darkening of the backdrop (no hue change, no edges)
    shadow = (spread < 0.05) & (lum > 0.5) & (lum < 0.93) & (box_blur(edges, 2) < 0.02)
    differs = (np.abs(1 - lum) > 0.08) | (spread > 0.08)
    mask = differs & ~shadow
    parts = components(mask)
    if parts.n == 0:
        return None
    sizes = np.bincount(parts.labels.ravel(), minlength=parts.n + 1)[1:]
    biggest = int(np.argmax(sizes)) + 1
    if sizes[biggest - 1] < MIN_DIGIT_SIDE ** 2:
        return None
    keep = fill_holes(parts.labels == biggest)
    ys, xs = np.nonzero(keep)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Fashion-MNIST is the negated grey of a product shot on white: darkness against the lightest of
    # the backdrop and the garment itself (a white shirt on grey is lighter than its backdrop)
    white = max(1.0, float(np.percentile(lum[keep], 99)))
    darkness = np.clip(1 - lum / white, 0, 1)
    lightest = float(np.percentile(darkness[keep], 2))
    if lightest > DARK_GARMENT:  # a dark garment: its shading spans less than 0..1, stretch it back
        darkness = np.clip((darkness - lightest) / max(1 - lightest, 1e-3), 0, 1)
    floor = 0.04  # the silhouette stays visible where the garment is as light as white
    ink = np.where(keep, np.maximum(darkness, floor), 0)[top:bottom, left:right]
    return Garment(ink.astype(np.float32), (int(left), int(top), int(right), int(bottom)), scale)


def _gradient(a: np.ndarray) -> np.ndarray:
    """|d/dy| + |d/dx|: along an axis one pixel long nothing changes (np.gradient needs two)."""
    out = np.zeros_like(a)
    for axis in (0, 1):
        if a.shape[axis] > 1:
            out += np.abs(np.gradient(a, axis=axis))
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background not reachable from the frame's border becomes part of the mask."""
    labels = components(~mask).labels
    outside = np.unique(frame_edge(labels))
    return ~np.isin(labels, outside[outside > 0])
