"""An image encoder for a generator's own images: the feature space of a click probe on faces.

A user's clicks say which of a few dozen faces wear glasses; to score *any* face (the student's too,
during unlearning), :class:`~feature_unlearning.oracles.LinearProbe` needs features in which such a
feature is close to linear. :class:`ImageEncoder` is trained on the generator's own pairs (z, G(z)) -
free and unlimited data - to regress the latent ``z`` and the generator's first hidden activation
(spatially averaged) from the image; the probe then uses its predicted latent (``features_from="latent"``,
the bundled setting: on hand-labelled faces a probe on it separated glasses better than one on the
penultimate layer or on the true latents' mean difference). See
``benchmarks/train_encoder.py`` (the recipe of the bundled ``digiface-encoder``) and
``benchmarks/faces.py`` (how well such a probe separates hand-labelled faces).
"""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel


class ImageEncoder(nn.Module, HubModel):
    """images ``(N, channels, image_size, image_size)`` in [-1, 1] -> features ``(N, out_dim)``.

    Four stride-2 4x4 convolutions (LeakyReLU 0.2; ``width``, 2x, 4x, 4x channels) and a linear layer to
    ``feature_dim`` (LeakyReLU): :meth:`hidden_features`. Two linear heads read that layer: :meth:`latent`
    predicts the generator's latent ``(N, latent_dim)`` and :meth:`activation` its first hidden activation
    ``(N, activation_dim)`` (channel means after BatchNorm+ReLU, standardised). ``forward`` and
    :meth:`features` return what a ``LinearProbe`` is fitted on, chosen by ``features_from``: ``"latent"``
    (the predicted latent), ``"hidden"`` (the ``feature_dim`` layer) or ``"hidden+latent"`` (both, concatenated).
    No BatchNorm: an image's features depend on that image only, in training and in eval mode.

    ``mirror=True`` (the bundled face encoder) makes :meth:`features` the mean of the image's features and its
    left-right mirror image's: a face wears glasses or a hat whichever way it is flipped, so a probe on them
    learns from each click twice over and cannot key on which side a detail sits (on the hand-labelled faces,
    a glasses probe from three pages of clicks: AUC 0.87 -> 0.92; ``benchmarks/results/faces.md``).
    """

    FEATURES_FROM = ("latent", "hidden", "hidden+latent")

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        width: int = 32,
        feature_dim: int = 256,
        latent_dim: int = 100,
        activation_dim: int = 512,
        features_from: str = "latent",
        mirror: bool = False,
    ):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {image_size}")
        if features_from not in self.FEATURES_FROM:
            raise ValueError(f"features_from must be one of {self.FEATURES_FROM}, got {features_from!r}")
        self.image_shape = (int(channels), int(image_size), int(image_size))
        self.feature_dim, self.latent_dim, self.activation_dim = int(feature_dim), int(latent_dim), int(activation_dim)
        self.features_from = features_from
        self.mirror = bool(mirror)
        widths = [channels, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        side = image_size // 16
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(widths[-1] * side * side, feature_dim), nn.LeakyReLU(0.2))
        self.latent_head = nn.Linear(feature_dim, latent_dim)
        self.activation_head = nn.Linear(feature_dim, activation_dim) if activation_dim > 0 else None

    @property
    def out_dim(self) -> int:
        """The width of :meth:`features`."""
        return {"latent": self.latent_dim, "hidden": self.feature_dim}.get(
            self.features_from, self.feature_dim + self.latent_dim
        )

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images (N, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")

    def hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``(N, feature_dim)``."""
        self._check(x)
        # channels-last (NHWC) maps: the CPU's convolutions run faster on them (see models.base.UnflattenChannelsLast)
        return self.hidden(self.body(x.contiguous(memory_format=torch.channels_last)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What a click probe is fitted on ``(N, out_dim)`` (see ``features_from`` and ``mirror``)."""
        if self.mirror:
            return self._features(torch.cat([x, x.flip(-1)])).unflatten(0, (2, len(x))).mean(0)
        return self._features(x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden_features(x)
        if self.features_from == "hidden":
            return h
        z = self.latent_head(h)
        return z if self.features_from == "latent" else torch.cat([h, z], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted latent ``(N, latent_dim)`` of images ``x``."""
        return self.latent_head(self.hidden_features(x))

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted (standardised) first hidden activation of the generator ``(N, activation_dim)``."""
        if self.activation_head is None:
            raise ValueError("this encoder was built with activation_dim=0 (no activation head)")
        return self.activation_head(self.hidden_features(x))
