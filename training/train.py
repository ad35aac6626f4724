"""Train one registered model: whole dataset as in-memory tensors, batched augmentation, seeded.

    python -m training mnist-cnn                  # the shipped recipe (registry), writes models/
    python -m training fashion-mlp --epochs 3 --out-dir runs/try
    python -m training mnist-cnn --dry-run        # 2 batches on a small slice, for CI

Writes <out-dir>/<id>.safetensors (weights only: loading runs no pickle) and <out-dir>/<id>.json
(model args, the full train config, per-epoch metrics, measured test accuracy).
"""
import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from training.charrnn import TextPair, TextPairError, train_charrnn
from training.data import PROJECT_ROOT, load_split
from training.models import count_parameters
from training.registry import REGISTRY, ModelEntry, get_entry

DEFAULT_OUT_DIR = PROJECT_ROOT / "models"


@dataclass
class TrainConfig:
    model: str
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # peak LR for OneCycle
    weight_decay: float = 0.0  # decoupled (AdamW) L2
    l1: float = 0.0  # L1 penalty on weight matrices/kernels, added to the loss
    label_smoothing: float = 0.0  # training loss only; reported losses are plain cross-entropy
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.9  # sgd only
    scheduler: str = "onecycle"  # onecycle (per step) | step | plateau (per epoch) | none
    step_size: int = 5  # step: epochs between LR drops
    gamma: float = 0.1  # step / plateau: LR factor
    val_size: int = 0  # hold out N training images: select the best epoch on them, test once at the end
    patience: int = 0  # early stopping: epochs without a better val accuracy (needs val_size)
    augment: str = "auto"  # auto (digit CNNs: affine, else none) | none | affine | flip | flip-shift
    seed: int = 0
    eval_batch_size: int = 1000
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = False  # bf16 autocast on CUDA (ignored on CPU)
    dry_run: bool = False
    limit_train: int = 0  # use only the first N training images (0 = all)
    resume: bool = False  # continue from the run's saved state (<log-dir>/<id>/state.pt)
    stop_after: int = 0  # end this run after N epochs, state saved (time-boxed runs; 0 = all)


def resolve_augment(cfg: TrainConfig, entry: ModelEntry) -> str:
    if cfg.augment != "auto":
        return cfg.augment
    # Linear/MLP models can't use it; the small Fashion CNNs underfit already (course CNN: 89.2%
    # with flip-shift vs 90.6% without, at 15 epochs); the ResNet has the capacity to gain from it.
    if entry.arch in ("softmax", "mlp"):
        return "none"
    if entry.dataset == "mnist":
        return "affine"
    return "flip-shift" if entry.arch == "resnet" else "none"


def random_affine(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Batched augmentation on [N,1,H,W] pixels in [0,1] (background 0): one grid_sample, no per-sample Python."""
    n, _, h, w = x.shape
    rand = lambda *shape: torch.rand(*shape, generator=gen, device=x.device)  # noqa: E731
    if kind == "affine":  # digits: rotate ±10°, scale 0.9-1.1, shift ±2 px
        angle = (rand(n) * 2 - 1) * math.radians(10)
        scale = 1 + (rand(n) * 2 - 1) * 0.1
        shift = (rand(n, 2) * 2 - 1) * (2 * 2 / w)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    elif kind in ("flip", "flip-shift"):  # fashion: horizontal flip (+ whole-pixel shift ±2 px): exact, no blur
        flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
        max_shift = 2 if kind == "flip-shift" else 0
        shift = (torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen, device=x.device).float()) * (2 / w)
        zero, one = torch.zeros(n, device=x.device), torch.ones(n, device=x.device)
        theta = torch.stack([torch.stack([flip, zero, shift[:, 0]], 1), torch.stack([zero, one, shift[:, 1]], 1)], 1)
    else:
        raise ValueError(f"unknown augmentation {kind!r}")
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class Normalizer:
    """uint8 [N,H,W] -> float [N,C,H,W] normalized with the registry's mean/std."""

    def __init__(self, entry: ModelEntry, device):
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(entry.input.mean, device=device).view(shape)
        self.std = torch.tensor(entry.input.std, device=device).view(shape)

    def pixels(self, images_u8: torch.Tensor) -> torch.Tensor:
        return images_u8.unsqueeze(1).float().div_(255)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


@torch.no_grad()
def evaluate(model, images_u8, labels, normalize: Normalizer, batch_size: int) -> tuple[float, float]:
    """-> (mean cross-entropy, accuracy) over the given split."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        x = normalize(normalize.pixels(images_u8[start:start + batch_size]))
        y = labels[start:start + batch_size]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return loss_sum / len(labels), correct / len(labels)


def make_optimizer(model, cfg: TrainConfig):
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":  # L2 added to the gradient (coupled), as the course's weight_decay
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adamw | adam | sgd)")


def make_scheduler(optimizer, cfg: TrainConfig, epochs: int, steps_per_epoch: int):
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=epochs * steps_per_epoch)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=1)
    if cfg.scheduler == "none":
        return None
    raise ValueError(f"unknown scheduler {cfg.scheduler!r} (onecycle | step | plateau | none)")


def l1_penalty(model) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters() if p.dim() > 1)


class RunLog:
    """<log-dir>/<id>/: metrics.jsonl (one line per epoch, flushed), TensorBoard events, curves.png, state.pt."""

    def __init__(self, log_dir: Path, model_id: str, resume: bool):
        self.dir = Path(log_dir) / model_id
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
        loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title=title)
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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per torchrun process
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """-> (rank, world size). Under torchrun (WORLD_SIZE > 1): a process group, gloo on CPU, NCCL on GPU."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def train(cfg: TrainConfig, data_dir=None, out_dir: Path = DEFAULT_OUT_DIR, download: bool = False,
          log_dir: Path | None = None) -> dict:
    entry = get_entry(cfg.model)
    device = pick_device(cfg.device)
    if cfg.patience and not cfg.val_size:
        raise ValueError("early stopping (--patience) needs a validation split (--val-size)")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)

    train_x, train_y = load_split(entry.dataset, "train", data_dir, download)
    test_x, test_y = load_split(entry.dataset, "test", data_dir, download)
    if cfg.limit_train:
        train_x, train_y = train_x[:cfg.limit_train], train_y[:cfg.limit_train]
    if cfg.dry_run:
        test_x, test_y = test_x[:512], test_y[:512]
    val_x = val_y = None
    if cfg.val_size:
        if cfg.val_size >= len(train_y):
            raise ValueError(f"--val-size {cfg.val_size} leaves no training images (of {len(train_y)})")
        order = np.random.default_rng(cfg.seed).permutation(len(train_y))  # its own RNG: training order unchanged
        val_x, val_y = train_x[order[:cfg.val_size]], train_y[order[:cfg.val_size]]
        train_x, train_y = train_x[order[cfg.val_size:]], train_y[order[cfg.val_size:]]
        val_x, val_y = (torch.tensor(a, device=device) for a in (val_x, val_y))
    train_x, train_y, test_x, test_y = (torch.tensor(a, device=device) for a in (train_x, train_y, test_x, test_y))

    model = entry.make_model().to(device)
    rank, world = init_distributed(device)
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} must split evenly over {world} processes")
    # DDP averages the ranks' gradients: each rank takes an equal shard of the same global batch,
    # so N processes take the same steps as one (same seed -> same shuffled order everywhere)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    normalize = Normalizer(entry, device)
    augment = resolve_augment(cfg, entry)
    steps_per_epoch = 2 if cfg.dry_run else math.ceil(len(train_y) / cfg.batch_size)
    epochs = 1 if cfg.dry_run else cfg.epochs
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, epochs, steps_per_epoch)
    log = RunLog(log_dir or (PROJECT_ROOT / "runs"), cfg.model, cfg.resume) if rank == 0 else None  # rank 0 writes
    state_path = Path(log_dir or (PROJECT_ROOT / "runs")) / cfg.model / "state.pt"

    history, best, first_epoch = [], None, 1
    if cfg.resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)  # no pickle code runs
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler:
            scheduler.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"].cpu())
        history, best, first_epoch = state["history"], state["best"], state["epoch"] + 1
        print(f"{cfg.model}: resuming after epoch {state['epoch']}")

    stopped_early = False
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(train_y), generator=gen, device=device)
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg.model} epoch {epoch}/{epochs}", mininterval=1.0, leave=False)
        seen, correct, loss_sum = 0, 0, 0.0
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size][rank::world]
            pixels = normalize.pixels(train_x[idx])
            if augment != "none":
                pixels = random_affine(pixels, augment, gen)
            with torch.autocast("cuda", torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
                logits = net(normalize(pixels))
                loss = F.cross_entropy(logits.float(), train_y[idx], label_smoothing=cfg.label_smoothing)
            if cfg.l1:
                loss = loss + cfg.l1 * l1_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if cfg.scheduler == "onecycle":
                scheduler.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == train_y[idx]).sum().item()
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum / seen,
               "train_accuracy": correct / seen, "seconds": time.perf_counter() - started}
        if val_x is not None:  # the test set is not looked at until the end
            row["val_loss"], row["val_accuracy"] = evaluate(model, val_x, val_y, normalize, cfg.eval_batch_size)
            if best is None or row["val_accuracy"] > best["val_accuracy"]:
                best = {"epoch": epoch, "val_accuracy": row["val_accuracy"],
                        "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        else:
            row["test_loss"], row["test_accuracy"] = evaluate(model, test_x, test_y, normalize, cfg.eval_batch_size)
        if cfg.scheduler == "step":
            scheduler.step()
        elif cfg.scheduler == "plateau":
            scheduler.step(row.get("val_loss", row["train_loss"]))
        history.append(row)
        if log:
            log.epoch(row)
            shown = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy")))
            print(f"{cfg.model} epoch {epoch}/{epochs}: {shown} | lr {row['lr']:.2e} | {row['seconds']:.1f}s",
                  flush=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler else {}, "generator": gen.get_state(),
                        "torch_rng": torch.get_rng_state(), "history": history, "best": best, "epoch": epoch},
                       state_path)
        if cfg.patience and epoch - best["epoch"] >= cfg.patience:
            print(f"{cfg.model}: early stop, val accuracy last improved at epoch {best['epoch']}")
            stopped_early = True
            break
        if cfg.stop_after and epoch - first_epoch + 1 >= cfg.stop_after and epoch < epochs:
            if log:
                print(f"{cfg.model}: stopping after {cfg.stop_after} epoch(s) this run; --resume continues")
                log.close()
            return {"id": cfg.model, "stopped_at_epoch": epoch, "history": history}

    if best is not None:  # the selected epoch's weights, then the one look at the test set
        model.load_state_dict(best["model"])
    test_loss, test_acc = evaluate(model, test_x, test_y, normalize, cfg.eval_batch_size)
    if log is None:  # other ranks: rank 0 writes the checkpoint and the record
        return {"id": cfg.model, "rank": rank, "test_accuracy": test_acc, "history": history}
    curves = log.curves(history, cfg.model)
    log.close()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.cpu()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out_dir / f"{cfg.model}.safetensors")
    record = {
        "id": cfg.model,
        "dataset": entry.dataset,
        "arch": entry.arch,
        "model_args": entry.model_args,
        "config": {**asdict(cfg), "augment": augment},
        "params": count_parameters(model),
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "test_examples": len(test_y),
        "selected_epoch": best["epoch"] if best else len(history),
        "stopped_early": stopped_early,
        "seconds_per_epoch": sum(h["seconds"] for h in history) / len(history),
        "epochs": len(history),
        "device": str(device),
        "processes": world,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "history": history,
        "logs": {"metrics": str(log.dir / "metrics.jsonl"), "curves": str(curves)},
    }
    (out_dir / f"{cfg.model}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out_dir / cfg.model}.safetensors (+ .json): test accuracy {record['test_accuracy']:.4f}")
    return record


def config_for(model_id: str, overrides: dict) -> TrainConfig:
    """Registry recipe first, then whatever the command line set explicitly."""
    entry = get_entry(model_id)
    return TrainConfig(model=model_id, **{**entry.train, **overrides})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help=f"model ids, or 'all'. Registered: {', '.join(REGISTRY)}")
    defaults = TrainConfig(model="")
    # None means "not given": the registry's recipe for that model wins over the dataclass default
    for f in fields(TrainConfig):
        if f.name in ("model", "dry_run"):
            continue
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", default=None)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=None,
                           help=f"default: the model's recipe, else {default!r}")
    p.add_argument("--dry-run", action="store_true", help="1 epoch of 2 batches, test on 512 images (CI)")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (env TINYZOO_DATA)")
    p.add_argument("--download", action="store_true", help="let torchvision download missing data (needs internet)")
    p.add_argument("--out-dir", default=None, help=f"default: {DEFAULT_OUT_DIR} (runs/dry-run with --dry-run)")
    p.add_argument("--log-dir", default=None, help="per-run metrics.jsonl, TensorBoard, curves.png, state.pt "
                                                   "(default: runs/)")
    p.add_argument("--input-text", default=None, help="sequence models: input string (default 'hello')")
    p.add_argument("--target-text", default=None, help="sequence models: target string, same length (default 'ohlol')")
    return p


def text_pair(parser: argparse.ArgumentParser, args, ids: list[str]) -> TextPair:
    if args.input_text is None and args.target_text is None:
        return TextPair()
    if args.input_text is None or args.target_text is None:
        parser.error("--input-text and --target-text go together")
    not_sequence = [i for i in ids if get_entry(i).task != "sequence-prediction"]
    if not_sequence:
        parser.error(f"--input-text/--target-text apply to sequence models only, not {', '.join(not_sequence)}")
    pair = TextPair(args.input_text, args.target_text)
    try:
        pair.validate()
    except TextPairError as e:
        parser.error(str(e))
    return pair


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ids = list(REGISTRY) if args.models == ["all"] else args.models
    for model_id in ids:
        get_entry(model_id)  # fail on a typo before any training starts
    pair = text_pair(parser, args, ids)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name not in ("model", "dry_run") and getattr(args, f.name) is not None}
    overrides["dry_run"] = args.dry_run
    out_dir = Path(args.out_dir or (PROJECT_ROOT / "runs" / "dry-run" if args.dry_run else DEFAULT_OUT_DIR))
    processes = int(os.environ.get("WORLD_SIZE", 1))  # torchrun: share the cores between processes
    torch.set_num_threads(int(os.environ.get("TINYZOO_THREADS", max(1, (os.cpu_count() or 1) // processes))))
    for model_id in ids:
        cfg = config_for(model_id, overrides)
        entry = get_entry(model_id)
        if entry.lesson is not None:
            entry.lesson.run(entry, out_dir, seed=cfg.seed)
        elif entry.task == "sequence-prediction":
            train_charrnn(entry, pair, 2 if cfg.dry_run else cfg.epochs, cfg.lr, cfg.seed, out_dir)
        else:
            train(cfg, args.data_dir, out_dir, args.download, args.log_dir and Path(args.log_dir))
    return 0
