"""The shipped ONNX files honour the contract: one file, opset >= 18, dynamic batch, named I/O,
full checker pass, metadata with everything the runtime reads."""
import onnx
import pytest

from demo.runtime import METADATA_KEY
from training.registry import REGISTRY

REQUIRED_METADATA = {"id", "task", "dataset", "labels", "input_name", "output_name", "test_accuracy",
                     "checkpoint_sha256", "versions", "parity", "params"}
TASK_METADATA = {"image-classification": {"input"}, "tabular": {"features", "output", "results"},
                 "sequence-prediction": {"vocab", "idx_to_char", "state_inputs", "state_outputs", "state_shape",
                                         "max_length"}}


@pytest.mark.parametrize("model_id", REGISTRY)
def test_onnx_contract(zoo, model_id):
    path = zoo.models_dir / f"{model_id}.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    meta = zoo.get(model_id).meta
    required = REQUIRED_METADATA | TASK_METADATA[meta["task"]]
    assert required <= set(meta), required - set(meta)
    assert [i.name for i in proto.graph.input] == [meta["input_name"], *meta.get("state_inputs", [])]
    assert [o.name for o in proto.graph.output] == [meta["output_name"], *meta.get("state_outputs", [])]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value, "batch axis must be dynamic"
    assert set(meta["versions"]) >= {"torch", "onnx", "opset"}
    assert METADATA_KEY in {p.key for p in proto.metadata_props}
    entry = REGISTRY[model_id]
    if entry.task == "tabular":
        assert [f["name"] for f in meta["features"]] == [f["name"] for f in entry.lesson.features]
        assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == len(meta["features"])
        return
    if entry.task == "sequence-prediction":
        sequence_dim = proto.graph.input[0].type.tensor_type.shape.dim[1]
        assert sequence_dim.dim_param, "sequence axis must be dynamic"
        assert meta["idx_to_char"] == sorted(meta["vocab"], key=meta["vocab"].get)
        return
    assert meta["labels"] == list(entry.labels)
    assert meta["input"]["mean"] == list(entry.input.mean) and meta["input"]["std"] == list(entry.input.std)
    assert meta["input"]["polarity"] == "white-on-black" and meta["input"]["normalization"] == "runtime"
