"""MNIST / Fashion-MNIST for training: the contract's catalog and IDX reader, plus the download.

The catalog (names, labels, mean/std, file stems) and the reader live in demo/contract/datasets.py,
torch-free, so serving and tests read the same files; only fetching them with torchvision
(`--download`, needs internet) is training's.
"""
from demo.contract import datasets
from demo.contract.datasets import CACHE_DIR, PROJECT_ROOT, SPLIT_FILES, DataNotFoundError, dataset_info  # noqa: F401


def find_dataset_dir(name: str, data_dir=None, download: bool = False, splits=tuple(SPLIT_FILES)):
    """The folder with the IDX files of `splits`; with download=True, torchvision fetches missing ones."""
    try:
        return datasets.find_dataset_dir(name, data_dir, splits)
    except DataNotFoundError:
        if not download:
            raise
    import torchvision  # training extra; only users with internet get here

    info = dataset_info(name)
    for train in (True, False):
        getattr(torchvision.datasets, info.torchvision_class)(CACHE_DIR, train=train, download=True)
    return datasets.find_dataset_dir(name, data_dir, splits)


def load_split(name: str, split: str, data_dir=None, download: bool = False):
    """-> images uint8 [N, 28, 28], labels int64 [N]; see demo.contract.datasets.load_split."""
    if download:
        find_dataset_dir(name, data_dir, True, (split,))
    return datasets.load_split(name, split, data_dir)
