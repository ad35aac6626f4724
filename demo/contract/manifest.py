"""models/manifest.json (every shipped model: its file's sha256 and measured figures) and
models/examples/examples.json (one committed test-set picture per class for the app).

Written by export/, read by the runtime, which refuses a file whose bytes don't match.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "manifest.json"
EXAMPLES_DIR = "examples"  # under the models dir: <dataset>/<test index>-<label>.png
EXAMPLES_INDEX = "examples.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> dict:
    path = Path(models_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"models": {}}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); rebuild it with `make models`") from None
    if not isinstance(manifest.get("models"), dict):
        raise ValueError(f"{path}: no 'models' table; rebuild it with `make models`")
    return manifest


def write_json_atomically(path: Path, data: dict) -> None:
    """A crash never leaves half a file: write beside it, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def update_manifest(models_dir: Path, model_id: str, row: dict) -> None:
    """Read-modify-write one model's row."""
    manifest = read_manifest(models_dir)
    manifest["models"][model_id] = row
    manifest["models"] = dict(sorted(manifest["models"].items()))
    write_json_atomically(Path(models_dir) / MANIFEST_NAME, manifest)


@dataclass(frozen=True)
class Example:
    dataset: str
    label: str
    test_index: int  # position in the dataset's test split
    path: Path


def example_file_name(test_index: int, label: str) -> str:
    return f"{test_index:05d}-{label.replace('/', '-').replace(' ', '-')}.png"


def write_examples_index(models_dir: Path, examples: list[Example]) -> Path:
    root = Path(models_dir) / EXAMPLES_DIR
    index = {"examples": [{"dataset": e.dataset, "label": e.label, "test_index": e.test_index,
                           "file": e.path.relative_to(root).as_posix()} for e in examples]}
    write_json_atomically(root / EXAMPLES_INDEX, index)
    return root / EXAMPLES_INDEX


def read_examples(models_dir: Path, dataset: str) -> list[Example]:
    """The committed example pictures of one dataset, in class order; [] when there are none."""
    root = Path(models_dir) / EXAMPLES_DIR
    try:
        rows = json.loads((root / EXAMPLES_INDEX).read_text())["examples"]
        examples = [Example(r["dataset"], r["label"], r["test_index"], root / r["file"]) for r in rows]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{root / EXAMPLES_INDEX}: unreadable ({e}); "
                         "rewrite it with `tinyzoo export --examples`") from None
    inside = root.resolve()  # an index entry can't point outside the examples folder
    return [e for e in examples
            if e.dataset == dataset and e.path.resolve().is_relative_to(inside) and e.path.is_file()]
