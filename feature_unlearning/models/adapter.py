"""Make any ``nn.Module`` that maps latents to images follow the generator protocol.

    from feature_unlearning.models.adapter import GeneratorAdapter
    model = GeneratorAdapter(my_net, latent_dim=128, image_shape=(3, 64, 64), output_range=(0, 1))
    new_model, history = fu.unlearn.unlearn(model, direction, t, config, oracle=oracle)

The wrapped module is fine-tuned in place of a built-in architecture: collection, directions, unlearning,
metrics and the app only call ``forward(z)``, ``latent_dim``, ``image_shape`` and ``sample_latent``.
Saving it as safetensors + config.json needs a class whose ``__init__`` can rebuild it; for that, write a
small :class:`~feature_unlearning.models.Generator` + ``HubModel`` subclass instead (see docs/faces.md).
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from .base import Generator


class GeneratorAdapter(Generator):
    """Wraps ``net`` so that ``forward(z)`` is ``(N, latent_dim)`` -> ``(N, C, H, W)`` in [-1, 1].

    ``net`` is called as ``net(z)`` (or ``net(z.view(N, latent_dim, 1, 1))`` when ``latent_as_image``
    is set, as DCGAN-style generators expect); its output, in ``output_range`` (``(0, 1)``, ``(0, 255)``,
    ``(-1, 1)`` ...), is mapped linearly to [-1, 1] and clamped. ``output`` picks the image out of a
    model that returns a dict, tuple or another object (for example ``lambda out: out["image"]``).
    ``trainable`` names the submodule of ``net`` that unlearning fine-tunes (for example ``"decoder"``;
    default: all of ``net``).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        output_range: tuple[float, float] = (-1.0, 1.0),
        latent_as_image: bool = False,
        output: Callable[[object], torch.Tensor] | None = None,
        trainable: str | None = None,
    ):
        super().__init__()
        lo, hi = (float(v) for v in output_range)
        if not hi > lo:
            raise ValueError(f"output_range must be (low, high) with high > low, got {output_range}")
        if len(tuple(image_shape)) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape}")
        self.net = net
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.output_range = (lo, hi)
        self.latent_as_image = latent_as_image
        self.output = output
        if trainable is not None:
            try:
                net.get_submodule(trainable)
            except AttributeError as err:
                raise ValueError(f"trainable={trainable!r} is not a submodule of {type(net).__name__}: {err}") from None
        self.trainable = trainable

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.latent_as_image:
            z = z.view(len(z), self.latent_dim, 1, 1)
        out = self.net(z)
        if self.output is not None:
            out = self.output(out)
        lo, hi = self.output_range
        if (lo, hi) != (-1.0, 1.0):
            out = (out - lo) * (2.0 / (hi - lo)) - 1.0
        return out.clamp(-1.0, 1.0)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        part = self.net if self.trainable is None else self.net.get_submodule(self.trainable)
        return part.parameters()
