"""A convolutional VAE (Kingma & Welling, 2014, arXiv 1312.6114) for 28x28 grayscale digits."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ._hub import HubModel
from .base import Generator, UnflattenChannelsLast


class ConvVAE(Generator, HubModel):
    """A VAE whose ``forward(z)`` is its decoder, so it follows the generator protocol.

    ``encode(x)`` maps images ``(N, C, S, S)`` in [-1, 1] to the posterior's ``(mu, logvar)``, each
    ``(N, latent_dim)``. The decoder models pixel intensities in [0, 1] as Bernoulli; ``decode_logits``
    returns those logits and ``forward`` maps them to [-1, 1] (``tanh(l / 2) == 2 * sigmoid(l) - 1``).
    """

    def __init__(
        self,
        latent_dim: int = 8,
        channels: int = 1,
        image_size: int = 28,
        base_channels: int = 32,
        hidden_dim: int = 128,
    ):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        side, wide = image_size // 4, 2 * base_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(base_channels, wide, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(wide * side * side, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, wide * side * side),
            nn.ReLU(),
            UnflattenChannelsLast(1, (wide, side, side)),
            nn.ConvTranspose2d(wide, base_channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(base_channels, channels, 4, stride=2, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)`` for images ``x`` in [-1, 1]."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of the pixel intensities, ``(N, C, S, S)``."""
        return self.decoder(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(0.5 * self.decode_logits(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of ``x``: images in [-1, 1] -> images in [-1, 1]."""
        return self(self.encode(x)[0])

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        return self.decoder.parameters()
