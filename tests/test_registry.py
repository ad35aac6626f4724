"""Every registered model ships, and nothing ships that isn't registered."""
import pytest

from demo.contract import sha256_file
from training.registry import REGISTRY


def test_every_registered_model_is_shipped(zoo):
    missing = sorted(set(REGISTRY) - set(zoo.ids()))
    assert not missing, f"registered but not in models/manifest.json: {missing}; run `make models`"


def test_nothing_shipped_is_unregistered(zoo):
    """Everything shipped is a registered model or a variant (int8) of one."""
    rows = zoo.manifest["models"]
    orphans = sorted(i for i in rows if i not in REGISTRY and rows[i].get("variant_of") not in REGISTRY)
    assert not orphans, f"in models/manifest.json but not in the registry: {orphans}"


@pytest.mark.parametrize("model_id", REGISTRY)
def test_manifest_hashes_match_files(zoo, model_id):
    row = zoo.manifest["models"][model_id]
    assert sha256_file(zoo.models_dir / row["onnx"]) == row["sha256"]
    assert sha256_file(zoo.models_dir / row["checkpoint"]) == row["checkpoint_sha256"]
    assert zoo.get(model_id).meta.provenance.checkpoint_sha256 == row["checkpoint_sha256"]
