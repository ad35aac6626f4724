"""The course's training toolkit: each option changes what it should (small slices, a few seconds each)."""
import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import require_dataset
from training.augment import random_affine
from training.config import TrainConfig, config_for
from training.train import train

SLICE = 4096


@pytest.fixture(autouse=True)
def fashion():
    require_dataset("fashion")


def run(tmp_path, name: str, model: str = "fashion-softmax", **options) -> dict:
    cfg = config_for(model, {"epochs": 2, "limit_train": SLICE, "batch_size": 256, **options})
    return train(cfg, out_dir=tmp_path / name, log_dir=tmp_path / f"{name}-log")


def weights(tmp_path, name: str, model: str = "fashion-softmax") -> torch.Tensor:
    return load_file(tmp_path / name / f"{model}.safetensors")["linear.weight"]


def test_weight_decay_shrinks_the_weights(tmp_path):
    run(tmp_path, "plain", optimizer="sgd", scheduler="none", lr=0.1, weight_decay=0.0)
    run(tmp_path, "decayed", optimizer="sgd", scheduler="none", lr=0.1, weight_decay=0.05)
    assert weights(tmp_path, "decayed").norm() < 0.9 * weights(tmp_path, "plain").norm()


def test_l1_penalty_shrinks_the_l1_norm(tmp_path):
    run(tmp_path, "plain", optimizer="sgd", scheduler="none", lr=0.1)
    run(tmp_path, "l1", optimizer="sgd", scheduler="none", lr=0.1, l1=2e-3)
    assert weights(tmp_path, "l1").abs().sum() < 0.9 * weights(tmp_path, "plain").abs().sum()


def test_validation_split_selects_on_val_and_tests_once(tmp_path):
    record = run(tmp_path, "val", epochs=3, val_size=1000)
    assert all("val_accuracy" in h and "test_accuracy" not in h for h in record["history"])
    best = max(record["history"], key=lambda h: h["val_accuracy"])
    assert record["selected_epoch"] == best["epoch"] and 0.5 < record["test_accuracy"] <= 1


def test_early_stopping_stops(tmp_path):
    # lr 0: the val accuracy can never improve on epoch 1's, so patience 1 ends the run at epoch 2
    record = run(tmp_path, "early", epochs=6, val_size=1000, patience=1, optimizer="sgd", scheduler="none", lr=0.0)
    assert record["stopped_early"] and record["epochs"] == 2


def test_early_stopping_needs_a_validation_split(tmp_path):
    with pytest.raises(ValueError, match="--val-size"):
        run(tmp_path, "bad", patience=2)


def test_resume_continues_with_the_identical_next_step(tmp_path):
    straight = run(tmp_path, "straight", model="fashion-cnn", epochs=2)
    first = run(tmp_path, "resumed", model="fashion-cnn", epochs=2, stop_after=1)
    assert first["stopped_at_epoch"] == 1
    resumed = run(tmp_path, "resumed", model="fashion-cnn", epochs=2, resume=True)
    assert resumed["history"][1]["train_loss"] == straight["history"][1]["train_loss"]
    a = load_file(tmp_path / "straight" / "fashion-cnn.safetensors")
    b = load_file(tmp_path / "resumed" / "fashion-cnn.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("scheduler, expected", [("step", [0.1, 0.05, 0.025]), ("none", [0.1, 0.1, 0.1])])
def test_schedulers_set_the_learning_rate(tmp_path, scheduler, expected):
    record = run(tmp_path, scheduler, epochs=3, optimizer="sgd", lr=0.1, scheduler=scheduler, step_size=1, gamma=0.5)
    assert [h["lr"] for h in record["history"]] == pytest.approx(expected)


def test_plateau_scheduler_and_adam_run(tmp_path):
    record = run(tmp_path, "plateau", epochs=3, optimizer="adam", scheduler="plateau", val_size=500)
    assert len(record["history"]) == 3 and record["test_accuracy"] > 0.5


def test_unknown_optimizer_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        run(tmp_path, "bad", optimizer="rmsprop")


def test_every_run_writes_metrics_curves_and_tensorboard(tmp_path):
    record = run(tmp_path, "logged", epochs=2)
    lines = [json.loads(line) for line in open(record["logs"]["metrics"])]
    assert [row["epoch"] for row in lines] == [1, 2] and all("train_loss" in row for row in lines)
    assert open(record["logs"]["curves"], "rb").read(4) == b"\x89PNG"
    assert list((tmp_path / "logged-log" / "fashion-softmax" / "tensorboard").glob("events.out.tfevents.*"))


def uniforms(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 4, generator=torch.Generator().manual_seed(seed))


def test_augmentations_move_pixels_and_keep_shapes():
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1
    for kind in ("affine", "flip-shift"):
        y = random_affine(x, kind, uniforms(8, 0))
        assert y.shape == x.shape and not torch.equal(y, x)
    shifted = random_affine(x, "flip-shift", uniforms(8, 1))
    assert torch.all((shifted.abs() < 1e-5) | ((shifted - 1).abs() < 1e-5))  # whole-pixel moves: no blur
    assert TrainConfig(model="x").augment == "auto"


def test_flip_mirrors_without_shifting():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 3:9] = 1  # off-centre block: a mirror moves it to columns 19-24
    y = random_affine(x, "flip", uniforms(64, 0))
    flipped = torch.tensor([torch.allclose(a, torch.flip(b, dims=[-1]), atol=1e-5) for a, b in zip(y, x)])
    kept = torch.tensor([torch.allclose(a, b, atol=1e-5) for a, b in zip(y, x)])
    assert torch.all(flipped | kept) and flipped.any() and kept.any()  # each image: mirrored or untouched


def test_label_smoothing_softens_the_logits(tmp_path):
    """Smoothed targets penalise confident logits: the trained weights come out smaller."""
    run(tmp_path, "hard", optimizer="sgd", scheduler="none", lr=0.1)
    run(tmp_path, "smooth", optimizer="sgd", scheduler="none", lr=0.1, label_smoothing=0.3)
    assert weights(tmp_path, "smooth").norm() < 0.95 * weights(tmp_path, "hard").norm()


def test_dropout_replaces_the_recipes_and_is_recorded(tmp_path):
    rec = run(tmp_path, "dropout", model="fashion-cnn", dropout=0.1, dry_run=True)
    assert rec["model_args"]["dropout"] == 0.1 and rec["config"]["dropout"] == 0.1
    assert config_for("fashion-cnn", {}).dropout is None  # not given: the recipe's 0.25 stands
    assert run(tmp_path, "recipe", model="fashion-cnn", dry_run=True)["model_args"]["dropout"] == 0.25
