"""One optimizer step on one batch, eager or replayed from a CUDA graph.

The step keeps its running totals on the device (no .item() per step, so a GPU never waits on the
host): the plain cross-entropy logged as train_loss, the objective actually minimized (with label
smoothing) and the L1 penalty added to it, each reported under its own name.
"""
import torch
import torch.nn.functional as F

from training.config import TrainConfig

TOTALS = ("loss", "objective", "l1_penalty", "correct", "seen")
GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture: allocations, cuDNN autotuning


def l1_penalty(model) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters() if p.dim() > 1)


def graph_capturable(cfg: TrainConfig, device: torch.device, world: int) -> bool:
    """The step is captured on one GPU with a fused, capturable Adam(W) and a per-step (or no) schedule."""
    return (cfg.cuda_graph == "auto" and device.type == "cuda" and world == 1
            and cfg.optimizer in ("adamw", "adam") and cfg.scheduler in ("onecycle", "none"))


class Stepper:
    def __init__(self, model, net, optimizer, cfg: TrainConfig, device):
        self.model, self.net, self.optimizer, self.cfg = model, net, optimizer, cfg
        self.amp = cfg.amp and device.type == "cuda"
        self.totals = torch.zeros(len(TOTALS), device=device)
        self.set_to_none = True

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cuda", torch.bfloat16, enabled=self.amp):
            logits = self.net(x).float()
        loss = F.cross_entropy(logits, y)
        objective = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing) \
            if self.cfg.label_smoothing else loss
        penalty = self.cfg.l1 * l1_penalty(self.model) if self.cfg.l1 else loss.new_zeros(())
        (objective + penalty).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=self.set_to_none)
        n = torch.ones_like(loss) * len(y)
        correct = (logits.argmax(1) == y).sum().float()
        self.totals += torch.stack([loss.detach() * n, objective.detach() * n, penalty.detach() * n, correct, n])

    def take_totals(self, world: int) -> dict:
        """-> this epoch's train_* means over every rank's samples; the totals start again at zero."""
        totals = self.totals.clone()
        self.totals.zero_()
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(totals)
        loss, objective, penalty, correct, seen = totals.tolist()
        row = {"train_loss": loss / seen, "train_accuracy": correct / seen}
        if self.cfg.label_smoothing or self.cfg.l1:
            row["train_objective"] = (objective + penalty) / seen
        if self.cfg.l1:
            row["train_l1_penalty"] = penalty / seen
        return row


class GraphStepper(Stepper):
    """The whole step (forward, backward, fused Adam(W), totals) captured once and replayed: the small
    nets are launch-bound, and a replay is one launch instead of ~60. Batches have a fixed shape (the
    trainer drops the last partial batch). Warm-up steps change weights, moments and BatchNorm
    statistics; all are put back in place afterwards, so the run starts from its own state."""

    def __init__(self, model, net, optimizer, cfg: TrainConfig, device, batch_shape: tuple[int, ...]):
        super().__init__(model, net, optimizer, cfg, device)
        self.set_to_none = False  # gradients keep their addresses for the graph
        self.static_x = torch.zeros(batch_shape, device=device)
        self.static_y = torch.zeros(batch_shape[0], dtype=torch.long, device=device)
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        moments = {p: {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):
                super().__call__(self.static_x, self.static_y)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            super().__call__(self.static_x, self.static_y)
        model.load_state_dict(weights)  # copies in place: the graph still sees the same tensors
        for p, state in optimizer.state.items():
            for k, value in state.items():
                value.copy_(moments[p][k]) if p in moments else value.zero_()
        self.totals.zero_()
        torch.cuda.synchronize(device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.graph.replay()
