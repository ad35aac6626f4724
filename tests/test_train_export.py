"""A short train + export round trip (--dry-run on a small slice) through the real CLI."""
import json

import pytest

from demo.inference.runtime import ModelZoo
from demo.cli import main as tinyzoo
from tests.conftest import require_dataset


@pytest.mark.parametrize("model_id", ["fashion-cnn", "mnist-mlp"])
def test_dry_run_train_then_export(tmp_path, model_id):
    require_dataset(model_id.split("-")[0])
    assert tinyzoo(["train", model_id, "--dry-run", "--limit-train", "512", "--out-dir", str(tmp_path),
                    "--log-dir", str(tmp_path.parent / f"{tmp_path.name}-log")]) == 0
    record = json.loads((tmp_path / f"{model_id}.json").read_text())
    assert record["config"]["dry_run"] and len(record["history"]) == 1 and record["test_examples"] == 512
    assert tinyzoo(["export", model_id, "--models-dir", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest["models"]) == [model_id]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{model_id}.json", f"{model_id}.safetensors", f"{model_id}.onnx", "manifest.json", "mistakes"])  # no external data
    model = ModelZoo(tmp_path, provider="cpu").get(model_id)
    assert model.meta.measurements.parity.argmax_agreement == 1.0
    assert model.meta.inspection.taps and (tmp_path / manifest["models"][model_id]["mistakes"]).is_file()


def test_train_rejects_unknown_model_before_training(capsys):
    with pytest.raises(SystemExit) as exit_:
        tinyzoo(["train", "mnist-softmax", "mnist-transformer", "--dry-run"])
    assert exit_.value.code == 2 and "unknown model 'mnist-transformer'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, code, stream", [([], 2, "err"), (["--help"], 0, "out"), (["serve"], 2, "err")])
def test_the_command_line_without_a_known_command(argv, code, stream, capsys):
    """A bare `tinyzoo` is a usage error (exit 2, usage on stderr), as argparse treats a missing
    command; `tinyzoo --help` asked for the usage and succeeds."""
    assert tinyzoo(argv) == code
    assert "usage: tinyzoo <command>" in getattr(capsys.readouterr(), stream)


def test_export_refuses_checkpoint_from_other_architecture(tmp_path):
    require_dataset("fashion")
    assert tinyzoo(["train", "fashion-softmax", "--dry-run", "--out-dir", str(tmp_path),
                    "--log-dir", str(tmp_path.parent / f"{tmp_path.name}-log")]) == 0
    record_path = tmp_path / "fashion-softmax.json"
    record = json.loads(record_path.read_text())
    record["model_args"] = {"hidden": 7}
    record_path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="retrain"):
        tinyzoo(["export", "fashion-softmax", "--models-dir", str(tmp_path)])
    assert not (tmp_path / "fashion-softmax.onnx").exists()
