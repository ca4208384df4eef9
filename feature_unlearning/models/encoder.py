"""An image encoder for a generator's own images: the feature space of a click probe on faces.

A user's clicks say which of a few dozen faces wear glasses; to score *any* face (the student's too,
during unlearning), :class:`~feature_unlearning.features.LinearProbe` needs features in which such a
feature is close to linear. :class:`ImageEncoder` is trained on the generator's own pairs (z, G(z)) -
free and unlimited data - to regress the latent ``z`` and the generator's first hidden activation
(spatially averaged) from the image; the probe then uses its penultimate layer. See
``benchmarks/train_encoder.py`` (the recipe of the bundled ``digiface-encoder``) and
``benchmarks/faces.py`` (how well such a probe separates hand-labelled faces).
"""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel


class ImageEncoder(nn.Module, HubModel):
    """images ``(N, channels, image_size, image_size)`` in [-1, 1] -> features ``(N, feature_dim)``.

    Four stride-2 4x4 convolutions (LeakyReLU 0.2; ``width``, 2x, 4x, 4x channels), a linear layer to
    ``feature_dim`` (LeakyReLU): the features. Two linear heads read them: :meth:`latent` predicts the
    generator's latent ``(N, latent_dim)`` and :meth:`activation` its first hidden activation
    ``(N, activation_dim)`` (channel means after BatchNorm+ReLU, standardised); they exist for training.
    ``forward`` and :meth:`features` both return the features, so the encoder is a ``LinearProbe`` extractor.
    No BatchNorm: an image's features depend on that image only, in training and in eval mode.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        width: int = 32,
        feature_dim: int = 256,
        latent_dim: int = 100,
        activation_dim: int = 512,
    ):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {image_size}")
        self.image_shape = (int(channels), int(image_size), int(image_size))
        self.feature_dim, self.latent_dim, self.activation_dim = int(feature_dim), int(latent_dim), int(activation_dim)
        widths = [channels, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        side = image_size // 16
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(widths[-1] * side * side, feature_dim), nn.LeakyReLU(0.2))
        self.latent_head = nn.Linear(feature_dim, latent_dim)
        self.activation_head = nn.Linear(feature_dim, activation_dim) if activation_dim > 0 else None

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images (N, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``(N, feature_dim)`` (what a click probe is fitted on)."""
        self._check(x)
        return self.hidden(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted latent ``(N, latent_dim)`` of images ``x``."""
        return self.latent_head(self.features(x))

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted (standardised) first hidden activation of the generator ``(N, activation_dim)``."""
        if self.activation_head is None:
            raise ValueError("this encoder was built with activation_dim=0 (no activation head)")
        return self.activation_head(self.features(x))
