"""DCGAN (Radford et al., 2016, arXiv 1511.06434) sized for 28x28 grayscale digits."""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel
from .base import Generator, UnflattenChannelsLast, run_channels_last


class DCGANGenerator(Generator, HubModel):
    """z ``(N, latent_dim)`` -> images ``(N, channels, image_size, image_size)`` in [-1, 1].

    A linear layer to ``2*base_channels`` maps of side ``image_size // 4``, then two stride-2 transposed
    convolutions (kept small so that unlearning runs in seconds on a CPU). BatchNorm runs on its stored statistics in eval mode, so an image depends on its own
    latent only (the shipped checkpoints re-estimate those statistics after training).
    """

    def __init__(self, latent_dim: int = 32, channels: int = 1, image_size: int = 28, base_channels: int = 64):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        side, wide = image_size // 4, 2 * base_channels
        self.fc = nn.Linear(latent_dim, wide * side * side)
        self.net = nn.Sequential(
            UnflattenChannelsLast(1, (wide, side, side)),
            nn.BatchNorm2d(wide),
            nn.ReLU(),
            nn.ConvTranspose2d(wide, base_channels, 4, stride=2, padding=1, bias=False),  # side*2
            nn.BatchNorm2d(base_channels),
            nn.ReLU(),
            nn.ConvTranspose2d(base_channels, channels, 4, stride=2, padding=1),  # side*4
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z))


class DCGANDiscriminator(nn.Module):
    """images ``(N, channels, S, S)`` in [-1, 1] -> one real/fake logit per image ``(N,)``.

    Used only to train :class:`DCGANGenerator` (see :mod:`feature_unlearning.train`): DCGAN's strided
    convolutions with LeakyReLU and BatchNorm, then one linear layer. ``minibatch_std=True`` adds a
    minibatch standard-deviation channel (Karras et al., 2018, arXiv 1710.10196) before that layer; the
    shipped generator was trained without it.
    """

    def __init__(self, channels: int = 1, image_size: int = 28, base_channels: int = 64, minibatch_std: bool = False):
        super().__init__()
        side = image_size // 4
        self.minibatch_std = minibatch_std
        self.body = nn.Sequential(
            nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(base_channels, 2 * base_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * base_channels),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear((2 * base_channels + int(minibatch_std)) * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = run_channels_last(self.body, x)  # channels-last maps, as in the generator
        if self.minibatch_std:
            std = h.std(0, unbiased=False).mean().expand(h.shape[0], 1, *h.shape[2:])
            h = torch.cat([h, std], 1)
        return self.head(h.flatten(1)).squeeze(1)
