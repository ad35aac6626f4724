"""The contract between export and serving, torch-free (stdlib + numpy only).

An exported ONNX file describes itself: JSON under the metadata key "tinyzoo", in the typed,
versioned layout of `schema.ModelMetadata`. export/ writes it, demo/ reads it, training/ feeds it
(the registry's input spec and features); none of them spells a metadata key by hand.
Imports run one way: training -> export -> contract <- demo.

    schema.py     ModelMetadata and its parts, SCHEMA_VERSION, METADATA_KEY, to_json/from_json
    migrate.py    older layouts -> the current one (or a clear refusal naming the version)
    version.py    SCHEMA_VERSION and ContractError, shared by schema.py and migrate.py
    tensors.py    the graph's tensor names and the one normalize() (uint8 pixels -> model input)
    datasets.py   the dataset catalog (names, labels, mean/std, file stems) and the IDX reader
    manifest.py   models/manifest.json and models/examples/examples.json: read, write, sha256
"""
from demo.contract.datasets import DATASETS, DataNotFoundError, dataset_available, dataset_info, load_split
from demo.contract.manifest import Example, read_examples, read_manifest, sha256_file, update_manifest
from demo.contract.schema import (METADATA_KEY, SCHEMA_VERSION, Calibration, ContractError, Feature, InputSpec,
                                  Inspection, Tap,
                                  MeasuredWith, Measurements, ModelMetadata, Parity, Provenance, Quantization,
                                  SequenceSpec, TensorNames, TrainSummary, Variant)
from demo.contract.tensors import normalize

__all__ = ["DATASETS", "DataNotFoundError", "dataset_available", "dataset_info", "load_split", "Example",
           "read_examples", "read_manifest", "sha256_file", "update_manifest", "METADATA_KEY", "SCHEMA_VERSION",
           "Calibration", "ContractError", "Feature", "InputSpec", "Inspection", "Tap", "MeasuredWith",
           "Measurements", "ModelMetadata", "Parity", "Provenance", "Quantization", "SequenceSpec", "TensorNames",
           "TrainSummary", "Variant", "normalize"]
