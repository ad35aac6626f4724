"""One trainer interface for image, sequence and lesson models, and the one writer of their results.

A registry entry names its trainer family (entry.trainer()); `tinyzoo train` and the tests call
fit() through it and never branch on the kind of model. Every trainer ends in write_record():
<out-dir>/<id>.safetensors (weights only: loading runs no pickle) and <out-dir>/<id>.json (model
args, the config the trainer honoured, what was measured and on which split, per-epoch history).
"""
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import save_file

from training.config import TrainConfig
from training.models import count_parameters

SHARED_OPTIONS = frozenset({"epochs", "lr", "seed", "dry_run"})  # every trainer honours these


@dataclass
class RunPaths:
    out_dir: Path  # checkpoint + record
    log_dir: Path  # <log-dir>/<id>/: metrics.jsonl, curves.png, TensorBoard, plots, state.pt
    data_dir: str | None = None
    download: bool = False

    def run_dir(self, model_id: str) -> Path:
        return Path(self.log_dir) / model_id


class Trainer(Protocol):
    family: str

    def honoured(self, entry) -> frozenset[str]:
        """The TrainConfig fields this trainer reads for `entry`; the CLI refuses any other flag."""

    def fit(self, entry, cfg: TrainConfig, paths: RunPaths) -> dict:
        """Train, then write_record(); -> the record."""


def honoured_config(cfg: TrainConfig, honoured: frozenset[str], fixed: dict | None = None) -> dict:
    """The config as the trainer used it: the fields it read, plus what it fixes (e.g. its optimizer)."""
    return {"model": cfg.model, **{k: v for k, v in asdict(cfg).items() if k in honoured}, **(fixed or {})}


def write_record(entry, model: torch.nn.Module, out_dir: Path, *, config: dict, history: list[dict],
                 seconds: float, epochs: int, device: str = "cpu", model_args: dict | None = None,
                 **measured) -> dict:
    """Checkpoint + JSON record, the same shape for every family; `measured` names its split
    (train_accuracy, test_accuracy, ...) so nothing reads a training-set figure as a test result."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out_dir / f"{entry.id}.safetensors")
    record = {
        "id": entry.id, "dataset": entry.dataset, "arch": entry.arch,
        "model_args": entry.model_args if model_args is None else model_args,
        "config": config, "params": count_parameters(model), **measured,
        "epochs": epochs, "seconds_per_epoch": seconds / max(epochs, 1), "device": device,
        "torch_version": torch.__version__, "history": history,
    }
    (out_dir / f"{entry.id}.json").write_text(json.dumps(record, indent=2) + "\n")
    shown = ", ".join(f"{k} {v:.4f}" for k, v in measured.items() if k.endswith("accuracy") and v is not None)
    print(f"wrote {out_dir / entry.id}.safetensors (+ .json){': ' + shown if shown else ''}", flush=True)
    return record
