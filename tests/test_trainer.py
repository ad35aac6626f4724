"""One trainer interface: every family honours --epochs/--lr/--seed/--dry-run or refuses a flag;
run state stays apart; --resume continues only the same run; train_loss is the plain loss."""
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from tests.conftest import require_dataset
from training.augment import epoch_draws, random_affine
from training.config import TrainConfig
from training.image import Normalizer
from training.lessons import spiral
from training.registry import REGISTRY, get_entry
from training.runstate import rng_state, set_rng_state
from training.train import main, train

SLICE = ["--limit-train", "2048", "--batch-size", "256"]
CORE_KEYS = {"id", "dataset", "arch", "model_args", "config", "params", "epochs", "seconds_per_epoch", "device",
             "torch_version", "history"}


def tinyzoo_train(tmp_path, *args) -> int:
    return main([*args, "--out-dir", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log")])


def record(tmp_path, model_id: str) -> dict:
    return json.loads((tmp_path / "out" / f"{model_id}.json").read_text())


@pytest.mark.parametrize("model_id", ["fashion-softmax", "hello-gru", "logistic-regression", "spiral-linear"])
def test_every_family_honours_epochs_lr_and_seed(tmp_path, model_id):
    if get_entry(model_id).family == "image":
        require_dataset("fashion")
    extra = SLICE if get_entry(model_id).family == "image" else []
    assert tinyzoo_train(tmp_path, model_id, "--epochs", "3", "--lr", "0.07", "--seed", "5", *extra) == 0
    rec = record(tmp_path, model_id)
    assert (rec["config"]["epochs"], rec["config"]["lr"], rec["config"]["seed"]) == (3, 0.07, 5)
    assert rec["epochs"] == 3 and CORE_KEYS <= set(rec)  # one record shape for every family
    if rec["history"]:
        assert len(rec["history"]) == 3


@pytest.mark.parametrize("model_id", ["fashion-softmax", "hello-rnn", "diabetes-mlp", "spiral-mlp"])
def test_every_family_dry_runs_two_steps(tmp_path, model_id):
    if get_entry(model_id).family == "image":
        require_dataset("fashion")
    assert tinyzoo_train(tmp_path, model_id, "--dry-run") == 0
    rec = record(tmp_path, model_id)
    assert rec["config"]["dry_run"] is True
    assert rec["epochs"] == (1 if get_entry(model_id).family == "image" else 2)
    assert not list((tmp_path / "log").rglob("state.pt"))  # nothing a later --resume could pick up


def test_the_same_seed_trains_the_same_lesson_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["spiral-linear", "--epochs", "20", "--seed", seed, "--out-dir", str(tmp_path / name),
                     "--log-dir", str(tmp_path / "log")]) == 0
    a, b, c = (load_file(tmp_path / n / "spiral-linear.safetensors")["linear.weight"] for n in "abc")
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("args, message", [
    (["logistic-regression", "--batch-size", "8"], "lesson trainer does not use --batch-size"),
    (["hello-rnn", "--val-size", "10"], "sequence trainer does not use --val-size"),
    (["fashion-softmax", "--input-text", "ab", "--target-text", "ba"], "image trainer does not use --input-text"),
    (["all", "--augment", "flip", "--dry-run"], "does not use --augment"),
    (["hello-rnn", "--input-text", "abc", "--target-text", "ab"], "equal length"),
    (["fashion-softmax", "--patience", "2"], "--val-size"),
    (["fashion-softmax", "--dry-run", "--resume"], "--dry-run writes no resumable state"),
    (["fashion-softmax", "--eval-every", "5"], "give --target-accuracy"),
    (["fashion-softmax", "--optimizer", "rmsprop", "--dry-run"], "unknown optimizer 'rmsprop'"),
    (["fashion-softmax", "--dropout", "0.1"], "image trainer does not use --dropout"),  # it has no dropout layer
    (["fashion-cnn", "--dropout", "1"], "--dropout 1.0 is not a probability in [0, 1)"),
])
def test_a_flag_a_trainer_would_ignore_is_refused_in_one_line(tmp_path, capsys, args, message):
    require_dataset("fashion")
    assert tinyzoo_train(tmp_path, *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.safetensors"))


def test_a_dry_run_leaves_nothing_for_a_later_resume(tmp_path, capsys):
    """The reported bug: dry run, then a real --resume picked up the dry run's state and crashed."""
    require_dataset("fashion")
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--dry-run") == 0
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--epochs", "3", "--resume", *SLICE) == 0
    assert "found no saved state" in capsys.readouterr().out
    assert [h["epoch"] for h in record(tmp_path, "fashion-softmax")["history"]] == [1, 2, 3]


def test_resume_with_other_settings_is_refused_and_more_epochs_continue(tmp_path, capsys):
    require_dataset("fashion")
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--epochs", "2", "--stop-after", "1", *SLICE) == 0
    capsys.readouterr()
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--epochs", "2", "--resume", "--lr", "0.5", *SLICE) == 2
    err = capsys.readouterr().err
    assert "--resume refused" in err and "lr 0.002 -> 0.5" in err and len(err.strip().splitlines()) == 1
    # more epochs than the saved run planned: OneCycle rebuilt for 4 epochs, continued at the step reached
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--epochs", "4", "--resume", *SLICE) == 0
    history = record(tmp_path, "fashion-softmax")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    probe = torch.optim.lr_scheduler.OneCycleLR(torch.optim.AdamW([torch.zeros(1)], lr=2e-3), 2e-3, total_steps=32)
    lrs = []
    for _ in range(32):
        probe.optimizer.step()
        probe.step()
        lrs.append(probe.get_last_lr()[0])
    assert [h["lr"] for h in history[1:]] == pytest.approx([lrs[15], lrs[23], lrs[31]])


def test_rng_state_round_trip_covers_every_generator():
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    saved = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_augmentation_belongs_to_the_sample_not_the_batch():
    """Any sharding of a global batch draws the same transform per image: the DDP premise."""
    order, u = epoch_draws(seed=3, epoch=2, n=64, device="cpu")
    again_order, again_u = epoch_draws(seed=3, epoch=2, n=64, device="cpu")
    assert torch.equal(order, again_order) and torch.equal(u, again_u)
    x = torch.rand(64, 1, 28, 28)
    whole = random_affine(x[order], "affine", u[order])
    halves = torch.cat([random_affine(x[order[i::2]], "affine", u[order[i::2]]) for i in (0, 1)])
    reordered = torch.cat([whole[0::2], whole[1::2]])
    assert torch.allclose(halves, reordered, atol=1e-6)
    assert not torch.equal(epoch_draws(3, 3, 64, "cpu")[1], u)  # another epoch, other draws


def test_train_loss_is_plain_cross_entropy_with_the_objective_beside_it(tmp_path):
    """lr 0: the weights never move, so the epoch's train_loss must equal the plain cross-entropy of
    the initial model on the training slice; label smoothing and L1 show up only in train_objective."""
    require_dataset("fashion")
    cfg = TrainConfig(model="fashion-softmax", epochs=1, lr=0.0, optimizer="sgd", scheduler="none",
                      label_smoothing=0.3, l1=1e-3, limit_train=2048, batch_size=256)
    row = train(cfg, out_dir=tmp_path / "out", log_dir=tmp_path / "log")["history"][0]
    entry = get_entry("fashion-softmax")
    torch.manual_seed(0)
    model = entry.make_model()
    from training.data import load_split

    images, labels = (torch.tensor(a[:2048]) for a in load_split("fashion", "train"))
    normalize = Normalizer(entry, "cpu")
    with torch.no_grad():
        logits = model(normalize(normalize.pixels(images)))
        plain = F.cross_entropy(logits, labels).item()
        penalty = 1e-3 * model.linear.weight.abs().sum().item()
        smoothed = F.cross_entropy(logits, labels, label_smoothing=0.3).item()
    assert row["train_loss"] == pytest.approx(plain, rel=1e-5)
    assert row["train_l1_penalty"] == pytest.approx(penalty, rel=1e-5)
    assert row["train_objective"] == pytest.approx(smoothed + penalty, rel=1e-5)


def test_target_accuracy_stops_the_run_and_records_the_time(tmp_path):
    require_dataset("fashion")
    assert tinyzoo_train(tmp_path, "fashion-softmax", "--epochs", "3", "--target-accuracy", "0.6",
                         "--eval-every", "2", *SLICE) == 0
    rec = record(tmp_path, "fashion-softmax")
    assert rec["target_accuracy"] == 0.6 and rec["target_split"] == "test"
    assert rec["accuracy_at_target"] >= 0.6 and rec["steps_to_target"] % 2 == 0
    assert rec["steps_to_target"] < 3 * 8 and rec["epochs"] <= 3
    assert 0 < rec["seconds_to_target"] <= rec["training_seconds"]
    unreachable = TrainConfig(model="fashion-softmax", epochs=1, limit_train=512, batch_size=256, target_accuracy=1.0,
                              eval_every=1)
    missed = train(unreachable, out_dir=tmp_path / "missed", log_dir=tmp_path / "log2")
    assert missed["seconds_to_target"] is None and missed["steps_to_target"] is None


def test_spiral_is_tested_on_held_out_points_and_logistic_reports_train_accuracy(tmp_path):
    train_x, _ = spiral.make_spiral(0)
    held_x, _ = spiral.eval_data()
    assert held_x.shape == train_x.shape and not np.allclose(held_x, train_x)
    assert tinyzoo_train(tmp_path, "spiral-mlp", "logistic-regression", "--dry-run") == 0
    spiral_rec, logistic = record(tmp_path, "spiral-mlp"), record(tmp_path, "logistic-regression")
    assert {"train_accuracy", "test_accuracy"} <= set(spiral_rec)
    assert "train_accuracy" in logistic and "test_accuracy" not in logistic  # 3 training points, nothing held out


def test_registry_entries_name_a_trainer():
    assert {e.family for e in REGISTRY.values()} == {"image", "sequence", "lesson"}
    for entry in REGISTRY.values():
        trainer = entry.trainer()
        assert trainer.family == entry.family and {"epochs", "lr", "seed", "dry_run"} <= trainer.honoured(entry)
