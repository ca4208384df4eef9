"""A small CNN digit classifier: the ``digit:K`` feature oracle and the feature space of the metrics."""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel
from .base import run_channels_last


class DigitClassifier(nn.Module, HubModel):
    """images ``(N, channels, S, S)`` in [-1, 1] -> logits ``(N, num_classes)``.

    Three conv blocks (3x3 or ``kernel_size``, ReLU, 2x2 max-pool) then a ``feature_dim`` hidden layer;
    :meth:`features` returns that layer, the space in which Frechet distances are measured.
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 1,
        width: int = 32,
        kernel_size: int = 3,
        feature_dim: int = 128,
        dropout: float = 0.3,
    ):
        super().__init__()
        pad = kernel_size // 2
        blocks: list[nn.Module] = []
        c_in = channels
        for c_out in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(c_in, c_out, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(c_in * 9, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.num_classes = num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``(N, feature_dim)``."""
        # channels-last maps after the first convolution: the CPU's convolutions and pools run about twice as fast
        return self.hidden(run_channels_last(self.body, x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
