"""Batched image augmentation whose randomness belongs to the sample, not to the batch or the process.

Each epoch draws, from a generator seeded by (seed, epoch) alone, one shuffled order and one row of
uniforms per training image (indexed by the image's position in the training set). A sample's
transform therefore depends only on (seed, epoch, sample index): any batch size, any number of DDP
ranks, and a resumed run all draw the same transform for the same image.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from training.config import UsageError

KINDS = ("none", "affine", "flip", "flip-shift")
UNIFORMS_PER_SAMPLE = 4  # affine: angle, scale, shift x, shift y; flips: flip, -, shift x, shift y


def epoch_generator(seed: int, epoch: int, device) -> torch.Generator:
    mixed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])  # no (seed, epoch) collisions
    return torch.Generator(device=device).manual_seed(mixed)


def epoch_draws(seed: int, epoch: int, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (order: permutation of n, uniforms [n, 4] in [0, 1) indexed by sample)."""
    gen = epoch_generator(seed, epoch, device)
    order = torch.randperm(n, generator=gen, device=device)
    return order, torch.rand(n, UNIFORMS_PER_SAMPLE, generator=gen, device=device)


def random_affine(x: torch.Tensor, kind: str, u: torch.Tensor) -> torch.Tensor:
    """[N,1,H,W] pixels in [0,1] (background 0) moved by each sample's uniforms u [N, 4]: one grid_sample."""
    n, _, h, w = x.shape
    if kind == "affine":  # digits: rotate ±10°, scale 0.9-1.1, shift ±2 px
        angle = (u[:, 0] * 2 - 1) * math.radians(10)
        scale = 1 + (u[:, 1] * 2 - 1) * 0.1
        shift = (u[:, 2:] * 2 - 1) * (2 * 2 / w)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    elif kind in ("flip", "flip-shift"):  # fashion: horizontal flip (+ whole-pixel shift ±2 px): exact, no blur
        flip = torch.where(u[:, 0] < 0.5, -1.0, 1.0)
        max_shift = 2 if kind == "flip-shift" else 0
        shift = (torch.floor(u[:, 2:] * (2 * max_shift + 1)) - max_shift) * (2 / w)
        zero, one = torch.zeros(n, device=x.device), torch.ones(n, device=x.device)
        theta = torch.stack([torch.stack([flip, zero, shift[:, 0]], 1), torch.stack([zero, one, shift[:, 1]], 1)], 1)
    else:
        raise ValueError(f"unknown augmentation {kind!r} ({' | '.join(KINDS)})")
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resolve_augment(augment: str, arch: str, dataset: str) -> str:
    if augment != "auto":
        if augment not in KINDS:
            raise UsageError(f"unknown augmentation {augment!r} (auto | {' | '.join(KINDS)})")
        return augment
    # Linear/MLP models can't use it; the small Fashion CNNs underfit already (course CNN: 89.2%
    # with flip-shift vs 90.6% without, at 15 epochs); the ResNet has the capacity to gain from it.
    if arch in ("softmax", "mlp"):
        return "none"
    if dataset == "mnist":
        return "affine"
    return "flip-shift" if arch == "resnet" else "none"
