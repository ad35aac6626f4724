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


class LeNet5(nn.Module):
    """LeCun's LeNet-5 on 28x28 (padding 2 stands in for the original 32x32 input).

    modern=False: tanh + average pooling, as in 1998; modern=True: ReLU + max pooling.
    """

    def __init__(self, num_classes: int = 10, modern: bool = True, dropout: float = 0.0):
        super().__init__()
        act, pool = (nn.ReLU, nn.MaxPool2d) if modern else (nn.Tanh, nn.AvgPool2d)
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), act(), pool(2),   # [N,6,14,14]
            nn.Conv2d(6, 16, 5), act(), pool(2),             # [N,16,5,5]
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), act(), nn.Dropout(dropout),
                                  nn.Linear(120, 84), act(), nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False), nn.BatchNorm2d(channels_out), nn.ReLU(),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False), nn.BatchNorm2d(channels_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and channels_in == channels_out else nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet sized for 28x28: stem, three stages of `blocks` residual blocks at width, 2x, 4x
    (28 -> 14 -> 7 pixels), global average pooling, dropout, linear."""

    def __init__(self, num_classes: int = 10, width: int = 32, blocks: int = 2, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                layers.append(ResidualBlock(channels, out, stride=2 if stage and b == 0 else 1))
                channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
