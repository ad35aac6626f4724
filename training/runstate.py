"""One run's own folder, <log-dir>/<id>/: metrics.jsonl, TensorBoard, curves.png and state.pt.

state.pt is what --resume needs: weights, optimizer, scheduler, history, the run's config (a
resume with other settings is refused) and every random generator the next step draws from, so
the next step is bit-identical to an uninterrupted run's. Dry runs write none: they log under
runs/dry-run/ and leave nothing a later --resume could pick up.
"""
import json
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from training.config import TrainConfig, check_resumable

STATE_FILE = "state.pt"


class RunLog:
    """Rank 0's per-epoch log: metrics.jsonl (one line per epoch, flushed), TensorBoard, curves.png."""

    def __init__(self, run_dir: Path, resume: bool):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics = open(self.dir / "metrics.jsonl", "a" if resume else "w")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tensorboard = SummaryWriter(str(self.dir / "tensorboard"))
        except ImportError:  # tensorboard is in the train extra; a bare torch install still trains
            self.tensorboard = None

    def epoch(self, row: dict) -> None:
        self.metrics.write(json.dumps(row) + "\n")
        self.metrics.flush()
        if self.tensorboard:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, row["epoch"])

    def curves(self, history: list[dict], title: str) -> Path:
        from training.lessons.common import pyplot

        plt = pyplot()
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
        epochs = [h["epoch"] for h in history]
        for split in ("train", "val", "test"):
            if f"{split}_loss" in history[0]:
                loss_ax.plot(epochs, [h[f"{split}_loss"] for h in history], label=split)
                acc_ax.plot(epochs, [h[f"{split}_accuracy"] for h in history], label=split)
        loss_ax.set(xlabel="epoch", ylabel="cross-entropy (plain)", title=title)
        acc_ax.set(xlabel="epoch", ylabel="accuracy")
        loss_ax.legend()
        path = self.dir / "curves.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path

    def close(self) -> None:
        self.metrics.close()
        if self.tensorboard:
            self.tensorboard.close()


def rng_state() -> dict:
    """Every generator a training step may draw from (the augmentation's is derived per epoch)."""
    keys = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {"keys": torch.from_numpy(keys[1].astype(np.int64)), "pos": keys[2], "gauss": [keys[3], keys[4]]},
        "python": list(random.getstate()[1]),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    np.random.set_state(("MT19937", state["numpy"]["keys"].numpy().astype(np.uint32), state["numpy"]["pos"],
                         *state["numpy"]["gauss"]))
    random.setstate((3, tuple(state["python"]), None))


def all_ranks_rng() -> list[dict]:
    """-> each rank's generators (dropout draws differ per rank), gathered for rank 0 to save."""
    if not dist.is_initialized():
        return [rng_state()]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, rng_state())
    return gathered


def save_state(path: Path, cfg: TrainConfig, epoch: int, model, optimizer, scheduler, history: list[dict],
               best: dict | None, rng: list[dict]) -> None:
    torch.save({"config": asdict(cfg), "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else {},
                "history": history, "best": best, "rng": rng}, path)


def load_state(path: Path, cfg: TrainConfig, device) -> dict | None:
    """The saved run to continue, after checking it is the same run; None when there is none."""
    if not path.is_file():
        print(f"{cfg.model}: --resume found no saved state at {path}; starting from epoch 1", flush=True)
        return None
    state = torch.load(path, map_location=device, weights_only=True)  # no pickle code runs
    check_resumable(state["config"], cfg)
    return state


def restore_scheduler(scheduler, saved: dict, same_length: bool) -> None:
    """Continue the saved schedule; when --epochs changed, continue the schedule rebuilt for the new
    length at the step reached (OneCycle: the LR moves onto the longer cycle's curve at that step)."""
    if scheduler is None:
        return
    if same_length or "total_steps" not in saved:  # only OneCycle's schedule depends on the length
        scheduler.load_state_dict(saved)
        return
    scheduler.load_state_dict({k: v for k, v in saved.items() if k not in ("total_steps", "_schedule_phases")})
    scheduler.last_epoch -= 1
    scheduler.step()  # sets the optimizer's LR from the rebuilt schedule
