"""demo/contract owns what export writes and serving reads: the import graph runs one way
(training -> export -> contract <- demo), the metadata schema round-trips, old layouts migrate,
newer ones are refused by name, and rewriting a file's metadata leaves its graph untouched."""
import ast
import json
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from demo.contract import (DATASETS, METADATA_KEY, SCHEMA_VERSION, ContractError, ModelMetadata, load_split,
                           read_examples, read_manifest, sha256_file)
from demo.inference.runtime import ModelError, ModelZoo
from export.metadata import read_metadata, rewrite_all
from tests.conftest import ROOT, TORCH_PACKAGES, blocker, require_dataset

V1_FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "metadata-v1.json").read_text())


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def imports_under(folder: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imported_modules(p) for p in sorted((ROOT / folder).rglob("*.py"))}


def top(module: str) -> str:
    return module.split(".")[0]


def is_contract(module: str) -> bool:
    return module == "demo.contract" or module.startswith("demo.contract.")


def test_demo_imports_neither_torch_nor_training_nor_export():
    banned = {*TORCH_PACKAGES, "training", "export"}
    leaks = {f: sorted(m for m in mods if top(m) in banned) for f, mods in imports_under("demo").items()}
    assert not any(leaks.values()), {f: m for f, m in leaks.items() if m}


def test_export_and_training_use_nothing_of_demo_but_the_contract():
    for folder in ("export", "training"):
        leaks = {f: sorted(m for m in mods if top(m) == "demo" and not is_contract(m))
                 for f, mods in imports_under(folder).items()}
        assert not any(leaks.values()), {f: m for f, m in leaks.items() if m}


def test_contract_imports_only_stdlib_numpy_and_settings():
    for f, mods in imports_under("demo/contract").items():
        foreign = sorted(m for m in mods if top(m) not in sys.stdlib_module_names and top(m) != "numpy"
                         and not is_contract(m) and m != "demo.settings")
        assert not foreign, (f, foreign)


def test_settings_imports_only_stdlib():
    mods = imported_modules(ROOT / "demo" / "settings.py")
    assert mods and all(top(m) in sys.stdlib_module_names for m in mods), mods


SERVE_WITHOUT_TRAINING = """
from demo.contract import read_examples
from demo.inference.runtime import ModelZoo
from demo.web.server import create_app
zoo = ModelZoo(provider="cpu")
seven = next(e for e in read_examples(zoo.models_dir, "mnist") if e.label == "7")
print("label", zoo.get("mnist-cnn").classify(seven.path.read_bytes()).label)
create_app(zoo)
"""


def test_server_classifies_with_torch_training_and_export_blocked():
    code = blocker((*TORCH_PACKAGES, "training", "export")) + SERVE_WITHOUT_TRAINING
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "label 7" in result.stdout


def test_registry_lists_without_torch():
    code = blocker(TORCH_PACKAGES) + ("from training.registry import REGISTRY\nimport bench.zoo_table\n"
                                      "print(len(REGISTRY), sorted({e.task for e in REGISTRY.values()}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "['image-classification', 'sequence-prediction', 'tabular']" in result.stdout


def test_every_shipped_file_reads_under_the_schema_and_round_trips(zoo):
    for model_id in zoo.ids():
        meta = zoo.get(model_id).meta
        assert meta.schema_version == SCHEMA_VERSION and meta.id == model_id
        assert ModelMetadata.from_json(meta.to_json()) == meta
        assert (meta.precision == "int8") == (meta.variant is not None)


@pytest.mark.parametrize("model_id", V1_FIXTURES)
def test_version_1_layout_migrates(model_id):
    old = V1_FIXTURES[model_id]
    meta = ModelMetadata.from_dict(old)
    assert meta.schema_version == SCHEMA_VERSION and meta.id == model_id
    assert meta.tensors.input == old["input_name"] and meta.tensors.output == old["output_name"]
    assert meta.measurements.test_accuracy == old["test_accuracy"]
    assert meta.provenance.checkpoint_sha256 == old["checkpoint_sha256"]
    assert [dict(r) for r in meta.train.history] == old["train"]["history"]
    assert ModelMetadata.from_json(meta.to_json()) == meta  # and the migrated object writes as the new layout


def test_version_1_blocks_land_where_readers_look():
    lstm = ModelMetadata.from_dict(V1_FIXTURES["hello-lstm"])
    assert lstm.tensors.state_inputs == ("h0", "c0") and lstm.tensors.state_outputs == ("hn", "cn")
    assert (lstm.sequence.layers, lstm.sequence.hidden) == (1, 8)
    assert lstm.sequence.vocab == V1_FIXTURES["hello-lstm"]["vocab"]
    int8 = ModelMetadata.from_dict(V1_FIXTURES["mnist-cnn-int8"])
    assert int8.variant.variant_of == "mnist-cnn" and int8.variant.quantization.method == "static"
    assert int8.input.mean == (0.1307,) and int8.input.scale == pytest.approx(1 / 255)
    logistic = ModelMetadata.from_dict(V1_FIXTURES["logistic-regression"])
    assert logistic.lesson_result("crossing") == V1_FIXTURES["logistic-regression"]["results"]["crossing"]
    assert [f.name for f in logistic.features] == ["x"] and logistic.output == "probability"


def current(model_id="hello-lstm") -> dict:
    return ModelMetadata.from_dict(V1_FIXTURES[model_id]).to_dict()


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 99])
def test_newer_version_is_refused_by_number(version):
    with pytest.raises(ContractError, match=f"version {version} is newer"):
        ModelMetadata.from_dict({**current(), "schema_version": version})


@pytest.mark.parametrize("version", [0, -1, "2", 2.0, True, None])
def test_nonsense_version_is_refused(version):
    with pytest.raises(ContractError, match="schema_version must be a whole number"):
        ModelMetadata.from_dict({**current(), "schema_version": version})


@pytest.mark.parametrize("broken, message", [
    (lambda d: d.pop("tensors"), "required field 'tensors' is missing"),
    (lambda d: d["measurements"].pop("params"), r"metadata.measurements: required field 'params'"),
    (lambda d: d.update(extra=1), "unknown field.*extra"),
    (lambda d: d["measurements"].update(test_accuracy="high"), r"measurements.test_accuracy: expected int or float"),
    (lambda d: d["measurements"].update(params=True), r"measurements.params: expected int"),
    (lambda d: d["tensors"].update(state_inputs="h0"), r"tensors.state_inputs: expected array"),
    (lambda d: d.update(sequence=None), "needs a 'sequence' block"),
    (lambda d: d.update(task="regression"), "task must be one of"),
    (lambda d: d.update(precision="int8"), "an int8 file needs a 'variant' block"),
])
def test_current_layout_is_validated(broken, message):
    data = current()
    broken(data)
    with pytest.raises(ContractError, match=message):
        ModelMetadata.from_dict(data)


def test_version_1_missing_field_is_named():
    old = {k: v for k, v in V1_FIXTURES["mnist-cnn-int8"].items() if k != "fp32_sha256"}
    with pytest.raises(ContractError, match="version 1 metadata of 'mnist-cnn-int8': required field 'fp32_sha256'"):
        ModelMetadata.from_dict(old)


def test_not_json_is_a_contract_error():
    with pytest.raises(ContractError, match="not valid JSON"):
        ModelMetadata.from_json("{not json")


def scratch_models(tmp_path: Path, ids: list[str]) -> Path:
    """A models dir holding copies of some shipped files and their manifest rows."""
    rows = read_manifest(ROOT / "models")["models"]
    for model_id in ids:
        shutil.copyfile(ROOT / "models" / rows[model_id]["onnx"], tmp_path / rows[model_id]["onnx"])
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {i: rows[i] for i in ids}}))
    return tmp_path


def put_raw_metadata(models_dir: Path, model_id: str, raw: str) -> None:
    """Replace a file's metadata JSON as an older or newer exporter would have written it."""
    path = models_dir / f"{model_id}.onnx"
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {METADATA_KEY: raw})
    onnx.save_model(proto, str(path))
    manifest = json.loads((models_dir / "manifest.json").read_text())
    manifest["models"][model_id]["sha256"] = sha256_file(path)
    (models_dir / "manifest.json").write_text(json.dumps(manifest))


def test_runtime_reads_version_1_and_refuses_a_newer_file(tmp_path):
    models = scratch_models(tmp_path, ["hello-lstm", "logistic-regression"])
    put_raw_metadata(models, "hello-lstm", json.dumps(V1_FIXTURES["hello-lstm"]))
    assert ModelZoo(models, provider="cpu").get("hello-lstm").predict("hello").predicted == "ohlol"
    put_raw_metadata(models, "logistic-regression", json.dumps({**current("logistic-regression"),
                                                                "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ModelError, match=f"version {SCHEMA_VERSION + 1} is newer than this tinyzoo reads"):
        ModelZoo(models, provider="cpu").get("logistic-regression")


def test_rewrite_metadata_changes_only_the_metadata(tmp_path):
    ids = ["mnist-softmax", "mnist-softmax-int8", "hello-lstm"]
    models = scratch_models(tmp_path, ids)
    put_raw_metadata(models, "hello-lstm", json.dumps(V1_FIXTURES["hello-lstm"]))  # an unversioned file
    before = {i: (read_metadata(models / f"{i}.onnx"), onnx.load(str(models / f"{i}.onnx")).graph) for i in ids}
    rewrite_all(ids, models)
    zoo = ModelZoo(models, provider="cpu")  # verifies every file against the rewritten manifest
    for model_id, (meta, graph) in before.items():
        path = models / f"{model_id}.onnx"
        raw = {p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY]
        assert json.loads(raw)["schema_version"] == SCHEMA_VERSION
        assert onnx.load(str(path)).graph.SerializeToString() == graph.SerializeToString()
        expected = meta
        if meta.variant:  # the int8 file names the bytes of its fp32 source as they are now
            fp32_sha256 = sha256_file(models / "mnist-softmax.onnx")
            expected = replace(meta, variant=replace(meta.variant, fp32_sha256=fp32_sha256))
        assert zoo.get(model_id).meta == expected
    assert zoo.get("hello-lstm").predict("hello").predicted == "ohlol"


def test_examples_are_committed_test_images_one_per_class(zoo):
    for dataset, info in DATASETS.items():
        examples = read_examples(zoo.models_dir, dataset)
        assert [e.label for e in examples] == list(info.labels)
        assert all(e.path.stat().st_size < 4096 for e in examples)
    for dataset in sorted(DATASETS, key=lambda name: name == "mnist"):  # MNIST may be absent: it skips, last
        require_dataset(dataset)
        images, targets = load_split(dataset, "test")
        for e in read_examples(zoo.models_dir, dataset):  # the very test-set picture, with its own label
            info = DATASETS[dataset]
            assert np.array_equal(np.asarray(Image.open(e.path)), images[e.test_index])
            assert info.labels[targets[e.test_index]] == e.label


def test_examples_index_cannot_point_outside_its_folder(tmp_path):
    (tmp_path / "examples").mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    rows = [{"dataset": "mnist", "label": "0", "test_index": 0, "file": "../secret.png"}]
    (tmp_path / "examples" / "examples.json").write_text(json.dumps({"examples": rows}))
    assert read_examples(tmp_path, "mnist") == []


def test_app_offers_the_committed_examples(live_server):
    """Gradio copies each committed picture into its cache and serves that copy, byte for byte."""
    config = json.loads(urllib.request.urlopen(f"{live_server}/config", timeout=30).read())
    offered = {item["image"]["orig_name"]: item["image"]["path"] for c in config["components"]
               if c.get("type") == "gallery" for item in c["props"].get("value") or []}
    committed = [e.path for dataset in DATASETS for e in read_examples(ROOT / "models", dataset)]
    assert committed and {p.name for p in committed} <= set(offered)
    served = urllib.request.urlopen(f"{live_server}/gradio_api/file={offered[committed[0].name]}", timeout=30).read()
    assert served == committed[0].read_bytes()
