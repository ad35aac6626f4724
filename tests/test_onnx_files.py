"""The shipped ONNX files honour the contract: one file, opset >= 18, dynamic batch, named I/O,
full checker pass, metadata that reads under the schema (demo.contract) and matches the registry."""
import onnx
import pytest

from demo.contract import METADATA_KEY
from export.metadata import read_metadata
from training.registry import REGISTRY


@pytest.mark.parametrize("model_id", REGISTRY)
def test_onnx_contract(zoo, model_id):
    path = zoo.models_dir / f"{model_id}.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    assert METADATA_KEY in {p.key for p in proto.metadata_props}
    meta = read_metadata(path)  # validated (and migrated from an older layout) by the schema
    assert meta == zoo.get(model_id).meta
    names = meta.tensors
    assert [i.name for i in proto.graph.input] == [names.input, *names.state_inputs]
    assert [o.name for o in proto.graph.output] == [names.output, *names.state_outputs]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value, "batch axis must be dynamic"
    assert set(meta.provenance.versions) >= {"torch", "onnx", "opset"}
    entry = REGISTRY[model_id]
    assert (meta.id, meta.task, meta.dataset, meta.arch) == (entry.id, entry.task, entry.dataset, entry.arch)
    assert meta.labels == tuple(entry.labels) and meta.input == entry.input
    if entry.task == "tabular":
        assert meta.features == entry.lesson.features and meta.output == entry.lesson.output
        assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == len(meta.features)
    if entry.task == "sequence-prediction":
        assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param, "sequence axis must be dynamic"
        state = proto.graph.input[1].type.tensor_type.shape.dim
        assert (state[0].dim_value, state[2].dim_value) == (meta.sequence.layers, meta.sequence.hidden)
