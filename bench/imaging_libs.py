"""What OpenCV buys the photo analysis over scipy.ndimage: the primitives demo/imaging/photo.py runs
on every photo, at the sizes it runs them, timed with each library on the same smooth 512x384 picture.

    python -m bench.imaging_libs
"""
import argparse
import time

import cv2
import numpy as np
from scipy import ndimage

from bench.report import print_table


def timed(work, repeat: int) -> float:
    """Median ms of `repeat` runs after one warm-up."""
    work()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return float(np.median(runs))


def primitives(picture: np.ndarray) -> list[tuple[str, object, object]]:
    """(what, OpenCV's call, scipy.ndimage's call) at photo.py's sizes: the small closing at work
    scale, the wide closing and the median at half scale, the labelled groups with boxes and areas."""
    half = cv2.resize(picture, (picture.shape[1] // 2, picture.shape[0] // 2), interpolation=cv2.INTER_AREA)
    mask = picture > 140
    eight = np.ones((3, 3), bool)
    return [
        ("closing 15 px (3% of 512), 512x384", lambda: cv2.morphologyEx(picture, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8)),
         lambda: ndimage.grey_closing(picture, size=(15, 15))),
        ("closing 33 px (13% of 256), 256x192", lambda: cv2.morphologyEx(half, cv2.MORPH_CLOSE, np.ones((33, 33), np.uint8)),
         lambda: ndimage.grey_closing(half, size=(33, 33))),
        ("median 77 px (30% of 256), 256x192", lambda: cv2.medianBlur(half, 77), lambda: ndimage.median_filter(half, size=77)),
        ("8-connected groups, boxes, areas", lambda: cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8),
         lambda: _scipy_groups(mask, eight)),
    ]


def _scipy_groups(mask: np.ndarray, structure: np.ndarray):
    labels, _ = ndimage.label(mask, structure)
    return ndimage.find_objects(labels), np.bincount(labels.ravel())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="timed runs per primitive (OpenCV); scipy's median runs once")
    args = p.parse_args()
    noise = np.random.default_rng(0).random((384, 512)) * 255
    picture = cv2.GaussianBlur(noise.astype(np.uint8), (0, 0), 3)
    rows = []
    for name, opencv, scipy_call in primitives(picture):
        fast = timed(opencv, args.repeat)
        slow = timed(scipy_call, 1 if "median" in name else args.repeat)
        rows.append((name, f"{fast:.2f}", f"{slow:.2f}", f"{slow / fast:,.0f}x"))
    print_table(["primitive", "OpenCV ms", "scipy.ndimage ms", "OpenCV faster by"], rows)


if __name__ == "__main__":
    main()
