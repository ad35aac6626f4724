"""The course's image classifiers. Every module maps [N, 1, 28, 28] normalized pixels -> [N, classes] logits."""
import torch
from torch import nn


class SoftmaxRegression(nn.Module):
    """One linear layer; softmax lives in the loss (train) and the runtime (serve)."""

    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """The course's 784-512-256-128-64-10 ReLU stack."""

    def __init__(self, sizes: tuple[int, ...] = (784, 512, 256, 128, 64, 10), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CourseCNN(nn.Module):
    """conv(1->10, 5) -> pool -> conv(10->20, 5) -> pool -> 320 features -> fc.

    hidden=0 is the lecture's single fc 320->10; hidden=50 adds pytorch/examples' fc 320->50->10.
    """

    def __init__(self, num_classes: int = 10, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(),   # [N,10,12,12]
            nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),  # [N,20,4,4] = 320
        )
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        if hidden:
            head += [nn.Linear(320, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)]
        else:
            head.append(nn.Linear(320, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
