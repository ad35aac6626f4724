"""The char RNN family: "hello" -> "ohlol" in PyTorch and ONNX Runtime, dynamic length, state round trip."""
import json

import numpy as np
import pytest
import torch

from demo.cli import main as tinyzoo
from demo.inference.runtime import InputError, ModelZoo
from export.onnx_export import load_checkpoint, sequence_io_names
from export.parity import SEQUENCE_CASES, check_sequence_parity
from training.charrnn import decode, encode
from training.registry import REGISTRY

HELLO_MODELS = [i for i, e in REGISTRY.items() if e.task == "sequence-prediction"]


def test_the_course_family_is_registered():
    assert HELLO_MODELS == ["hello-rnn", "hello-emb", "hello-lstm", "hello-gru"]


@pytest.mark.parametrize("model_id", HELLO_MODELS)
def test_hello_becomes_ohlol_in_torch_and_ort(zoo, model_id):
    _, model, record, _ = load_checkpoint(model_id, zoo.models_dir)
    assert record["vocab"] == ["e", "h", "l", "o"]
    with torch.no_grad():
        assert decode(model(encode("hello", record["vocab"]))[0].argmax(-1)[0].tolist(), record["vocab"]) == "ohlol"
    assert zoo.get(model_id).predict("hello").predicted == "ohlol"


def test_hello_rnn_solves_it_within_35_epochs_reproducibly(zoo, tmp_path):
    shipped = json.loads((zoo.models_dir / "hello-rnn.json").read_text())
    assert shipped["config"]["epochs"] <= 35 and shipped["solved_at_epoch"] <= 35
    assert tinyzoo(["train", "hello-rnn", "--out-dir", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "hello-rnn.json").read_text())
    assert again["history"] == shipped["history"]  # seeded: the same losses and predictions, epoch by epoch


@pytest.mark.parametrize("model_id", HELLO_MODELS)
def test_parity_at_lengths_1_5_17_and_batches_1_3(zoo, model_id):
    _, model, record, _ = load_checkpoint(model_id, zoo.models_dir)
    inputs, outputs = sequence_io_names(model)
    tokens, targets = encode("hello", record["vocab"]).numpy(), encode("ohlol", record["vocab"]).numpy()
    report = check_sequence_parity(model, str(zoo.models_dir / f"{model_id}.onnx"), inputs, outputs, tokens, targets,
                                   (model.layers, model.hidden), len(record["vocab"]))
    assert len(report.max_abs_diff) == len(SEQUENCE_CASES) == 6
    assert max(report.max_abs_diff.values()) <= 1e-4
    assert report.argmax_agreement == 1.0 and report.ort_accuracy == 1.0


@pytest.mark.parametrize("model_id", HELLO_MODELS)
def test_hidden_state_round_trip(zoo, model_id):
    model = zoo.get(model_id)
    whole = model.predict("hello")
    first = model.predict("hel")
    rest = model.predict("lo", first.state)
    np.testing.assert_allclose(np.concatenate([first.probabilities, rest.probabilities]), whole.probabilities,
                               atol=1e-5)
    for name in model.state_inputs:
        np.testing.assert_allclose(rest.state[name], whole.state[name], atol=1e-5)
    assert first.predicted + rest.predicted == "ohlol"


@pytest.mark.parametrize("text, message", [
    ("help", r"'p' not in the model's vocabulary; allowed characters: 'e', 'h', 'l', 'o'$"),
    ("Hello", r"'H' not in the model's vocabulary; allowed characters: 'e', 'h', 'l', 'o' "
              r"\(it knows no capitals: try 'hello'\)"),
    ("", "type some text"),
    ("l" * 257, "257 characters; the limit is 256"),
])
def test_bad_text_gets_a_clear_error(zoo, text, message):
    with pytest.raises(InputError, match=message):
        zoo.get("hello-lstm").predict(text)


def test_bad_state_gets_a_clear_error(zoo):
    with pytest.raises(InputError, match="state 'h0'"):
        zoo.get("hello-gru").predict("hello", {"h0": np.zeros((1, 2, 8), np.float32)})


@pytest.mark.parametrize("args, message", [
    (["--input-text", "hello", "--target-text", "ohlo"], "equal length"),
    (["--input-text", "", "--target-text", ""], "non-empty"),
    (["--input-text", "hello"], "go together"),
])
def test_bad_text_pair_is_refused_before_training(tmp_path, capsys, args, message):
    assert tinyzoo(["train", "hello-rnn", "--out-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_own_text_pair_trains_exports_and_serves(tmp_path):
    assert tinyzoo(["train", "hello-gru", "--input-text", "abcab", "--target-text", "bcabc", "--epochs", "60",
                    "--out-dir", str(tmp_path)]) == 0
    assert tinyzoo(["export", "hello-gru", "--models-dir", str(tmp_path)]) == 0
    model = ModelZoo(tmp_path, provider="cpu").get("hello-gru")
    assert model.vocab == ["a", "b", "c"]
    assert model.predict("abcab").predicted == "bcabc"
