"""Device, process group and CPU threads for one run; BatchNorm statistics over the global batch.

Under torchrun each of N ranks takes an equal shard of the same global batch and DDP averages the
gradients, so N processes take the same steps as one, up to float summation order, where:
  - the shuffled order and each sample's augmentation come from (seed, epoch, sample index)
    (training.augment), identical on every rank and for any sharding;
  - BatchNorm normalizes with the statistics of the whole global batch: torch's SyncBatchNorm on
    CUDA; on CPU, where SyncBatchNorm refuses to run (its forward accepts only GPU/XPU/PrivateUse1
    inputs), CrossRankBatchNorm below does the same with a differentiable all-reduce over gloo.
It cannot hold for dropout: each rank draws masks for its shard from its own generator, so the
masks differ from one process's; models with dropout match in distribution, not step for step.
"""
import os

import torch
import torch.distributed as dist
from torch import nn


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
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def cpu_threads() -> int:
    """This machine's cores shared by the processes on it (LOCAL_WORLD_SIZE, not the world size)."""
    if "TINYZOO_THREADS" in os.environ:
        return int(os.environ["TINYZOO_THREADS"])
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


class CrossRankBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are the global batch's: per-channel sums all-reduced
    (differentiably, so the backward pass sees every rank's samples too). For gloo/CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels, shape = x.shape[1], (1, -1, 1, 1)
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        totals = all_reduce(torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        var = totals[channels:2 * channels] / n - mean * mean
        with torch.no_grad():  # running statistics as BatchNorm2d keeps them (unbiased variance)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * n / (n - 1), self.momentum)
            self.num_batches_tracked += 1
        return (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps) * self.weight.view(shape) \
            + self.bias.view(shape)


def _cross_rank(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = CrossRankBatchNorm(child.num_features, child.eps, child.momentum).to(child.weight.device)
            synced.load_state_dict(child.state_dict())
            setattr(module, name, synced)
        else:
            _cross_rank(child)


def for_ranks(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """-> the module the training step calls: the model itself, or under DDP the model with global
    BatchNorm statistics wrapped in DistributedDataParallel (same parameter names and buffers)."""
    if world == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        _cross_rank(model)
    return nn.parallel.DistributedDataParallel(model)
