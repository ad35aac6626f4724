"""models/manifest.json: every shipped model with its file's sha256 and measured metrics.

Written by export/, read by the runtime, which refuses a file whose bytes don't match.
"""
import hashlib
import json
import os
import re
from pathlib import Path

MANIFEST_NAME = "manifest.json"
SERVED_KEYS = ("onnx", "sha256", "task")  # what the runtime reads from a row
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
REBUILD_HINT = "rebuild it with `make models` (or `tinyzoo train <id> && tinyzoo export <id>`)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> dict:
    """-> {"models": {id: row}}; an absent file is an empty table (export starts from one)."""
    path = Path(models_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"models": {}}
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); {REBUILD_HINT}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise ValueError(f"{path}: not a manifest (expected an object with a 'models' table); {REBUILD_HINT}")
    return manifest


def check_served_rows(manifest: dict, path: Path) -> None:
    """Every row has what serving relies on: a file name, a task and a sha256 to verify it with.
    A row without a hash (null, missing, not hex) is refused: it would skip verification."""
    for model_id, row in manifest["models"].items():
        where = f"{path}: model {model_id!r}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: row must be an object, got {type(row).__name__}; {REBUILD_HINT}")
        for key in SERVED_KEYS:
            if not isinstance(row.get(key), str) or not row[key]:
                raise ValueError(f"{where}: {key!r} missing or not a string; {REBUILD_HINT}")
        if not SHA256_HEX.fullmatch(row["sha256"]):
            raise ValueError(f"{where}: 'sha256' is not a 64-digit hex digest: refusing to serve a model that "
                             f"cannot be verified; {REBUILD_HINT}")
        if Path(row["onnx"]).name != row["onnx"]:
            raise ValueError(f"{where}: 'onnx' must be a file name inside the models folder, got {row['onnx']!r}")


def update_manifest(models_dir: Path, model_id: str, row: dict) -> None:
    """Read-modify-write one model's row; written atomically so a crash never leaves half a file."""
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir)
    manifest["models"][model_id] = row
    manifest["models"] = dict(sorted(manifest["models"].items()))
    tmp = models_dir / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, models_dir / MANIFEST_NAME)
