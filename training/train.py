"""Train registered models, each through its family's trainer (image, sequence, lesson).

    python -m training mnist-cnn                  # the shipped recipe (registry), writes models/
    python -m training fashion-mlp --epochs 3 --out-dir runs/try
    python -m training mnist-cnn --dry-run        # two steps on a small slice, for CI
    python -m training mnist-cnn --target-accuracy 0.99 --epochs 2 --batch-size 256 --lr 6e-3 \\
        --eval-every 50 --out-dir runs/speed        # time to 99%: stops at the target, clock stopped for evals

Every flag is honoured by the model's trainer or refused (exit 2): a lesson honours the
hyper-parameters its registry recipe names, a sequence model --epochs/--lr/--seed and its texts.

Writes <out-dir>/<id>.safetensors (weights only: loading runs no pickle) and <out-dir>/<id>.json
(model args, the config the trainer honoured, what it measured and on which split, per-epoch
history). Run state lives in <log-dir>/<id>/ (default runs/<id>/): metrics, curves, state.pt.
Dry runs log to runs/dry-run/ and write no state.pt, so they never meet a real run's --resume.
--resume continues the saved run if it was trained with the same settings, --epochs excepted
(anything else: exit 2); a changed --epochs rebuilds OneCycle for the new total and continues it at
the step reached, so the LR moves onto the longer (or shorter) cycle's curve there.
"""
import argparse
import sys
from dataclasses import fields
from pathlib import Path

from training.config import TrainConfig, UsageError, check_honoured, config_for, validate
from training.data import PROJECT_ROOT
from training.registry import REGISTRY, get_entry
from training.trainer import RunPaths

DEFAULT_OUT_DIR = PROJECT_ROOT / "models"
DEFAULT_LOG_DIR = PROJECT_ROOT / "runs"
DRY_RUN_DIR = DEFAULT_LOG_DIR / "dry-run"


def run_paths(cfg: TrainConfig, out_dir=None, log_dir=None, data_dir=None, download: bool = False) -> RunPaths:
    """Dry runs default to their own folder for both outputs and logs."""
    return RunPaths(out_dir=Path(out_dir or (DRY_RUN_DIR if cfg.dry_run else DEFAULT_OUT_DIR)),
                    log_dir=Path(log_dir or (DRY_RUN_DIR if cfg.dry_run else DEFAULT_LOG_DIR)),
                    data_dir=data_dir, download=download)


def train(cfg: TrainConfig, out_dir=None, log_dir=None, data_dir=None, download: bool = False) -> dict:
    """Train one model through its registry entry's trainer; -> the record it wrote."""
    entry = get_entry(cfg.model)
    validate(cfg)
    return entry.trainer().fit(entry, cfg, run_paths(cfg, out_dir, log_dir, data_dir, download))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyzoo train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help=f"model ids, or 'all'. Registered: {', '.join(REGISTRY)}")
    defaults = TrainConfig(model="")
    # None means "not given": the registry's recipe for that model wins over the dataclass default
    for f in fields(TrainConfig):
        if f.name == "model":
            continue
        flag, default = f"--{f.name.replace('_', '-')}", getattr(defaults, f.name)
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", default=None, help="default: off")
        elif f.name == "dropout":
            p.add_argument(flag, type=float, default=None, help="dropout probability, for a model whose recipe sets "
                                                                 "one (cnn, resnet), e.g. 0.1 (default: the recipe's)")
        else:
            p.add_argument(flag, type=type(default), default=None, help=f"default: the model's recipe, else {default!r}")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (env TINYZOO_DATA)")
    p.add_argument("--download", action="store_true", help="let torchvision download missing data (needs internet)")
    p.add_argument("--out-dir", default=None, help=f"default: {DEFAULT_OUT_DIR} ({DRY_RUN_DIR} with --dry-run)")
    p.add_argument("--log-dir", default=None, help=f"per-run metrics.jsonl, TensorBoard, curves.png, plots, state.pt "
                                                   f"(default: {DEFAULT_LOG_DIR}; {DRY_RUN_DIR} with --dry-run)")
    return p


def planned_configs(parser: argparse.ArgumentParser, args) -> list[TrainConfig]:
    """Every model's config, checked before any training starts: a typo or an ignored flag costs nothing."""
    ids = list(REGISTRY) if args.models == ["all"] else args.models
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        parser.error(f"unknown model {', '.join(map(repr, unknown))}; registered: {', '.join(REGISTRY)}")
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name != "model" and getattr(args, f.name) is not None}
    if ("input_text" in overrides) != ("target_text" in overrides):
        raise UsageError("--input-text and --target-text go together")
    configs = []
    for model_id in ids:
        entry = get_entry(model_id)
        trainer = entry.trainer()
        check_honoured(entry, set(overrides), trainer.honoured(entry), trainer.family)
        configs.append(config_for(model_id, overrides))
        validate(configs[-1])
    return configs


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for cfg in planned_configs(parser, args):
            train(cfg, args.out_dir, args.log_dir, args.data_dir, args.download)
    except UsageError as e:
        print(f"tinyzoo train: error: {e}", file=sys.stderr)
        return 2
    return 0
