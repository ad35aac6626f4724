"""Photo analysis: find the ink (or the garment) in a picture taken with a camera, whatever the light.

A photo is paper x light x ink: dividing by a local estimate of the paper's brightness removes ramps
and shadows (the estimate is bounded from below and above by closings and a median, so it follows a
shadow's edge where it lies); the ink is what is darker than its own neighbourhood (luminance: blue
pens and grey pencil both count). Printed ruled/grid lines are removed, then the strongest groups of
strokes are offered as candidates, best placed first, the ink cut again at other bars before
anything is refused: which of them is the digit is decided by the model that reads them
(demo/inference/candidates.py), not by a threshold here. Garments are separated
from a smooth (ramp, grey) background fitted on the frame's border, a drop shadow being the
neutral darkening beside them.

The image primitives (morphology, labelling, hole filling, resizing) are OpenCV's: measured at the
sizes used here (bench/imaging_libs.py), 3x (labelling) to 20-50x (closings) faster than
scipy.ndimage's, and the wide median only OpenCV makes affordable (1 ms against 5 s).
Everything runs on a copy at most WORK_SIDE pixels long.
"""
import copy
from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np
from PIL import Image

WORK_SIDE = 512  # analysis resolution: a digit 8% of a phone frame is still ~30 px tall here
GARMENT_SIDE = 256  # a garment fills a good part of its frame: ~100 px or more here
MIN_PHOTO_SIDE = 16  # px at work scale: a thinner picture (a strip, a few pixels) is no photo of a page
STROKE_SHARE = 0.03  # the paper estimate is at least the closing over this share of the frame: a phone
# photo's strokes and printed lines vanish...
LIGHT_SHARE = 0.3  # ... and is at most the median over this share: a close-up's or the pad's thicker strokes
# (its pen is 12% of the digit) are a minority of it, while shadows and the desk stay...
WIDE_SHARE = 0.13  # ... and at most the closing over this share, wider than a close-up's marker stroke
BRIGHT_PAPER = 0.13  # share of a photo within a quarter of its brightest: more is lit paper, not light ink
DETAIL_SHARE = 0.06  # polarity: details up to this share of the frame are strokes, whole; the gaps between
# them (a 0's loop) and a lit corner beside a hard shadow are wider and count only in part
MEDIAN_SHARE = 0.15  # the window (share of the frame) a photo's local light is the median of
MIN_DIGIT_SIDE = 10  # px at work scale: anything smaller is a speck, not a digit...
MIN_DIGIT_SHARE = 0.035  # ... and so is anything shorter than this share of the frame's long side (a grid
# line's stub or a pencil stroke's fragment, read as a confident 1): a digit 6% of a frame's short side is more
BORDER_MARGIN = 0.015  # ink this close to the frame's edge (share of its long side) touches the border
MIDDLE_MARGIN = 0.12  # the desk and the page's edges lie at most this share of the frame in from its border
MARKER_WIDTH = 2.0  # a stroke is thinned down to at most this many times the model's stroke width (normalize_width)
MAX_CANDIDATES = 3  # the model reads this many of the best-placed groups of strokes
DARK_GARMENT = 0.25  # even the garment's lightest parts are this dark: a dark garment, shading stretched
DARKEST_PAPER = 0.15  # ink is relative to its own paper down to a shadow this deep (share of the lit paper's
# brightness): a digit wholly in a deep shadow keeps its contrast; darker than that (the desk, an inverted
# picture) only noise is left to divide
STEP_SHARE = 0.015  # the band (share of the frame) along a step in the paper's light...
STEP_RATIO = 1.25  # ... where the light changes by this factor within the band: a shadow's or the page's edge
MAX_ELONGATION = 25  # a group's box diagonal squared over its area: a digit's strokes, a "1" included,
# stay under it; a long thin line (a shadow band's edge, at any angle) goes far over
PHONE_DIGIT = 0.12  # a phone photo's digit is at most this share of the frame's long side
SHADOW_BODY = 0.2  # a shadow filled in as one thick stroke is paper, at least this share of the lit paper's
# brightness (a marker's stroke is darker)...
DARKER_CORE = 0.9  # ... with some of it (3%) darker than this share of its brightness...
DARKER_INSIDE = 0.85  # ... and the digit found inside it at most this share...
INSIDE_SHARE = 0.25  # ... and at most this share of its box
ALONG_STEP = 0.9  # a group of thin ink this much inside such a band is the step's edge itself, not strokes
WEAK_SHARES = (0.3, 0.55, 0.15)  # the weak mask's bar (share of the strongest ink), then the ones tried where
# it finds nothing shaped like a digit: higher parts a digit from a shadow's edge, lower joins a faint one
GREY_BACKDROP = 1.1  # the garment's lightest part is this much lighter than its backdrop: a grey backdrop
MIN_INK = 0.15  # a digit's strokes are at least this much darker than their paper somewhere
LINE_SPAN = 0.6  # a ruled/grid line covers at least this share of the frame along its direction
LINE_WIDTH = 0.025  # ... and is at most this thick (share of the frame): thicker is a digit's stroke
LINE_SEARCHES = 12  # angles searched per family: a page in perspective has its lines at several
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


def to_work(img: Image.Image, side: int = 0, grey: bool = False) -> tuple[np.ndarray, float]:
    """-> float32 [H, W, C] (or [H, W] luminance with grey=True) 0..255, no longer than `side`
    (WORK_SIDE), and source pixels per work pixel. Luminance is taken before the resize: a third
    of the pixels to average."""
    if grey:
        a = np.asarray(img if img.mode == "L" else img.convert("L"))
    else:
        a = np.asarray(img if img.mode in ("L", "RGB") else img.convert("RGB"))
    scale = max(a.shape[:2]) / (side or WORK_SIDE)
    if scale > 1:
        size = (max(1, round(a.shape[1] / scale)), max(1, round(a.shape[0] / scale)))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    a = a.astype(np.float32)
    return (a if grey or a.ndim == 3 else a[..., None]), max(scale, 1.0)


def _rect(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))


def box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges repeated."""
    if radius < 1:
        return a
    # reshaped: OpenCV drops a trailing axis of length 1
    return cv2.blur(a, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE).reshape(a.shape)


def max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """Max over size x size (a boolean mask: dilated), edges repeated."""
    if a.dtype == np.bool_:
        return max_filter(a.view(np.uint8), size).astype(bool)
    return cv2.dilate(a, _rect(size), borderType=cv2.BORDER_REPLICATE)


def min_filter(a: np.ndarray, size: int) -> np.ndarray:
    return cv2.erode(a, _rect(size), borderType=cv2.BORDER_REPLICATE)


def quantize(a: np.ndarray) -> np.ndarray:
    """A 0..255 float picture -> uint8, rounded: half a grey level is far below any ink."""
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def morphology(a: np.ndarray, operation: int, size: int) -> np.ndarray:
    """Grey closing or opening of a 0..255 float picture over size x size, on its uint8 copy (the
    large windows here cost a quarter as much on bytes; half a grey level is far below any ink).
    Closing fills dark details narrower than the window, while steps (a shadow's or a page's edge)
    and ramps come out exactly as they went in."""
    return cv2.morphologyEx(quantize(a), operation, _rect(size), borderType=cv2.BORDER_REPLICATE).astype(np.float32)


def background(closed: np.ndarray) -> np.ndarray:
    """The paper's brightness under the local light, bounded from both sides. From below: `closed`,
    the lightly smoothed picture closed over STROKE_SHARE of the frame (small_closing: thin strokes
    and printed lines vanish; a shadow's edge stays exactly where it is). From above: the darker of
    the median over LIGHT_SHARE (thick strokes, a minority of its window, vanish too) and the closing over
    WIDE_SHARE (wider than a close-up's marker stroke). The median alone reaches across a shadow's
    or the desk's edge and lights its dark side, curved edges most, turning the shadow into ink;
    the wide closing alone lifts a soft shadow's curved foot: each bounds the other's error."""
    h, w = closed.shape
    # the light varies slowly: the wide windows at half size, a quarter of the (costliest) work
    half = cv2.resize(closed, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    median = cv2.medianBlur(half, _odd(LIGHT_SHARE * max(half.shape)))
    wide = cv2.morphologyEx(half, cv2.MORPH_CLOSE, _rect(_odd(WIDE_SHARE * max(half.shape))), borderType=cv2.BORDER_REPLICATE)
    light = cv2.resize(np.minimum(median, wide), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(closed, light).astype(np.float32)


def small_closing(channel: np.ndarray) -> np.ndarray:
    """The lightly smoothed picture (uint8) closed over STROKE_SHARE of the frame: a phone photo's
    strokes and printed lines filled with the paper around them."""
    return cv2.morphologyEx(quantize(box_blur(channel, 1)), cv2.MORPH_CLOSE, _rect(_odd(STROKE_SHARE * max(channel.shape))),
                            borderType=cv2.BORDER_REPLICATE)


def _odd(size: float) -> int:
    return max(3, int(size) | 1)


class Paper:
    """A photo's luminance at work scale, turned so the paper is the bright side, and the paper's
    brightness under the local light, each computed once, when first asked for: the clean-picture
    check and the ink map both start from them, and a drawing is told clean by its luminance
    alone (one_paper_level), without the light's estimate (1.3 ms of a 256 px JPEG's 3.9)."""

    def __init__(self, grey: np.ndarray, scale: float, flipped: bool):
        self.grey = grey  # float32 [H, W] 0..255
        self.scale = scale  # source pixels per work pixel
        self.flipped = flipped  # the picture was light on dark (grey is its negative)

    @cached_property
    def closed(self) -> np.ndarray:
        """uint8 [H, W]: small_closing(grey), the light closed over a stroke's width."""
        return small_closing(self.grey)

    @cached_property
    def level(self) -> np.ndarray:
        """float32 [H, W]: background(closed)."""
        return background(self.closed)

    def lit_by(self, level: np.ndarray) -> "Paper":
        """The same reading with another estimate of the paper's brightness."""
        other = copy.copy(self)
        other.level = level  # a cached_property yields to the instance's own value
        return other


def read_paper(img: Image.Image) -> Paper:
    """Luminance, not the most-contrasting channel: phone JPEGs halve the colour resolution, and a
    coloured pen's hue bleeds a halo around its strokes that luminance doesn't have (a blue or red
    pen is still 70-80% darker than paper in luminance)."""
    grey, scale = to_work(img, grey=True)
    flipped = dark_background(grey)
    return Paper(255 - grey if flipped else grey, scale, flipped)


def is_clean(paper: Paper) -> bool:
    """A drawing, a scan or a screenshot: even background and quiet paper. Those keep the plain
    recipe (nothing to normalize away), photos take the full analysis. A picture too thin to hold
    a page (a strip a few pixels wide) takes the plain recipe too."""
    if min(paper.grey.shape) < MIN_PHOTO_SIDE:
        return True
    return one_paper_level(paper.grey) or quiet_paper(paper.grey, paper.level)


def one_paper_level(grey: np.ndarray) -> bool:
    """A marker stroke wider than the closing darkens the local estimate; a noiseless picture whose
    pixels are paper, ink, or ink's anti-aliased edge is still clean. A photo of a page is not, even
    where its paper is quiet: a shadow or the desk leaves mid-tones far from any ink."""
    level = float(percentiles(grey[::2, ::2], [95])[0])
    if not quiet_paper(grey, np.full_like(grey, level)):
        return False
    darker = level - grey
    ink = darker >= CLEAN_INK * level
    if frame_edge(ink).mean() > BORDER_INK:
        return False  # a drawing's strokes stay inside its frame; a hard shadow or the desk runs along it
    near_ink = max_filter(ink, _odd(INK_EDGE_SHARE * max(grey.shape)))
    return float(((darker >= 8) & ~ink & ~near_ink).mean()) < 0.02


def frame_edge(a: np.ndarray) -> np.ndarray:
    """The pixels along the frame's four edges, in one row (the corners twice)."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def quiet_paper(grey: np.ndarray, bg: np.ndarray) -> bool:
    """Most pixels sit at the paper level `bg`, which is flat, with less noise than a camera makes."""
    if float(bg.max() - bg.min()) >= FLAT_BACKGROUND:
        return False
    distance = np.abs(grey[::2, ::2] - bg[::2, ::2])  # a quarter of the pixels tell the noise as well
    paper = distance < 8  # pixels at the paper's own level (not ink)
    return paper.mean() >= 0.3 and float(np.median(distance[paper])) < QUIET_PAPER


def dark_background(grey: np.ndarray) -> bool:
    """Light ink on dark paper (a blackboard, a white-on-black drawing): the far tail (the ink,
    however little of it) reaches further above the picture's median than below it."""
    sample = grey[::2, ::2]  # a quarter of the pixels: the same tails
    n = sample.size - 1
    lo, mid, hi = ranked_values(sample, np.array([n // 5000, n // 2, n - n // 5000], np.float64))
    return hi - mid > mid - lo


def ranked_values(a: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The values a sorted copy of `a`, a picture of whole grey levels (a photo's luminance, its
    light estimate), holds at `ranks` (0: the smallest; a fraction interpolates between neighbours,
    as np.percentile does), read off its histogram: exact, at a tenth of the cost of sorting a copy."""
    ends = np.cumsum(cv2.calcHist([a.astype(np.uint8)], [0], None, [256], [0, 256]).ravel())
    lo = np.floor(ranks)
    below = np.searchsorted(ends, lo, side="right")
    above = np.searchsorted(ends, np.minimum(lo + 1, ends[-1] - 1), side="right")
    return below + (above - below) * (ranks - lo)


def percentiles(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """np.percentile(a, qs) of a picture of whole grey levels, from ranked_values."""
    return ranked_values(a, np.asarray(qs, np.float64) / 100 * (a.size - 1))


def photo_polarity(paper: Paper) -> Paper:
    """A photo read as light on dark must also show its strongest light details (strokes) standing
    out of their surroundings more than its strongest dark ones; else it is dark ink after all. The
    tails alone took a page half in shadow on a dark desk for light ink on dark paper. Clean
    pictures keep the tails' verdict (their strokes and the gaps they enclose both reach full
    contrast: no tie-break here)."""
    if not paper.flipped:
        return paper
    sample = (255 - paper.grey)[::2, ::2]  # as taken
    if lit_paper(sample):
        return turned_over(paper)
    size = _odd(DETAIL_SHARE * max(sample.shape))
    if min(sample.shape) <= 2 * size:
        return paper  # too thin for the frame's edge to be left out: the tails' verdict stands
    inside = (slice(size, -size), slice(size, -size))  # a lit corner's tip beside a hard shadow is a thin light detail
    dark_details = (morphology(sample, cv2.MORPH_CLOSE, size) - sample)[inside]
    light_details = (sample - morphology(sample, cv2.MORPH_OPEN, size))[inside]
    if np.percentile(light_details, 99.9) > np.percentile(dark_details, 99.9) and lighter_details(sample):
        return paper
    return turned_over(paper)


def turned_over(paper: Paper) -> Paper:
    """A reading of light ink on dark paper turned over: the picture as taken, dark ink on light paper."""
    return Paper(255 - paper.grey, paper.scale, False)


def lit_paper(grey: np.ndarray) -> bool:
    """Much of the photo is about as bright as its brightest: that is lit paper (the tails took a
    page half in a hard shadow, on a dark desk, for a board); light ink is a minority of a board."""
    return float((grey >= 0.75 * np.percentile(grey, 99.5)).mean()) >= BRIGHT_PAPER


def lighter_details(grey: np.ndarray) -> bool:
    """Under the light a photo was taken in, do its details stand out lighter than their
    surroundings more than darker? Each pixel is taken relative to the median of a window of
    MEDIAN_SHARE of the frame: the median follows a shadow's edge, hard or soft, where it lies
    (a closing fills the foot of a soft one), and strokes, a minority of any window, vanish from it."""
    ratio = np.log((grey + 8) / (cv2.medianBlur(quantize(grey), _odd(MEDIAN_SHARE * max(grey.shape))) + 8))
    lo, hi = np.percentile(ratio, [0.05, 99.95])
    return hi > -lo


def ink_map(paper: Paper) -> np.ndarray:
    """-> float32 [H, W] 0..1: how much darker than its local paper each pixel is, lightly smoothed."""
    return box_blur(np.clip((paper.level - paper.grey) / paper_scale(paper), 0, 1), 1)


def paper_scale(paper: Paper) -> np.ndarray:
    """What a pixel's darkness is relative to: the local paper, but never a near-black one: dividing
    by a dark background (a deep shadow, an inverted picture) would turn its noise into ink."""
    if paper.flipped:  # light ink: its contrast is relative to the ink itself, (ink - board) / ink, which
        # the light cancels out of (chalk in a shadow is as much chalk); the board's noise stays small
        return np.maximum(255 - paper.grey, 2 * (255 - paper.level) + 16)
    return np.maximum(paper.level, DARKEST_PAPER * float(percentiles(paper.level[::2, ::2], [99])[0]) + 1.0)


@dataclass
class Components:
    labels: np.ndarray  # int32 [H, W]: 1..n, 0 background
    n: int
    top: np.ndarray  # [n] bounding boxes, bottom/right exclusive
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray
    area: np.ndarray  # [n] pixels


def components(mask: np.ndarray, connectivity: int = 8) -> Components:
    """Connected groups of a boolean mask with their boxes and areas."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask, np.uint8), connectivity=connectivity,
                                                           ltype=cv2.CV_32S)
    left, top, width, height, area = (stats[1:, i] for i in range(5))
    return Components(labels, n - 1, top, top + height, left, left + width, area)


def thick(mask: np.ndarray, size: int) -> np.ndarray:
    """The mask's ink that a size x size square fits inside (what an opening by it keeps)."""
    return cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, _rect(size)) > 0


def remove_lines(mask: np.ndarray) -> np.ndarray:
    """Printed ruled and grid lines, and page edges, out of a binary ink mask. Per family
    (near-horizontal, near-vertical), the angle within 30 degrees whose projection has the sharpest
    row; rows covering LINE_SPAN of the frame are lines, widened while their neighbours stay
    line-like. Repeated, up to LINE_SEARCHES times: a page in perspective has its lines and edges at
    several angles. Where a stroke crosses a line, the gap is filled back from the stroke on both
    sides."""
    out = mask.copy()
    # the ink searched: thick ink (the desk along the frame, a page edge with the desk beside it,
    # a marker's strokes) stays, but out of the search: else its rows win every angle tried, and the
    # ruled lines at other angles (a page in perspective) are never found
    ys, xs = (v.astype(np.float32) for v in np.nonzero(mask & ~thick(mask, _odd(LINE_WIDTH * max(mask.shape)) + 2)))
    for vertical in (False, True):
        for _ in range(LINE_SEARCHES):
            along, across, extent = (ys, xs, mask.shape[0]) if vertical else (xs, ys, mask.shape[1])
            if len(ys) < LINE_SPAN * extent:
                break
            counts, offset = _sharpest_projection(along, across)
            lines = counts >= LINE_SPAN * extent
            if not lines.any():
                break
            band = _thin_runs(_widen(lines, counts >= 0.15 * extent), LINE_WIDTH * extent)
            if not band.any():
                break
            on_line = band[offset]
            out[ys[on_line].astype(np.intp), xs[on_line].astype(np.intp)] = False
            ys, xs = ys[~on_line], xs[~on_line]
    removed = mask & ~out
    return out | _bridged(removed, out) if removed.any() else out


def _projection(along: np.ndarray, across: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    offset = (across - along * np.float32(np.tan(np.radians(degrees))) + np.float32(0.5)).astype(np.int32)
    offset -= offset.min()
    return np.bincount(offset), offset


def _sharpest_projection(along: np.ndarray, across: np.ndarray):
    """Coarse (3 degree) then fine (0.5 degree) search for the angle with the highest row, on every
    8th then every 4th ink pixel (a line's row stands out as well in a sample)."""
    coarse = _sharpest_angle(along[::8], across[::8], np.arange(-30, 31, 3.0))
    fine = _sharpest_angle(along[::4], across[::4], np.arange(coarse - 2, coarse + 2.1, 0.5))
    return _projection(along, across, fine)


def _sharpest_angle(along: np.ndarray, across: np.ndarray, degrees: np.ndarray) -> float:
    """The first of `degrees` whose projection has the highest row: every angle's rows counted in
    one bincount (one call per angle cost more in overhead than in counting)."""
    tangent = np.tan(np.radians(degrees)).astype(np.float32)[:, None]
    offset = (across[None, :] - along[None, :] * tangent + np.float32(0.5)).astype(np.int32)
    offset -= offset.min(axis=1, keepdims=True)
    width = int(offset.max()) + 1
    rows = np.bincount((offset + width * np.arange(len(degrees))[:, None]).ravel(), minlength=width * len(degrees))
    return float(degrees[int(np.argmax(rows.reshape(len(degrees), width).max(axis=1)))])


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
    kept = kept.view(np.uint8)

    def near(dy: int, dx: int) -> np.ndarray:
        """Kept ink within `reach` on one side: a one-sided line-shaped dilation."""
        kernel = np.zeros((2 * reach + 1, 2 * reach + 1), np.uint8)
        kernel[reach + dy * np.arange(1, reach + 1), reach + dx * np.arange(1, reach + 1)] = 1
        return cv2.dilate(kept, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return removed & ((near(1, 0) & near(-1, 0)) | (near(0, 1) & near(0, -1)))


def threshold(ink: np.ndarray, weak_share: float = WEAK_SHARES[0]) -> tuple[np.ndarray, float]:
    """-> (weak ink mask, strong level): the weak mask is anything clearly above the paper's noise
    and at least `weak_share` of the strongest ink, the strong level what the digit's own strokes
    reach. Both are relative to the strongest ink in the middle of the frame: the desk or a page
    edge along the border (often the darkest thing in a photo) would otherwise set the bar over a
    pencil digit."""
    sample = ink[::2, ::2]  # a quarter of the pixels: the same median and spread, a quarter of the sorting
    med = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - med))) + 1e-3
    h, w = ink.shape
    middle = ink[int(MIDDLE_MARGIN * h):h - int(MIDDLE_MARGIN * h), int(MIDDLE_MARGIN * w):w - int(MIDDLE_MARGIN * w)]
    peak = float(np.percentile(middle[::2, ::2], 99.9))
    low = max(med + 5 * sigma, weak_share * peak, 0.06)
    high = max(med + 8 * sigma, 0.55 * peak, MIN_INK)
    return ink > low, high


@dataclass
class Strokes:
    """The ink map cut into connected groups, with what ranks them as a digit."""
    ink: np.ndarray  # float32 [H, W] 0..1
    mask: np.ndarray  # bool [H, W]: ink, printed lines removed
    weak: np.ndarray  # bool [H, W]: ink, lines included
    parts: Components
    mass: np.ndarray  # [n] summed ink per group
    plausible: np.ndarray  # [n] bool: strong enough and shaped like (part of) a digit
    shaped: np.ndarray  # [n] bool: shaped like (part of) a digit, however faint
    inside: np.ndarray  # [n] bool: clear of the frame's border


def room_needed(work_shape: tuple[int, int], digit: bool) -> int:
    """The short side (px at work scale) below which the analysis can find nothing: a digit of
    MIN_DIGIT_SIDE clear of the border margin, or a garment as big with smooth_background's band
    of backdrop on both sides."""
    if digit:
        return MIN_DIGIT_SIDE + 2 * (max(1, int(BORDER_MARGIN * max(work_shape))) + 1)
    return MIN_DIGIT_SIDE + 2 * 2


def strokes(ink: np.ndarray, steps: np.ndarray, weak_share: float = WEAK_SHARES[0]) -> Strokes:
    """A photo's ink map (one polarity) -> its ink in ranked, connected groups; `steps`
    (light_steps) where the light itself steps."""
    weak, strong = threshold(ink, weak_share)
    mask = remove_lines(weak)
    parts = components(mask)
    on = np.flatnonzero(mask)  # the groups' pixels: a few percent of the frame
    labels, values = parts.labels.ravel()[on], ink.ravel()[on]
    mass = np.bincount(labels, weights=values, minlength=parts.n + 1)[1:]
    strong_enough = np.bincount(labels[values >= strong], minlength=parts.n + 1)[1:] > 0  # a pixel reaches it
    h, w = mask.shape
    tall, wide = parts.bottom - parts.top, parts.right - parts.left
    longest, shortest = np.maximum(tall, wide), np.minimum(tall, wide)
    # a digit's box is at most ~10 times longer than wide (a "1"); longer is an edge or a line
    shaped = (longest >= 3) & (longest <= 10 * shortest) & (tall <= 0.8 * h) & (wide <= 0.8 * w)
    shaped &= (tall.astype(np.float32) ** 2 + wide.astype(np.float32) ** 2 <= MAX_ELONGATION * parts.area)
    shaped &= ~along_steps(parts, mask, steps)
    margin = max(1, int(BORDER_MARGIN * max(h, w)))
    inside = (parts.top > margin) & (parts.left > margin) & (parts.bottom < h - margin) & (parts.right < w - margin)
    return Strokes(ink, mask, weak, parts, mass, shaped & strong_enough, shaped, inside)


def ranked_seeds(found: Strokes) -> np.ndarray:
    """Plausible groups, most digit-like place first: the most ink, near the centre (people aim at
    what they photograph: ink far from it counts up to half less)."""
    parts = found.parts
    h, w = found.mask.shape
    off_centre = np.hypot((parts.top + parts.bottom) / h - 1, (parts.left + parts.right) / w - 1) / np.sqrt(2)
    order = np.argsort(-found.mass * (1 - 0.5 * off_centre), kind="stable")
    return order[found.plausible[order]]


def grow(found: Strokes, seed: int) -> tuple[list[int], list[int]]:
    """A seed group and its neighbours within a third of the digit's size (broken strokes) ->
    (members, box as [top, left, bottom, right]). A seed inside the frame takes only neighbours
    inside it: the page's edge and the desk stay out of the digit."""
    parts = found.parts
    joinable = found.plausible & (found.mass >= 0.03 * found.mass[seed]) & (found.inside | ~found.inside[seed])
    box = [parts.top[seed], parts.left[seed], parts.bottom[seed], parts.right[seed]]
    chosen, grown = [seed], True
    while grown:
        grown = False
        reach = 0.35 * max(box[2] - box[0], box[3] - box[1])
        for i in np.flatnonzero(joinable):
            gap_y = max(box[0] - parts.bottom[i], parts.top[i] - box[2], 0)
            gap_x = max(box[1] - parts.right[i], parts.left[i] - box[3], 0)
            if i not in chosen and max(gap_y, gap_x) <= reach:
                chosen.append(i)
                box = [min(box[0], parts.top[i]), min(box[1], parts.left[i]),
                       max(box[2], parts.bottom[i]), max(box[3], parts.right[i])]
                grown = True
    return sorted(chosen), [int(v) for v in box]


def digit_candidates(paper: Paper) -> list[Found]:
    """The groups of strokes in a photo (read_paper's analysis) that could be the handwritten
    digit, best placed first, at most MAX_CANDIDATES; [] when nothing plausible is there. A photo
    read as light ink on dark (a board, or a page mostly in shadow) is read the other way too, its
    candidates after: which reading holds a digit is the model's to say. A shadow narrower than
    the wide windows (a pen's band, a corner's wedge) is filled in by them as one thick stroke with
    the digit inside it: where nothing is found, or where the best candidate is such a shadow
    (shadow_like) with the digit inside it (digit_inside), the light is taken as the small closing
    alone."""
    reading = photo_polarity(paper)
    readings = [reading, turned_over(reading)] if reading.flipped else [reading]
    found = [found for r in readings for found in _reading_candidates(r)]
    if found and (reading.flipped or not shadow_like(found[0], reading)):
        return found
    closer = _reading_candidates(reading.lit_by(reading.closed.astype(np.float32)))
    if found and closer and digit_inside(found[0], closer[0], reading):
        return closer
    return found or closer


def shadow_like(found: Found, reading: Paper) -> bool:
    """Could `found` be a shadow the wide windows filled in as one thick stroke, a digit inside it?
    Longer than a phone photo's digit can be (16% of a 3:4 frame's short side), as light as paper
    in shadow (a marker's stroke, a close-up's pen, are darker), with darker pixels in it."""
    left, top, right, bottom = found.box
    if max(right - left, bottom - top) < PHONE_DIGIT * max(reading.grey.shape):
        return False
    body = _pixels(found, reading.grey)
    middle = float(np.median(body))
    return (middle >= SHADOW_BODY * float(np.percentile(reading.level[::4, ::4], 99))
            and float(np.percentile(body, 3)) < DARKER_CORE * middle)


def digit_inside(found: Found, inside: Found, reading: Paper) -> bool:
    """Is `inside` (a candidate found against the light closed over a stroke's width) the digit
    within the shadow `found`: inside its box, a small part of it, and darker than its body?"""
    (left, top, right, bottom), (l, t, r, b) = found.box, inside.box
    within = left <= l and top <= t and r <= right and b <= bottom
    small = (r - l) * (b - t) <= INSIDE_SHARE * (right - left) * (bottom - top)
    darker = np.median(_pixels(inside, reading.grey)) < DARKER_INSIDE * np.median(_pixels(found, reading.grey))
    return bool(within and small and darker)


def _pixels(found: Found, grey: np.ndarray) -> np.ndarray:
    """The grey levels of a candidate's strokes."""
    left, top, right, bottom = found.box
    return grey[around(top, left, bottom, right)][found.ink > 0.5]


def around(top: int, left: int, bottom: int, right: int) -> tuple[slice, slice]:
    """A box plus a pixel on each side (clipped at the frame's top and left): where a candidate's
    ink is cut out."""
    return slice(max(0, top - 1), bottom + 1), slice(max(0, left - 1), right + 1)


def _reading_candidates(reading: Paper) -> list[Found]:
    """One reading's candidates from the first of these kinds of groups that has any: clear of the
    frame's border and as strong as the strongest ink around; clear of it, however faint (a pencil
    digit beside a darker shadow's edge); then the same on the border (the desk's grain, the page's
    edge: a desk's streak reads as a confident 1). Where no cut of the ink (_cuts) makes a group of
    any kind, the next is tried. The model, not one bar, decides among what is found."""
    for found in _cuts(reading):
        for kind in (found.plausible & found.inside, found.shaped & found.inside, found.plausible, found.shaped):
            candidates = _candidates(replace(found, plausible=kind), reading.scale)
            if candidates:
                return candidates
    return []


def _cuts(reading: Paper):
    """The ink cut into groups at the weak bar of WEAK_SHARES, then (each only if the last found
    nothing) at the others: a higher one parts a digit from a shadow's edge, a lower one joins a
    faint digit's pieces."""
    ink, steps = ink_map(reading), light_steps(reading.closed)
    for weak_share in WEAK_SHARES:
        yield strokes(ink, steps, weak_share)


def light_steps(closed: np.ndarray) -> np.ndarray:
    """bool [H, W]: the band along a step in the paper's own light (`closed`: strokes filled by the
    small closing): a hard shadow's edge, the page's against the desk. There the light estimate
    leaves a thin sliver of false ink on the dark side, and a phone's sharpening a dark halo line."""
    size = _rect(_odd(STEP_SHARE * max(closed.shape)))
    hi, lo = cv2.dilate(closed, size), cv2.erode(closed, size)
    return hi.astype(np.float32) > STEP_RATIO * lo + 8


def along_steps(parts: Components, mask: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """[n] bool: groups whose thin ink lies along a step of the light (light_steps): the rim a
    round shadow leaves, a sharpening halo. A stroke crossing the step keeps most of its ink off
    it; strokes wider than the band (a close-up's marker) are not thin."""
    thin = mask & ~thick(mask, _odd(STEP_SHARE * max(mask.shape)))
    on_step = np.bincount(parts.labels[thin & steps], minlength=parts.n + 1)[1:]
    return on_step > ALONG_STEP * parts.area


def _candidates(found: Strokes, scale: float) -> list[Found]:
    """The best-placed seeds grown into digits (broken strokes joined), then the seeds alone: a
    digit written beside a smudge or a scribble joins it when grown."""
    groups, alone = [], []
    shortest = max(MIN_DIGIT_SIDE, MIN_DIGIT_SHARE * max(found.mask.shape))
    for seed in ranked_seeds(found)[:MAX_CANDIDATES]:
        members, box = grow(found, int(seed))
        for group, candidates in (((members, box), groups), (([int(seed)], _box_of(found.parts, int(seed))), alone)):
            side = max(group[1][2] - group[1][0], group[1][3] - group[1][1])
            if side >= shortest and all(group[0] != g[0] for g in groups + alone):
                candidates.append(group)
    return [cut_out(found, members, box, scale) for members, box in (groups + alone)[:MAX_CANDIDATES + 1]]


def _box_of(parts: Components, i: int) -> list[int]:
    return [int(parts.top[i]), int(parts.left[i]), int(parts.bottom[i]), int(parts.right[i])]


def cut_out(found: Strokes, members: list[int], box: list[int], scale: float) -> Found:
    """The chosen groups' ink (their soft edges included, printed lines left out), cropped to
    their box plus a pixel, its strokes' level brought to 1."""
    top, left, bottom, right = box
    window = around(top, left, bottom, right)
    chosen = np.zeros(found.parts.n + 1, bool)
    chosen[np.asarray(members) + 1] = True
    keep = max_filter(chosen[found.parts.labels[window]], 3)
    crop = np.where(keep & (found.mask[window] | ~found.weak[window]), found.ink[window], 0)
    level = np.percentile(crop[crop > 0], 90) if (crop > 0).any() else 1.0
    return Found(np.clip(crop / max(level, 1e-3), 0, 1).astype(np.float32), (left, top, right, bottom), scale)


def stroke_width(patch: np.ndarray) -> float:
    """Mean stroke width in pixels of a bright-on-dark patch: area over half the perimeter
    (a long stroke of width w has area w*L and perimeter ~2L)."""
    ink = patch > 0.5 * patch.max()
    area = ink.sum()
    inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    perimeter = area - inner.sum()
    return float(2 * area / max(perimeter, 1))


def normalize_width(crop: np.ndarray, target_at_20: float) -> np.ndarray:
    """Thicken thin strokes (pencil, fine pens) toward the width the model was trained on, measured
    at the 20-px digit scale; thin a marker's only down to MARKER_WIDTH times it. Eroding a broad
    stroke all the way down cut its thin parts first: a 0 came out a broken hairline ring that the
    models read as a 7."""
    px_per_20 = max(crop.shape) / 20
    width = stroke_width(crop) / px_per_20
    grow = int(round((target_at_20 - width) / 2 * px_per_20))
    if grow >= 1 and width < 0.75 * target_at_20:
        return max_filter(crop, 2 * grow + 1)
    shrink = int(round((width - MARKER_WIDTH * target_at_20) / 2 * px_per_20))
    return min_filter(crop, 2 * shrink + 1) if shrink >= 1 else crop


@dataclass
class Garment:
    readings: list[np.ndarray]  # float32 [h, w] 0..1, Fashion-MNIST polarity (dark garment -> bright),
    # cropped: the garment's shading read against each white it may have been shot on, likeliest first
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
    smooth = box_blur(work, 1)  # the silhouette from a lightly smoothed copy: the camera's noise stays out of it
    bg = np.stack([np.maximum(smooth_background(smooth[..., c]), 1.0) for c in range(work.shape[-1])], -1)
    ratio = smooth / bg
    lum = ratio.mean(-1)
    spread = ratio.max(-1) - ratio.min(-1) if work.shape[-1] > 1 else np.zeros_like(lum)
    differs = (np.abs(1 - lum) > 0.08) | (spread > 0.08)
    stands_out = differs & ~drop_shadow(differs, lum, spread)
    parts = components(stands_out)
    if parts.n == 0 or parts.area.max() < MIN_DIGIT_SIDE ** 2:
        return None
    keep = fill_holes(parts.labels == int(np.argmax(parts.area)) + 1)
    ys, xs = np.nonzero(keep)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # the shading from the unsmoothed copy: Fashion-MNIST's items are sharp (sharpened after resizing)
    readings = garment_readings((work / bg).mean(-1), keep, stands_out)
    return Garment([r[top:bottom, left:right] for r in readings], (int(left), int(top), int(right), int(bottom)), scale)


def drop_shadow(differs: np.ndarray, lum: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Where what differs from the backdrop is a drop shadow: a neutral darkening of it. No test on
    edges: the shadow's own edge and its rim along the garment have them, and a rim left in widened
    the garment's box and outline. A shadow is a rim beside a garment, smaller than it: when most of
    what differs is neutral, that is a grey or white garment (no colour to tell it from its shadow)."""
    shadow = differs & (spread < 0.05) & (lum > 0.5) & (lum < 0.93)
    if np.count_nonzero(shadow) > np.count_nonzero(differs) / 2:
        return np.zeros_like(shadow)
    return shadow


def garment_readings(lum: np.ndarray, keep: np.ndarray, stands_out: np.ndarray) -> list[np.ndarray]:
    """Fashion-MNIST is the negated grey of a product shot on white: darkness against the lightest of
    the backdrop and the garment itself (a white shirt on grey is lighter than its backdrop). Where
    that white is in doubt, each plausible one is a reading, and the model's answers are blended
    (demo/inference/candidates.py): a dark garment, or a dimly lit light one? A garment lighter than a
    grey backdrop: is its lightest part white, or the backdrop? Best reading first."""
    white = max(1.0, float(np.percentile(lum[keep], 99)))
    darkness = np.clip(1 - lum / white, 0, 1)
    readings = [darkness]
    # the garment's lightest part, away from its outline (there it blends into the backdrop)
    inner = min_filter(keep.view(np.uint8), 5).astype(bool)
    lightest = float(np.percentile(darkness[inner if inner.sum() > 20 else keep], 2))
    if lightest > DARK_GARMENT:  # a dark garment: its shading spans less than 0..1, stretch it back
        readings.insert(0, np.clip((darkness - lightest) / max(1 - lightest, 1e-3), 0, 1))
    if white > GREY_BACKDROP:
        readings.append(np.clip(1 - lum, 0, 1))
    # the silhouette stays visible where the garment is as light as white, but the backdrop seen
    # through it (between a sandal's straps, inside a bag's handle) is background, as in the dataset
    floor = 0.04
    return [np.where(keep & stands_out, np.maximum(r, floor), 0).astype(np.float32) for r in readings]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background not reachable from outside the frame becomes part of the mask."""
    filled = np.pad(mask, 1).astype(np.uint8)
    cv2.floodFill(filled, None, (0, 0), 2)  # 4-connected, from the ring added around the frame
    return filled[1:-1, 1:-1] != 2
