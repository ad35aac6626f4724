"""One small test-set picture per class, committed under models/examples, so the app shows
examples on a machine without the datasets (the serving side never reads a dataset).

    tinyzoo export --examples     # -> models/examples/<dataset>/<test index>-<label>.png + examples.json
"""
from pathlib import Path

import numpy as np
from PIL import Image

from demo.contract import DATASETS, load_split
from demo.contract.manifest import EXAMPLES_DIR, Example, example_file_name, write_examples_index


def dataset_examples(dataset: str, folder: Path, data_dir=None) -> list[Example]:
    """The first test image of each class, as a 28x28 greyscale PNG (a few hundred bytes each)."""
    images, targets = load_split(dataset, "test", data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.png"):  # a changed dataset or label must not leave an old picture behind
        stale.unlink()
    examples = []
    for cls, label in enumerate(DATASETS[dataset].labels):
        index = int(np.flatnonzero(targets == cls)[0])
        path = folder / example_file_name(index, label)
        Image.fromarray(images[index]).save(path, optimize=True)
        examples.append(Example(dataset, label, index, path))
    return examples


def write_examples(models_dir: Path, data_dir=None) -> Path:
    root = Path(models_dir) / EXAMPLES_DIR
    examples = [e for dataset in DATASETS for e in dataset_examples(dataset, root / dataset, data_dir)]
    index = write_examples_index(models_dir, examples)
    print(f"{index}: {len(examples)} examples ({sum(e.path.stat().st_size for e in examples):,} bytes of PNG)")
    return index
