"""What one training run is asked to do: the config every trainer reads, the flags each honours.

torch-free: the CLI builds and checks a config (and refuses a flag a trainer would ignore) before
any trainer, and so torch, is imported.
"""
from dataclasses import asdict, dataclass, fields

# Run controls: how this invocation runs, not what is trained. A resumed run may change these
# (and --epochs); anything else differing from the saved run is refused.
RUN_CONTROLS = ("resume", "stop_after", "device")
SEQUENCE_OPTIONS = ("input_text", "target_text")
DRY_RUN_STEPS = 2  # a dry run of any family takes two optimizer steps
MAX_TEXT = 256  # sequence models: longest text pair trained on or served


class UsageError(ValueError):
    """A flag or flag combination the user can fix: the CLI prints one line and exits 2."""


@dataclass
class TrainConfig:
    model: str
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # peak LR for OneCycle
    weight_decay: float = 0.0  # decoupled (AdamW) L2
    l1: float = 0.0  # L1 penalty on weight matrices/kernels, added to the objective (logged apart)
    label_smoothing: float = 0.0  # objective only; the logged train_loss is plain cross-entropy
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
    dry_run: bool = False  # two optimizer steps on a small slice; writes no resumable state
    limit_train: int = 0  # use only the first N training images (0 = all)
    resume: bool = False  # continue from the run's saved state (<log-dir>/<id>/state.pt)
    stop_after: int = 0  # end this run after N epochs, state saved (time-boxed runs; 0 = all)
    target_accuracy: float = 0.0  # stop once the held-out accuracy reaches this (0 = train all epochs)
    eval_every: int = 0  # with --target-accuracy: steps between held-out checks, clock stopped (0 = per epoch)
    cuda_graph: str = "auto"  # auto (capture the step as a CUDA graph on one GPU) | off
    input_text: str = "hello"  # sequence models: what the model reads
    target_text: str = "ohlol"  # sequence models: what it should output, same length
    dropout: float | None = None  # image models with a dropout layer: its probability (None = the model's own)


def config_fields() -> list[str]:
    return [f.name for f in fields(TrainConfig) if f.name != "model"]


def config_for(model_id: str, overrides: dict) -> TrainConfig:
    """Registry recipe first, then whatever the command line set explicitly."""
    from training.registry import get_entry

    return TrainConfig(model=model_id, **{**get_entry(model_id).train, **overrides})


def check_honoured(entry, given: set[str], honoured: frozenset[str], family: str) -> None:
    """Refuse a flag the model's trainer would silently ignore."""
    ignored = sorted(given - honoured)
    if ignored:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in ignored)
        accepted = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(honoured))
        raise UsageError(f"{entry.id}: the {family} trainer does not use {flags} (it honours {accepted})")


def check_resumable(saved: dict, cfg: TrainConfig) -> None:
    """A resumed run must be the saved run, given more (or fewer) epochs: refuse anything else."""
    now = asdict(cfg)
    changed = [k for k in now if k not in (*RUN_CONTROLS, "epochs") and saved.get(k) != now[k]]
    if changed:
        diff = ", ".join(f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise UsageError(f"{cfg.model}: --resume refused, the saved run was trained with other settings ({diff}); "
                         f"only --epochs may change")


def check_text_pair(input_text: str, target_text: str) -> None:
    if not input_text or not target_text:
        raise UsageError("input and target text must both be non-empty")
    if len(input_text) != len(target_text):
        raise UsageError(f"input and target must have equal length: {input_text!r} has {len(input_text)} "
                         f"characters, {target_text!r} has {len(target_text)}")
    if len(input_text) > MAX_TEXT:
        raise UsageError(f"texts longer than {MAX_TEXT} characters")


def validate(cfg: TrainConfig) -> None:
    """Combinations no trainer can honour, whatever the family."""
    check_text_pair(cfg.input_text, cfg.target_text)
    if cfg.patience and not cfg.val_size:
        raise UsageError("early stopping (--patience) needs a validation split (--val-size)")
    if cfg.dry_run and (cfg.resume or cfg.stop_after):
        raise UsageError("--dry-run writes no resumable state: it cannot --resume or --stop-after")
    if not 0 <= cfg.target_accuracy <= 1:
        raise UsageError(f"--target-accuracy {cfg.target_accuracy} is not a fraction in [0, 1]")
    if cfg.eval_every and not cfg.target_accuracy:
        raise UsageError("--eval-every sets how often --target-accuracy is checked; give --target-accuracy")
    if cfg.dropout is not None and not 0 <= cfg.dropout < 1:
        raise UsageError(f"--dropout {cfg.dropout} is not a probability in [0, 1)")
    if cfg.epochs < 1 or cfg.lr < 0 or cfg.batch_size < 1:
        raise UsageError(f"--epochs and --batch-size must be >= 1 and --lr >= 0 "
                         f"(got {cfg.epochs}, {cfg.batch_size}, {cfg.lr})")
