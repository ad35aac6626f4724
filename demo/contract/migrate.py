"""Older metadata layouts -> the current one, step by step; newer or unknown versions are refused.

A file carries its layout's number under "schema_version"; the first exporter wrote none (version 1).
Each step takes one version's dict to the next, so a reader of version N reads every file from 1 to N.
"""
from demo.contract.version import SCHEMA_VERSION, ContractError

V1_KEYS = {"id", "task", "dataset", "arch", "model_args", "labels", "input", "features", "output", "input_name",
           "output_name", "state_inputs", "state_outputs", "state_shape", "vocab", "idx_to_char", "max_length",
           "trained_pair", "solved_at_epoch", "results", "test_accuracy", "test_examples", "parity", "params",
           "checkpoint", "checkpoint_sha256", "train", "versions", "precision", "variant_of", "quantization",
           "fp32_test_accuracy", "fp32_sha256", "calibration", "schema_version"}


def version_of(data: dict) -> int:
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ContractError(f"metadata schema_version must be a whole number from 1, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ContractError(f"metadata schema version {version} is newer than this tinyzoo reads (versions 1 to "
                            f"{SCHEMA_VERSION}): upgrade tinyzoo, or re-export the model with this version")
    return version


def upgrade(data) -> dict:
    """Any supported layout -> the current one (the input is not modified)."""
    if not isinstance(data, dict):
        raise ContractError(f"metadata must be a JSON object, got {type(data).__name__}")
    version = version_of(data)
    while version < SCHEMA_VERSION:
        data = STEPS[version](data)
        version += 1
    return data


def need(old: dict, key: str):
    if key not in old:
        raise ContractError(f"version 1 metadata of {old.get('id', '?')!r}: required field '{key}' is missing")
    return old[key]


def v1_to_v2(old: dict) -> dict:
    """The flat dict of the first exporter -> grouped blocks."""
    unknown = sorted(set(old) - V1_KEYS)
    if unknown:
        raise ContractError(f"version 1 metadata of {old.get('id', '?')!r}: unknown field(s) {', '.join(unknown)}")
    new = {key: need(old, key) for key in ("id", "task", "dataset", "arch", "labels")}
    new.update(
        schema_version=2,
        tensors={"input": need(old, "input_name"), "output": need(old, "output_name"),
                 "state_inputs": old.get("state_inputs", []), "state_outputs": old.get("state_outputs", [])},
        output=old.get("output", "logits"),
        measurements={"test_accuracy": need(old, "test_accuracy"), "test_examples": need(old, "test_examples"),
                      "params": need(old, "params"), "parity": need(old, "parity"), "results": old.get("results", {})},
        provenance={"checkpoint": need(old, "checkpoint"), "checkpoint_sha256": need(old, "checkpoint_sha256"),
                    "model_args": need(old, "model_args"), "versions": need(old, "versions")},
        precision=old.get("precision", "fp32"),
    )
    for key in ("train", "input", "features", "calibration"):
        if key in old:
            new[key] = old[key]
    if old["task"] == "sequence-prediction":
        layers, _, hidden = need(old, "state_shape")  # [layers, "batch", hidden]
        new["sequence"] = {"idx_to_char": need(old, "idx_to_char"), "max_length": need(old, "max_length"),
                           "layers": layers, "hidden": hidden, "trained_pair": need(old, "trained_pair"),
                           "solved_at_epoch": old.get("solved_at_epoch")}
    if "variant_of" in old:
        new["variant"] = {key: need(old, key) for key in ("variant_of", "fp32_test_accuracy", "fp32_sha256",
                                                          "quantization")}
    return new


def v2_to_v3(old: dict) -> dict:
    """Version 3 only adds the optional `inspection` block: a version 2 file has no taps."""
    return {**old, "schema_version": 3}


STEPS = {1: v1_to_v2, 2: v2_to_v3}  # version -> the function taking that version's dict to the next
