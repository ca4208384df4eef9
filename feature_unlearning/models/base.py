"""The generator protocol that every model in this package follows.

A generator maps latents ``z`` of shape ``(N, latent_dim)`` drawn from N(0, I) to images of shape
``(N, C, H, W)`` with values in [-1, 1]. GAN generators and VAE decoders both follow it, so collection,
directions, unlearning, metrics, the app and the notebooks never need to know which one they hold.

To bring your own architecture, subclass :class:`Generator` (and ``models._hub.HubModel``, this package's
``PyTorchModelHubMixin`` that records the architecture in config.json, if it should save and load as
safetensors + config.json), set ``latent_dim`` and ``image_shape`` and write ``forward(z)``; or wrap an
existing module with :class:`~feature_unlearning.models.GeneratorAdapter`. See
``tutorials/06_bring_your_own_model.ipynb``.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import torch
from torch import nn


class Generator(nn.Module):
    """Base class of the generator protocol.

    Subclasses set ``latent_dim`` (int) and ``image_shape`` (``(C, H, W)``) in ``__init__`` and
    implement ``forward(z)``: ``(N, latent_dim)`` -> ``(N, C, H, W)`` in [-1, 1].
    """

    latent_dim: int
    image_shape: tuple[int, int, int]

    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter (CPU for a model without parameters)."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def sample_latent(
        self,
        n: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` latents from the prior N(0, I), shape ``(n, latent_dim)``.

        The noise is drawn on the CPU and then moved to ``device`` (default: the model's device), so
        the same ``seed`` gives the same latents on every device.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed= or generator=, not both")
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(device if device is not None else self.device)

    @torch.no_grad()
    def generate(self, n: int, *, seed: int | None = None, batch_size: int = 1024) -> torch.Tensor:
        """Sample ``n`` images ``(n, C, H, W)`` in [-1, 1] (on the model's device), in eval mode."""
        z = self.sample_latent(n, seed=seed)
        return render(self, z, batch_size=batch_size)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that ``forward(z)`` uses, the ones unlearning fine-tunes.

        For a GAN generator that is every parameter; a VAE returns its decoder's only.
        """
        return self.parameters()


class UnflattenChannelsLast(nn.Unflatten):
    """``nn.Unflatten`` to ``(C, H, W)`` maps stored channels-last (NHWC), without parameters.

    PyTorch's CPU transposed convolutions (oneDNN) run much faster on channels-last inputs at the sizes of the
    digit generators: on the 2-core AMD EPYC of benchmarks/README ("Speed"), a batch of 64 through the DCGAN's
    64 -> 1 channel layer takes 1.9 ms instead of 7.4 ms. The values are those of ``nn.Unflatten`` (a
    layout, not a new computation); the convolutions' sums may differ from the NCHW ones in the last bits.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).contiguous(memory_format=torch.channels_last)


def run_channels_last(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` with the maps after the first layer kept channels-last (NHWC), for networks whose input can't
    carry that layout itself (one-channel images, 1x1 latents); see :class:`UnflattenChannelsLast` for why."""
    h = layers[0](x).contiguous(memory_format=torch.channels_last)
    for layer in itertools.islice(layers, 1, None):
        h = layer(h)
    return h


@torch.no_grad()
def render(model: nn.Module, z: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Images ``model(z)`` computed in batches, without gradients, with the model in eval mode.

    The model's training flag is restored afterwards. ``z`` is moved to the model's device.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters(), z).device
        if len(z) == 0:
            return torch.empty(0, *model.image_shape, device=device)
        return torch.cat([model(chunk.to(device)) for chunk in z.split(batch_size)])
    finally:
        model.train(was_training)
