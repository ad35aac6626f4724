"""The image trainer (MNIST / Fashion-MNIST): whole dataset as in-memory tensors, per-sample
augmentation, seeded, read as named steps the way pytorch/examples' mnist is:
setup_data -> build -> (train_epoch -> end_of_epoch: evaluate, checkpoint)* -> finish (record).

--target-accuracy turns a run into a time-to-accuracy run, as DAWNBench/MLPerf time them: every
--eval-every steps the clock stops, the held-out split (val with --val-size, else test) is
evaluated, and the run ends once it reaches the target; the record carries target_accuracy,
seconds_to_target (training seconds only) and steps_to_target.
"""
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.augment import epoch_draws, random_affine, resolve_augment
from training.config import DRY_RUN_STEPS, SEQUENCE_OPTIONS, TrainConfig, UsageError, config_fields
from training.data import load_split
from training.distributed import cpu_threads, for_ranks, init_distributed, pick_device
from training.runstate import STATE_FILE, RunLog, all_ranks_rng, load_state, restore_scheduler, save_state, \
    set_rng_state
from training.step import GraphStepper, Stepper, graph_capturable
from training.trainer import RunPaths, honoured_config, write_record

DRY_RUN_TEST = 512  # test images a dry run evaluates on


class Normalizer:
    """uint8 [N,H,W] -> float [N,C,H,W] normalized with the registry's mean/std."""

    def __init__(self, entry, device):
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(entry.input.mean, device=device).view(shape)
        self.std = torch.tensor(entry.input.std, device=device).view(shape)

    def pixels(self, images_u8: torch.Tensor) -> torch.Tensor:
        return images_u8.unsqueeze(1).float().div_(255)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.mean) / self.std


@dataclass
class Splits:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    def held_out(self) -> tuple[str, torch.Tensor, torch.Tensor]:
        """The split a run selects and stops on: val when held out of training, else test."""
        return ("val", self.val_x, self.val_y) if self.val_x is not None else ("test", self.test_x, self.test_y)


def setup_data(entry, cfg: TrainConfig, paths: RunPaths, device) -> Splits:
    train_x, train_y = load_split(entry.dataset, "train", paths.data_dir, paths.download)
    test_x, test_y = load_split(entry.dataset, "test", paths.data_dir, paths.download)
    if cfg.limit_train:
        train_x, train_y = train_x[:cfg.limit_train], train_y[:cfg.limit_train]
    if cfg.dry_run:
        test_x, test_y = test_x[:DRY_RUN_TEST], test_y[:DRY_RUN_TEST]
    arrays = [train_x, train_y, test_x, test_y]
    if cfg.val_size:
        if cfg.val_size >= len(train_y):
            raise UsageError(f"--val-size {cfg.val_size} leaves no training images (of {len(train_y)})")
        order = np.random.default_rng(cfg.seed).permutation(len(train_y))  # its own RNG: training order unchanged
        val, kept = order[:cfg.val_size], order[cfg.val_size:]
        arrays = [train_x[kept], train_y[kept], test_x, test_y, train_x[val], train_y[val]]
    return Splits(*(torch.tensor(a, device=device) for a in arrays))


def make_optimizer(model, cfg: TrainConfig, graph: bool):
    # on the CUDA-graph path the LR is a device tensor the schedule fills in place, and the fused
    # Adam(W) keeps its step count on the GPU (capturable)
    lr = torch.tensor(cfg.lr, device=next(model.parameters()).device) if graph else cfg.lr
    fast = {"fused": True, "capturable": True} if graph else {}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay, **fast)
    if cfg.optimizer == "adam":  # L2 added to the gradient (coupled), as the course's weight_decay
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay, **fast)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise UsageError(f"unknown optimizer {cfg.optimizer!r} (adamw | adam | sgd)")


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int, graph: bool):
    if cfg.scheduler == "onecycle":
        # a captured step bakes in Adam's beta1, so the graph path keeps it fixed (no momentum cycling)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=total_steps,
                                                   cycle_momentum=not graph)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=1)
    if cfg.scheduler == "none":
        return None
    raise UsageError(f"unknown scheduler {cfg.scheduler!r} (onecycle | step | plateau | none)")


class Stopwatch:
    """Training seconds only: stopped around evaluations; CUDA work is waited for at each edge."""

    def __init__(self, device):
        self.device, self.total, self.started = device, 0.0, None

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self.started = time.perf_counter()

    def stop(self) -> None:
        if self.started is not None:
            self._sync()
            self.total += time.perf_counter() - self.started
            self.started = None


@dataclass
class ImageRun:
    """What one run carries from step to step."""
    entry: object
    cfg: TrainConfig
    paths: RunPaths
    device: torch.device
    rank: int
    world: int
    data: Splits
    model: torch.nn.Module
    normalize: Normalizer
    optimizer: torch.optim.Optimizer
    scheduler: object
    stepper: Stepper
    epochs: int
    steps_per_epoch: int
    log: RunLog | None
    clock: Stopwatch
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    first_epoch: int = 1
    steps: int = 0
    reached: dict | None = None  # {"seconds", "step", "accuracy"} once --target-accuracy is met

    @property
    def state_path(self):
        return self.paths.run_dir(self.cfg.model) / STATE_FILE


def model_args(entry, cfg: TrainConfig) -> dict:
    """The registry's args, with --dropout (when given) in place of the model's own."""
    return entry.model_args if cfg.dropout is None else {**entry.model_args, "dropout": cfg.dropout}


def build(entry, cfg: TrainConfig, paths: RunPaths) -> ImageRun:
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)  # the initial weights are part of the run
    data = setup_data(entry, cfg, paths, device)
    model = entry.build(**model_args(entry, cfg)).to(device)
    rank, world = init_distributed(device)
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size} must split evenly over {world} processes")
    graph = graph_capturable(cfg, device, world)
    n = len(data.train_y)
    steps_per_epoch = DRY_RUN_STEPS if cfg.dry_run else (n // cfg.batch_size if graph else math.ceil(n / cfg.batch_size))
    epochs = 1 if cfg.dry_run else cfg.epochs
    net = for_ranks(model, device, world)  # before the optimizer: BatchNorm conversion makes new parameters
    optimizer = make_optimizer(model, cfg, graph)
    scheduler = make_scheduler(optimizer, cfg, epochs * steps_per_epoch, graph)
    log = RunLog(paths.run_dir(cfg.model), cfg.resume) if rank == 0 else None  # rank 0 writes
    torch.manual_seed(cfg.seed + rank)  # dropout: each rank its own masks
    run = ImageRun(entry, cfg, paths, device, rank, world, data, model, Normalizer(entry, device), optimizer,
                   scheduler, Stepper(model, net, optimizer, cfg, device), epochs, steps_per_epoch, log,
                   Stopwatch(device))
    if cfg.resume:
        resume(run)
    if graph:  # captured after any resume, so the graph replays the restored weights and moments
        run.stepper = GraphStepper(model, net, optimizer, cfg, device, (cfg.batch_size, *entry.input.shape))
    return run


def resume(run: ImageRun) -> None:
    state = load_state(run.state_path, run.cfg, run.device)
    if state is None:
        return
    if len(state["rng"]) != run.world:  # each rank continues its own generators
        raise UsageError(f"{run.cfg.model}: --resume refused, the saved run had {len(state['rng'])} process(es), "
                         f"this one has {run.world}")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    restore_scheduler(run.scheduler, state["scheduler"], state["config"]["epochs"] == run.cfg.epochs)
    set_rng_state(state["rng"][run.rank])
    run.history, run.best, run.first_epoch = state["history"], state["best"], state["epoch"] + 1
    run.steps = state["epoch"] * run.steps_per_epoch
    if run.log:
        print(f"{run.cfg.model}: resuming after epoch {state['epoch']} of {run.epochs}", flush=True)


@torch.no_grad()
def evaluate(model, images_u8, labels, normalize: Normalizer, batch_size: int) -> tuple[float, float]:
    """-> (mean plain cross-entropy, accuracy) over the given split."""
    model.eval()
    loss_sum = torch.zeros((), device=labels.device)
    correct = torch.zeros((), device=labels.device, dtype=torch.long)
    for start in range(0, len(labels), batch_size):
        logits = model(normalize(normalize.pixels(images_u8[start:start + batch_size])))
        y = labels[start:start + batch_size]
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(labels), correct.item() / len(labels)


def target_reached(run: ImageRun, accuracy: float) -> bool:
    if run.cfg.target_accuracy and run.reached is None and accuracy >= run.cfg.target_accuracy:
        run.reached = {"seconds": run.clock.total, "step": run.steps, "accuracy": accuracy}
        if run.log:
            print(f"{run.cfg.model}: {accuracy:.4f} >= {run.cfg.target_accuracy} at step {run.steps} after "
                  f"{run.clock.total:.3f} s of training", flush=True)
    return run.reached is not None


def check_target(run: ImageRun) -> bool:
    """Mid-epoch target check: clock stopped while the held-out split is evaluated."""
    run.clock.stop()
    _, x, y = run.data.held_out()
    _, accuracy = evaluate(run.model, x, y, run.normalize, run.cfg.eval_batch_size)
    run.model.train()
    if target_reached(run, accuracy):
        return True
    run.clock.start()
    return False


def train_epoch(run: ImageRun, epoch: int) -> dict:
    cfg, data = run.cfg, run.data
    augment = cfg.augment
    order, uniforms = epoch_draws(cfg.seed, epoch, len(data.train_y), run.device)
    run.model.train()
    before = run.clock.total
    run.clock.start()
    bar = tqdm(range(run.steps_per_epoch), desc=f"{cfg.model} epoch {epoch}/{run.epochs}", mininterval=1.0,
               leave=False, disable=run.rank != 0)
    for step in bar:
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size][run.rank::run.world]
        pixels = run.normalize.pixels(data.train_x[idx])
        if augment != "none":
            pixels = random_affine(pixels, augment, uniforms[idx])
        run.stepper(run.normalize(pixels), data.train_y[idx])
        if cfg.scheduler == "onecycle":
            run.scheduler.step()
        run.steps += 1
        if cfg.eval_every and run.steps % cfg.eval_every == 0 and check_target(run):
            break
    run.clock.stop()
    lr = float(run.optimizer.param_groups[0]["lr"])
    return {"epoch": epoch, "lr": lr, **run.stepper.take_totals(run.world), "seconds": run.clock.total - before}


def end_of_epoch(run: ImageRun, row: dict) -> None:
    """Evaluate, step the per-epoch schedulers, log, save the resumable state."""
    cfg = run.cfg
    split, x, y = run.data.held_out()  # the test set is not looked at until the end when val exists
    row[f"{split}_loss"], row[f"{split}_accuracy"] = evaluate(run.model, x, y, run.normalize, cfg.eval_batch_size)
    if split == "val" and (run.best is None or row["val_accuracy"] > run.best["val_accuracy"]):
        run.best = {"epoch": row["epoch"], "val_accuracy": row["val_accuracy"],
                    "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()}}
    target_reached(run, row[f"{split}_accuracy"])
    if cfg.scheduler == "step":
        run.scheduler.step()
    elif cfg.scheduler == "plateau":
        run.scheduler.step(row.get("val_loss", row["train_loss"]))
    run.history.append(row)
    rng = all_ranks_rng() if not cfg.dry_run else None  # a collective: every rank takes part
    if run.log:
        run.log.epoch(row)
        shown = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy")))
        print(f"{cfg.model} epoch {row['epoch']}/{run.epochs}: {shown} | lr {row['lr']:.2e} | "
              f"{row['seconds']:.1f}s", flush=True)
        if rng is not None:  # dry runs leave nothing a later --resume could pick up
            save_state(run.state_path, cfg, row["epoch"], run.model, run.optimizer, run.scheduler, run.history,
                       run.best, rng)


def stop_reason(run: ImageRun, epoch: int) -> str | None:
    cfg = run.cfg
    if run.reached:
        return "target"
    if cfg.patience and epoch - run.best["epoch"] >= cfg.patience:
        if run.log:
            print(f"{cfg.model}: early stop, val accuracy last improved at epoch {run.best['epoch']}")
        return "early"
    if cfg.stop_after and epoch - run.first_epoch + 1 >= cfg.stop_after and epoch < run.epochs:
        if run.log:
            print(f"{cfg.model}: stopping after {cfg.stop_after} epoch(s) this run; --resume continues")
        return "paused"
    return None


def target_fields(run: ImageRun) -> dict:
    if not run.cfg.target_accuracy:
        return {}
    reached = run.reached or {}
    return {"target_accuracy": run.cfg.target_accuracy, "target_split": run.data.held_out()[0],
            "seconds_to_target": reached.get("seconds"), "steps_to_target": reached.get("step"),
            "accuracy_at_target": reached.get("accuracy"), "training_seconds": run.clock.total}


def finish(run: ImageRun, stopped: str | None) -> dict:
    """The selected weights, the one look at the test set, then rank 0 writes checkpoint + record."""
    if run.best is not None:
        run.model.load_state_dict(run.best["model"])
    test_loss, test_acc = evaluate(run.model, run.data.test_x, run.data.test_y, run.normalize,
                                   run.cfg.eval_batch_size)
    if run.log is None:
        return {"id": run.cfg.model, "rank": run.rank, "test_accuracy": test_acc, "history": run.history}
    curves = run.log.curves(run.history, run.cfg.model)
    run.log.close()
    return write_record(
        run.entry, run.model, run.paths.out_dir, config=honoured_config(run.cfg, TRAINER.honoured(run.entry)),
        history=run.history, seconds=sum(h["seconds"] for h in run.history), epochs=len(run.history),
        model_args=model_args(run.entry, run.cfg), device=str(run.device), test_accuracy=test_acc, test_loss=test_loss, test_examples=len(run.data.test_y),
        selected_epoch=run.best["epoch"] if run.best else len(run.history), stopped_early=stopped == "early",
        **target_fields(run), processes=run.world, threads=torch.get_num_threads(),
        logs={"metrics": str(run.log.dir / "metrics.jsonl"), "curves": str(curves)})


class ImageTrainer:
    family = "image"

    def honoured(self, entry) -> frozenset[str]:
        no_dropout = set() if "dropout" in entry.model_args else {"dropout"}  # --dropout replaces the recipe's
        return frozenset(config_fields()) - set(SEQUENCE_OPTIONS) - no_dropout

    def fit(self, entry, cfg: TrainConfig, paths: RunPaths) -> dict:
        cfg = replace(cfg, augment=resolve_augment(cfg.augment, entry.arch, entry.dataset))
        torch.set_num_threads(cpu_threads())
        run = build(entry, cfg, paths)
        stopped = None
        for epoch in range(run.first_epoch, run.epochs + 1):
            row = train_epoch(run, epoch)
            end_of_epoch(run, row)
            stopped = stop_reason(run, epoch)
            if stopped:
                break
        if stopped == "paused":
            if run.log:
                run.log.close()
            return {"id": cfg.model, "stopped_at_epoch": epoch, "history": run.history}
        return finish(run, stopped)


TRAINER = ImageTrainer()
