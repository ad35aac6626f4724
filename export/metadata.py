"""Put demo.contract.ModelMetadata into an ONNX file and read it back (onnx + the contract, no torch).

    tinyzoo export --rewrite-metadata all    # every shipped file's metadata -> the current schema version

Rewriting touches only metadata_props: the graph and its weights are the same bytes, so the parity
measured at export still holds; the manifest's sha256 and size follow the new file.
"""
import os
from dataclasses import replace
from pathlib import Path

import onnx

from demo.contract import METADATA_KEY, ContractError, ModelMetadata, read_manifest, sha256_file, update_manifest


def read_metadata(path: Path) -> ModelMetadata:
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if METADATA_KEY not in props:
        raise ContractError(f"{path}: no '{METADATA_KEY}' metadata: not a tinyzoo export")
    return ModelMetadata.from_json(props[METADATA_KEY])


def set_metadata(proto: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Validated on the way in: what a reader will parse must equal what was meant (types included)."""
    text = meta.to_json()
    if ModelMetadata.from_json(text) != meta:
        raise ContractError(f"{meta.id}: metadata does not survive its own JSON round trip (a list where the "
                            "schema has a tuple, a numpy number, ...); fix the writer")
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {METADATA_KEY: text})
    proto.doc_string = (f"tinyzoo {meta.id}: {meta.arch} on {meta.dataset}; metadata JSON (schema version "
                        f"{meta.schema_version}) under '{METADATA_KEY}'")


def save_checked(proto: onnx.ModelProto, path: Path) -> None:
    """One self-contained file, checker-clean, replacing `path` atomically (never half written)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save_model(proto, str(tmp), save_as_external_data=False)
    onnx.checker.check_model(str(tmp), full_check=True)
    os.replace(tmp, path)


def rewrite_metadata(model_id: str, models_dir: Path, fp32_sha256: dict[str, str]) -> str:
    """Re-write one file's metadata in the current layout -> the file's new sha256.
    fp32_sha256: new hashes of files rewritten before, so an int8 file names its fp32 source's new bytes."""
    models_dir = Path(models_dir)
    row = read_manifest(models_dir)["models"][model_id]
    path = models_dir / row["onnx"]
    proto = onnx.load(str(path), load_external_data=False)
    meta = read_metadata(path)
    if meta.variant is not None and meta.variant.variant_of in fp32_sha256:
        # the graph it was quantized from is unchanged; only that file's hash moved
        meta = replace(meta, variant=replace(meta.variant, fp32_sha256=fp32_sha256[meta.variant.variant_of]))
    set_metadata(proto, meta)
    save_checked(proto, path)
    sha256 = sha256_file(path)
    update_manifest(models_dir, model_id, {**row, "sha256": sha256, "bytes": path.stat().st_size})
    print(f"{path}: metadata rewritten as schema version {meta.schema_version}")
    return sha256


def rewrite_all(model_ids: list[str], models_dir: Path) -> None:
    """fp32 files first, so the int8 files can record their source's new sha256."""
    shipped = read_manifest(models_dir)["models"]
    missing = [i for i in model_ids if i not in shipped]
    if missing:
        raise ContractError(f"not in {Path(models_dir) / 'manifest.json'}: {', '.join(missing)}")
    new_hashes: dict[str, str] = {}
    for model_id in sorted(model_ids, key=lambda i: "variant_of" in shipped[i]):
        new_hashes[model_id] = rewrite_metadata(model_id, models_dir, new_hashes)
