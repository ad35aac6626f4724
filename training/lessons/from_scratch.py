"""From scratch on Fashion-MNIST: softmax regression with a hand-written softmax and
cross-entropy, then the course's raw-tensor MLP 784-200-200-10 (kaiming init, torch.optim.SGD).

The course's MLP applied ReLU to its logits as well and stalled near 10%: a ReLU'd logit is
never negative and its gradient is zero wherever it is clipped, so a class whose logit goes
negative stops learning. Both versions are trained here with the same init, data and SGD, side
by side. The buggy one loses classes in the first epoch (7-13 points behind after it, seeds
0-3); whether they come back later, through the hidden layers the live classes keep
training, varies with the seed and even the CPU (final gap from -0.7 to +8 points).

    python -m training.lessons.from_scratch [--data-dir DIR]
"""
import argparse
import math

import torch
import torch.nn.functional as F

from training.data import load_split
from training.lessons.common import pyplot, save_figure


def load_fashion(data_dir=None):
    """-> (train x [60000, 784] in [0,1], train y, test x, test y) as tensors."""
    out = []
    for split in ("train", "test"):
        images, labels = load_split("fashion", split, data_dir)
        out += [torch.from_numpy(images.reshape(len(images), -1).copy()).float() / 255, torch.from_numpy(labels)]
    return out


def softmax(logits: torch.Tensor) -> torch.Tensor:
    exp = torch.exp(logits - logits.max(dim=1, keepdim=True).values)  # shift: no overflow
    return exp / exp.sum(dim=1, keepdim=True)


def cross_entropy(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -torch.log(probs[torch.arange(len(targets)), targets] + 1e-12).mean()


def batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def accuracy(predict, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((predict(x).argmax(1) == y).float().mean())


def softmax_regression(data, epochs: int = 10, lr: float = 0.1, batch_size: int = 256, seed: int = 0):
    """Parameters as raw tensors, the update written out: W -= lr * dW."""
    x, y, test_x, test_y = data
    g = torch.Generator().manual_seed(seed)
    W = (torch.randn(784, 10, generator=g) * 0.01).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    history = []
    for _ in range(epochs):
        for idx in batches(len(y), batch_size, g):
            loss = cross_entropy(softmax(x[idx] @ W + b), y[idx])
            loss.backward()
            with torch.no_grad():
                for p in (W, b):
                    p -= lr * p.grad
                    p.grad.zero_()
        history.append(accuracy(lambda v: v @ W + b, test_x, test_y))
    return history


def raw_mlp(data, relu_on_logits: bool, epochs: int = 5, lr: float = 0.01, batch_size: int = 64, seed: int = 0):
    """784-200-200-10 from tensors; kaiming init; torch.optim.SGD; nn.functional.cross_entropy."""
    x, y, test_x, test_y = data
    g = torch.Generator().manual_seed(seed)
    sizes = [784, 200, 200, 10]
    weights = [torch.randn(i, o, generator=g) * math.sqrt(2 / i) for i, o in zip(sizes[:-1], sizes[1:])]  # kaiming
    params = [w.requires_grad_() for w in weights] + [torch.zeros(o, requires_grad=True) for o in sizes[1:]]
    ws, bs = params[:3], params[3:]

    def forward(v):
        v = F.relu(v @ ws[0] + bs[0])
        v = F.relu(v @ ws[1] + bs[1])
        logits = v @ ws[2] + bs[2]
        return F.relu(logits) if relu_on_logits else logits  # the course's bug, or the fix

    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    history = []
    for _ in range(epochs):
        for idx in batches(len(y), batch_size, g):
            loss = F.cross_entropy(forward(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(accuracy(forward, test_x, test_y))
    return history


def run(data_dir=None, plots_dir=None, seed: int = 0) -> dict:
    data = load_fashion(data_dir)
    softmax_acc = softmax_regression(data, seed=seed)
    print(f"softmax regression from scratch (Fashion-MNIST test): {softmax_acc[-1]:.2%} after {len(softmax_acc)} epochs")
    buggy = raw_mlp(data, relu_on_logits=True, seed=seed)
    fixed = raw_mlp(data, relu_on_logits=False, seed=seed)
    print(f"raw MLP 784-200-200-10, ReLU on the logits (the course): {buggy[-1]:.2%}")
    print(f"raw MLP 784-200-200-10, plain logits (the fix):          {fixed[-1]:.2%}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(range(1, len(softmax_acc) + 1), softmax_acc, label="softmax regression")
    ax.plot(range(1, len(buggy) + 1), buggy, label="MLP, ReLU on logits")
    ax.plot(range(1, len(fixed) + 1), fixed, label="MLP, fixed")
    ax.set(xlabel="epoch", ylabel="test accuracy", title="from scratch on Fashion-MNIST")
    ax.legend()
    plot = save_figure(fig, "from-scratch-accuracy", plots_dir)
    return {"softmax_accuracy": softmax_acc[-1], "mlp_relu_logits_accuracy": buggy[-1],
            "mlp_fixed_accuracy": fixed[-1], "mlp_relu_logits_history": buggy, "mlp_fixed_history": fixed,
            "plots": [str(plot)]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files (env TINYZOO_DATA)")
    p.add_argument("--plots-dir", default=None, help="where the PNGs go (default runs/lessons, env TINYZOO_PLOTS)")
    args = p.parse_args(argv)
    run(args.data_dir, args.plots_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
