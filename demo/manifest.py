"""models/manifest.json: every shipped model with its file's sha256 and measured metrics.

Written by export/, read by the runtime, which refuses a file whose bytes don't match.
"""
import hashlib
import json
import os
from pathlib import Path

MANIFEST_NAME = "manifest.json"


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


def update_manifest(models_dir: Path, model_id: str, row: dict) -> None:
    """Read-modify-write one model's row; written atomically so a crash never leaves half a file."""
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir)
    manifest["models"][model_id] = row
    manifest["models"] = dict(sorted(manifest["models"].items()))
    tmp = models_dir / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, models_dir / MANIFEST_NAME)
