"""A small residual network for 28x28 digits: the independent judge ``mnist-judge-resnet``.

Another family than the oracle :class:`~feature_unlearning.models.DigitClassifier` (plain convolutions,
max-pooling, a dense hidden layer, no normalisation): pre-activation residual blocks (He et al., 2016,
arXiv 1603.05027) with BatchNorm, strided downsampling and global average pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel


class _Block(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus a 1x1 strided shortcut if needed."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if stride != 1 or c_in != c_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(x))
        out = self.conv1(h)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + self.shortcut(h if not isinstance(self.shortcut, nn.Identity) else x)


class DigitResNet(nn.Module, HubModel):
    """images ``(N, channels, 28, 28)`` in [-1, 1] -> logits ``(N, num_classes)``.

    A 3x3 stem, then one residual block per stage at ``width``, ``2*width``, ``4*width`` channels
    (28 -> 14 -> 7 px), BN-ReLU, global average pooling and a linear classifier.
    """

    def __init__(self, num_classes: int = 10, channels: int = 1, width: int = 8):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.stages = nn.Sequential(
            _Block(width, width, 1), _Block(width, 2 * width, 2), _Block(2 * width, 4 * width, 2)
        )
        self.post = nn.Sequential(nn.BatchNorm2d(4 * width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled activations ``(N, 4 * width)``."""
        return self.post(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
