"""A held-out set of photos of clothes as shops and people take them, written apart from the photo pipeline.

Each photo is a Fashion-MNIST *test* item laid on a backdrop and photographed. The plain base: a
white backdrop, the garment centred, even light, an 800-2000 px frame, JPEG 85. Each named condition
adds one effect to that base; "mixed" draws several. Fashion-MNIST is the negated grey of a product
shot on white, so an item pixel v is a garment brightness of about 1 - v/255 relative to white; the
item is upscaled smoothly, tinted, and its silhouette (where v is above the background's zero) cut
out onto the backdrop. Light is mixed in linear light (reflectance x illumination), then gamma,
optics, sensor noise and JPEG. Everything is drawn from --seed alone.

    python -m bench.shop_heldout --seed 0 --per-condition 20 --out /tmp/shop
    python -m bench.shop_heldout --seed 0 --per-condition 20 --url http://127.0.0.1:7860 --models fashion-cnn,fashion-resnet
"""
import colorsys
import io
import math
import sys
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from bench.photo_heldout import act, parse, scene_for, smooth_noise, to_linear
from demo.contract.datasets import dataset_info, load_split

CONDITIONS = ("plain", "grey_backdrop", "coloured_backdrop", "ramp_light", "vignetting", "drop_shadow",
              "dark_garment", "light_garment", "off_centre", "tilt", "phone_frame", "jpeg", "noise", "blur",
              "mixed")
LABELS = dataset_info("fashion").labels
ASPECTS = ((4, 3), (3, 2), (1, 1), (5, 4), (16, 9))
BASE_LONG_SIDE = (800, 2000)
PHONE_LONG_SIDE = (2400, 4000)
WORK_LONG_SIDE = 1600  # light and optics are worked out at most this size: the 28x28 item holds no finer detail
GAMMA = 2.2
WHITE = 0.9  # a white sweep's reflectance; the camera's exposure maps it near the top of the range
SILHOUETTE_LEVEL = 6 / 255  # Fashion-MNIST's background is 0; a few units above it is cloth's edge
MIN_PART_PIXELS = 3


@dataclass(frozen=True)
class Scene:
    frame: tuple[int, int]        # width, height
    garment_share: float          # the item's longer side over the frame's short side
    centre: tuple[float, float]   # the garment's centre as a share of the frame's width and height
    tilt_deg: float
    backdrop: tuple               # display colour 0-1
    tint: tuple                   # the garment's dye, multiplied into its shading
    garment_gain: float           # the garment's linear reflectance scale (dark cloth < 1)
    garment_darkness: float       # the item's darkness scale (pale cloth < 1)
    ramp: tuple[float, float]     # brightness gradient across the frame (strength, direction in radians)
    vignette: float               # light lost in the corners
    shadow: tuple                 # () or (dx, dy, softness, strength), lengths as shares of the garment
    defocus: float                # Gaussian sigma as a share of the garment's size
    noise_sigma: float            # sensor noise at mid grey, 0-255 units
    exposure: float
    jpeg_quality: int


def frame_size(rng, long_range) -> tuple[int, int]:
    long_side = int(rng.integers(long_range[0], long_range[1] + 1))
    a, b = ASPECTS[rng.integers(len(ASPECTS))]
    short_side = round(long_side * b / a)
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def random_tint(rng) -> tuple:
    """A dye: a random hue at a modest saturation, most garments only lightly coloured."""
    hue, saturation = rng.uniform(0, 1), rng.uniform(0, 0.45) ** 1.5
    return colorsys.hsv_to_rgb(hue, saturation, 1.0)


def base_scene(rng) -> Scene:
    return Scene(frame=frame_size(rng, BASE_LONG_SIDE), garment_share=rng.uniform(0.6, 0.85),
                 centre=(0.5, 0.5), tilt_deg=0.0, backdrop=(1.0, 1.0, 1.0), tint=random_tint(rng),
                 garment_gain=1.0, garment_darkness=1.0, ramp=(0.0, 0.0), vignette=0.0, shadow=(),
                 defocus=rng.uniform(0.001, 0.003), noise_sigma=rng.uniform(1.0, 2.5),
                 exposure=rng.uniform(0.97, 1.05), jpeg_quality=85)


def pastel(rng) -> tuple:
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.12, 0.3), rng.uniform(0.85, 0.96))


def anywhere(rng, share: float, frame) -> tuple[float, float]:
    """A centre that keeps a garment of this share of the short side (at any tilt up to ~15 deg) in the frame."""
    width, height = frame
    half = 0.62 * share * min(width, height)  # a 15 deg tilt widens a square garment to 0.61 of its side
    return tuple(float(rng.uniform(half / size, 1 - half / size)) for size in (width, height))


def off_centre(scene: Scene, rng) -> dict:
    share = rng.uniform(0.4, 0.7)
    return dict(garment_share=share, centre=anywhere(rng, share, scene.frame))


def phone_frame(scene: Scene, rng) -> dict:
    frame, share = frame_size(rng, PHONE_LONG_SIDE), rng.uniform(0.3, 0.6)
    return dict(frame=frame, garment_share=share, centre=anywhere(rng, share, frame))


def drop_shadow(rng) -> tuple:
    """A soft shadow cast down and to one side (a light above and in front of the garment)."""
    angle = rng.uniform(0.1, 0.9) * math.pi  # image y grows downwards
    distance = rng.uniform(0.04, 0.1)
    return (distance * math.cos(angle), distance * math.sin(angle), rng.uniform(0.015, 0.05), rng.uniform(0.4, 0.65))


def grey(level: float) -> tuple:
    return (level, level, level)


def with_effect(scene: Scene, effect: str, rng) -> Scene:
    """The scene with one condition's effect on top."""
    changes = {
        "grey_backdrop": lambda: dict(backdrop=grey(rng.uniform(0.45, 0.7))),
        "coloured_backdrop": lambda: dict(backdrop=pastel(rng)),
        "ramp_light": lambda: dict(ramp=(rng.uniform(0.25, 0.5), rng.uniform(0, 2 * math.pi))),
        "vignetting": lambda: dict(vignette=rng.uniform(0.35, 0.6)),
        "drop_shadow": lambda: dict(shadow=drop_shadow(rng)),
        "dark_garment": lambda: dict(garment_gain=rng.uniform(0.08, 0.25)),
        "light_garment": lambda: dict(garment_darkness=rng.uniform(0.1, 0.2), backdrop=grey(rng.uniform(0.6, 0.72)),
                                      tint=colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.1), 1.0)),
        "off_centre": lambda: off_centre(scene, rng),
        "tilt": lambda: dict(tilt_deg=rng.choice((-1, 1)) * rng.uniform(5, 15)),
        "phone_frame": lambda: phone_frame(scene, rng),
        "jpeg": lambda: dict(jpeg_quality=int(rng.integers(60, 81))),
        "noise": lambda: dict(noise_sigma=rng.uniform(6.0, 12.0), exposure=rng.uniform(0.7, 0.9)),
        "blur": lambda: dict(defocus=rng.uniform(0.006, 0.015)),
    }
    return replace(scene, **changes[effect]())


def draw_scene(rng, condition: str) -> Scene:
    groups = (("grey_backdrop", "coloured_backdrop", "light_garment"), ("ramp_light",), ("vignetting",),
              ("drop_shadow",), ("dark_garment",), ("off_centre", "phone_frame"), ("tilt",), ("jpeg",),
              ("noise",), ("blur",))
    scene = scene_for(rng, condition, base_scene, with_effect, groups, 0.4)
    if condition == "mixed" and scene.garment_gain < 1 and scene.garment_darkness < 1:  # pale is not also dark
        scene = replace(scene, garment_gain=1.0)
    return scene


# --- the garment's layer ---------------------------------------------------------------------------

def item_extent(item: np.ndarray) -> float:
    """The longer side of the item's non-background box, in item pixels."""
    rows, cols = np.nonzero(item > 10)
    return float(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))


def item_coordinates(scene: Scene, item: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each working pixel, where it falls on the 28x28 item (rotated, scaled, centred)."""
    width, height = size
    pixels_per_item_px = scene.garment_share * min(width, height) / item_extent(item)
    rows, cols = np.nonzero(item > 10)
    item_centre = ((cols.min() + cols.max()) / 2, (rows.min() + rows.max()) / 2)
    x = np.arange(width, dtype=np.float32)[None, :] + 0.5 - scene.centre[0] * width
    y = np.arange(height, dtype=np.float32)[:, None] + 0.5 - scene.centre[1] * height
    angle = math.radians(scene.tilt_deg)
    u = (math.cos(angle) * x + math.sin(angle) * y) / pixels_per_item_px + item_centre[0]
    v = (-math.sin(angle) * x + math.cos(angle) * y) / pixels_per_item_px + item_centre[1]
    return u, v


def silhouette_of(value: np.ndarray) -> np.ndarray:
    """The cloth's pixels: above the background's zero, without the stray specks a product cut-out leaves."""
    cloth = value > SILHOUETTE_LEVEL
    parts, count = ndimage.label(cloth)
    sizes = ndimage.sum(cloth, parts, range(1, count + 1))
    return np.isin(parts, 1 + np.flatnonzero(sizes >= MIN_PART_PIXELS))


def unmix(item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The item's coverage and the cloth's own darkness, 28x28. An edge pixel of the product shot is
    cloth and white mixed (v = coverage x darkness): its darkness is taken from the garment pixels just
    inside, its coverage is what is left. The darkness is carried past the edge to the nearest cloth
    pixel, so the smooth upscale brings no pale rim in."""
    value = item.astype(np.float32) / 255
    silhouette = silhouette_of(value)
    inside = ndimage.binary_erosion(silhouette, np.ones((3, 3), bool), border_value=0).astype(np.float32)
    weight = ndimage.uniform_filter(inside, 3, mode="constant")
    beside = ndimage.uniform_filter(value * inside, 3, mode="constant") / np.maximum(weight, 1e-6)
    darkness = np.where((inside == 0) & (weight > 0), np.maximum(value, beside), value)
    coverage = np.where(silhouette, np.clip(value / np.maximum(darkness, 1e-6), 0, 1), 0)
    nearest = ndimage.distance_transform_edt(~silhouette, return_distances=False, return_indices=True)
    return coverage.astype(np.float32), darkness[tuple(nearest)].astype(np.float32)


def upscale(field: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """field (28x28, pixel centres at .5) at item coordinates (u, v), smoothly: a half-pixel blur
    first, so the cubic spline shows no 28x28 staircase."""
    smooth = ndimage.gaussian_filter(np.pad(field, 4, mode="edge"), 0.45)
    return ndimage.map_coordinates(smooth, [v - 0.5 + 4, u - 0.5 + 4], order=3, mode="nearest")


def crisp_edge(coverage: np.ndarray) -> np.ndarray:
    """A cloth edge one pixel wide where the smooth coverage crosses one half, from its own slope."""
    gy, gx = np.gradient(coverage)
    slope = np.maximum(np.hypot(gx, gy), 1e-4)
    return np.clip((coverage - 0.5) / slope + 0.5, 0, 1)


def garment_layer(scene: Scene, item: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The garment's coverage (0-1) and darkness (0-1, the item's own shading) at each working pixel."""
    u, v = item_coordinates(scene, item, size)
    coverage, darkness = unmix(item)
    outside = (u < -1) | (u > 29) | (v < -1) | (v > 29)
    edge = np.where(outside, 0, crisp_edge(upscale(coverage, u, v)))
    return edge, np.clip(upscale(darkness, u, v), 0, 1)


def reflectance(scene: Scene, rng, item: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Linear reflectance of the garment on its backdrop, with the drop shadow if any."""
    width, height = size
    coverage, darkness = garment_layer(scene, item, size)
    brightness = 1 - np.clip(darkness * scene.garment_darkness, 0, 1)
    weave = 1 + 0.015 * smooth_noise(rng, (height, width), max(2.0, min(size) / 300))
    garment = to_linear(brightness[..., None] * np.asarray(scene.tint, np.float32)) * (WHITE * scene.garment_gain)
    garment = garment * weave[..., None]
    sweep = 1 + 0.006 * smooth_noise(rng, (height, width), min(size) / 40)
    backdrop = to_linear(scene.backdrop) * WHITE * sweep[..., None]
    if scene.shadow:
        backdrop = backdrop * shadow_factor(scene, coverage)[..., None]
    return coverage[..., None] * garment + (1 - coverage[..., None]) * backdrop


def shadow_factor(scene: Scene, coverage: np.ndarray) -> np.ndarray:
    """The light the garment's offset, blurred silhouette keeps off the backdrop."""
    dx, dy, softness, strength = scene.shadow
    garment_px = scene.garment_share * min(coverage.shape)
    shifted = ndimage.shift(coverage, (dy * garment_px, dx * garment_px), order=1, mode="constant")
    return 1 - strength * ndimage.gaussian_filter(shifted, softness * garment_px)


# --- light and camera ------------------------------------------------------------------------------

def illumination(scene: Scene, rng, size: tuple[int, int]) -> np.ndarray:
    """Exposure, the ramp and vignetting; white balance per channel, nearly neutral."""
    width, height = size
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    strength, direction = scene.ramp
    along = (x * math.cos(direction) + y * math.sin(direction)) / math.sqrt(2)  # -1..1 corner to corner
    light = (1 + strength * along) * (1 - scene.vignette * (x * x + y * y) / 2)
    balance = 1 + rng.uniform(-0.01, 0.01, 3).astype(np.float32)
    return scene.exposure * light[..., None] * balance


def to_display(linear: np.ndarray) -> np.ndarray:
    return (np.clip(linear, 0, 1) ** (1 / GAMMA) * 255 + 0.5).astype(np.uint8)


def sensor_noise(rng, image: Image.Image, sigma: float) -> Image.Image:
    """Shot noise, stronger where bright, mostly in luma with a little colour."""
    pixels = np.asarray(image).astype(np.float32)
    scale = sigma * (0.5 + 0.5 * np.sqrt(pixels.mean(axis=-1, keepdims=True) / 128))
    noise = rng.standard_normal(pixels.shape[:2] + (1,), dtype=np.float32)
    noise = noise + 0.3 * rng.standard_normal(pixels.shape, dtype=np.float32)
    return Image.fromarray(np.clip(pixels + noise * scale + 0.5, 0, 255).astype(np.uint8))


def render_photo(scene: Scene, item: np.ndarray, rng) -> bytes:
    width, height = scene.frame
    work = min(1.0, WORK_LONG_SIDE / max(width, height))
    size = (round(width * work), round(height * work))
    linear = reflectance(scene, rng, item, size) * illumination(scene, rng, size)
    image = Image.fromarray(to_display(linear))
    sigma = scene.defocus * scene.garment_share * min(size)
    image = image.filter(ImageFilter.GaussianBlur(sigma))
    if image.size != scene.frame:
        image = image.resize(scene.frame, Image.Resampling.BICUBIC)
    image = sensor_noise(rng, image, scene.noise_sigma)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=scene.jpeg_quality, subsampling=2)
    return out.getvalue()


# --- the set ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Photo:
    condition: str
    label: str  # the class name, as /api/classify answers it
    fashion_index: int
    jpeg: bytes

    @property
    def source(self) -> str:
        return f"Fashion-MNIST test #{self.fashion_index}"

    @property
    def label_number(self) -> int:
        return LABELS.index(self.label)

    @property
    def test_index(self) -> int:
        return self.fashion_index


def iter_photos(seed: int, per_condition: int, conditions=CONDITIONS):
    """Photos one at a time; classes cycle per condition. Each photo draws from its own
    (seed, condition, number) stream, so a subset of conditions or a smaller per_condition gives the
    same photos."""
    images, labels = load_split("fashion", "test")
    by_label = [np.flatnonzero(labels == k) for k in range(len(LABELS))]
    for condition in conditions:
        ci = CONDITIONS.index(condition)
        for number in range(per_condition):
            rng = np.random.default_rng([seed, ci, number])
            label = (number + ci) % len(LABELS)
            index = int(rng.choice(by_label[label]))
            scene = draw_scene(rng, condition)
            yield Photo(condition, LABELS[label], index, render_photo(scene, images[index], rng))


def main(argv=None) -> int:
    args, conditions = parse(argv, "bench.shop_heldout", __doc__, CONDITIONS, "fashion-cnn")
    photos = list(iter_photos(args.seed, args.per_condition, conditions))
    act(args, photos, conditions, f"held-out shop photos of clothes, seed {args.seed}, {args.per_condition} per condition",
        "fashion")
    return 0


if __name__ == "__main__":
    sys.exit(main())
