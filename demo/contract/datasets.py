"""The dataset catalog (names, labels, mean/std, IDX file stems) and the numpy IDX reader.

Torch-free, so the serving side, its tests and benches read the real test sets; training adds
only the torchvision download (training/data.py).

Where the files are looked for, first hit wins:
  1. --data-dir DIR (or env TINYZOO_DATA): DIR/<folder>/ or DIR itself
  2. this workplace's copies: /usr/share/datasets/fashion-mnist, ../shared/data/mnist
  3. ~/.cache/tinyzoo/<Name>/raw, where `tinyzoo train --download` puts torchvision's copy
"""
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.settings import CACHE_HOME, DATA_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(CACHE_HOME.get() or Path.home() / ".cache") / "tinyzoo"

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    folder: str  # sub-folder name under a data dir
    torchvision_class: str  # for users with internet
    system_dirs: tuple[Path, ...]
    labels: tuple[str, ...]
    mean: float  # of train pixels scaled to [0, 1]
    std: float


DATASETS = {
    "mnist": DatasetInfo(
        name="mnist",
        folder="mnist",
        torchvision_class="MNIST",
        system_dirs=(PROJECT_ROOT.parent / "shared" / "data" / "mnist",),
        labels=tuple(str(d) for d in range(10)),
        mean=0.1307,
        std=0.3081,
    ),
    "fashion": DatasetInfo(
        name="fashion",
        folder="fashion-mnist",
        torchvision_class="FashionMNIST",
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        labels=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mean=0.2860,
        std=0.3530,
    ),
}


class DataNotFoundError(FileNotFoundError):
    pass


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def candidate_dirs(info: DatasetInfo, data_dir: str | os.PathLike | None = None) -> list[Path]:
    roots = [Path(p) for p in (data_dir, DATA_DIR.get()) if p]
    dirs = [d for root in roots for d in (root / info.folder, root)]
    dirs += list(info.system_dirs)
    dirs.append(CACHE_DIR / info.torchvision_class / "raw")
    return dirs


def find_dataset_dir(name: str, data_dir=None, splits=tuple(SPLIT_FILES)) -> Path:
    """The first candidate folder holding the IDX files of `splits` (serving/benches need only 'test')."""
    dirs = candidate_dirs(dataset_info(name), data_dir)
    for directory in dirs:
        if all(idx_file(directory, stem) for split in splits for stem in SPLIT_FILES[split]):
            return directory
    searched = "\n  ".join(str(d) for d in dirs)
    raise DataNotFoundError(
        f"{name}: no IDX files ({', '.join(s for split in splits for s in SPLIT_FILES[split])}[.gz]) in:\n  "
        f"{searched}\nPass --data-dir / set TINYZOO_DATA, or use --download (needs internet)."
    )


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzip'd): magic 0x0000 <dtype=0x08 ubyte> <ndim>, then dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def load_split(name: str, split: str, data_dir=None):
    """-> images uint8 [N, 28, 28], labels int64 [N]."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {list(SPLIT_FILES)}, got {split!r}")
    directory = find_dataset_dir(name, data_dir, (split,))
    image_stem, label_stem = SPLIT_FILES[split]
    images = read_idx(idx_file(directory, image_stem))
    labels = read_idx(idx_file(directory, label_stem)).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} images but {len(labels)} labels")
    return images, labels


def dataset_available(name: str, data_dir=None) -> bool:
    try:
        find_dataset_dir(name, data_dir)
        return True
    except DataNotFoundError:
        return False


SPIRAL_CLASSES, SPIRAL_PER_CLASS = 3, 1000


def make_spiral(seed: int = 0, per_class: int = SPIRAL_PER_CLASS, held_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The spiral lesson's data (cs231n's 3-class spiral: arms of radius 0..1, angle noise 0.2), generated
    rather than read; the app draws it under its map. -> x float32 [N, 2], y int64 [N].

    held_out: the same generator on another stream of the seed, the sample the models are tested on."""
    rng = np.random.default_rng([seed, 1] if held_out else seed)
    xs, ys = [], []
    for c in range(SPIRAL_CLASSES):
        r = np.linspace(0.0, 1, per_class)
        t = np.linspace(c * 4, (c + 1) * 4, per_class) + rng.normal(0, 0.2, per_class)
        xs.append(np.c_[r * np.sin(t), r * np.cos(t)])
        ys.append(np.full(per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)
