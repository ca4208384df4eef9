"""Progressive GAN generator in the layout of facebookresearch/pytorch_GAN_zoo (its torch.hub ``PGAN``).

Karras et al., "Progressive Growing of GANs" (ICLR 2018, arXiv 1710.10196), as re-implemented by
pytorch_GAN_zoo (https://github.com/facebookresearch/pytorch_GAN_zoo, ``models/networks/progressive_conv_net.py``).
Our own code; its parameter names and shapes equal that repository's ``GNet.state_dict()``, so the
published torch.hub checkpoints (celebAHQ-256, celebAHQ-512, celeba 128) load with ``strict=True`` once
:mod:`feature_unlearning.convert` has turned them into safetensors.

Equalized learning rate: every layer stores N(0, 1)-scaled weights and multiplies its *output* (bias
included, as pytorch_GAN_zoo does) by He's constant sqrt(2 / fan_in) at run time.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._hub import HubModel
from .base import Generator


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit root-mean-square over channels (dim 1)."""
    return x * (x.pow(2).mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualizedLayer(nn.Module):
    """``module(x) * sqrt(2 / fan_in)``: a Linear or Conv2d with the equalized learning rate.

    The wrapped layer sits under ``.module`` (so its parameters are ``<name>.module.weight`` and
    ``<name>.module.bias``, as in pytorch_GAN_zoo's ``ConstrainedLayer``). With ``equalized=False`` the
    layer is used as is.
    """

    def __init__(self, module: nn.Linear | nn.Conv2d, *, equalized: bool = True):
        super().__init__()
        self.module = module
        nn.init.zeros_(module.bias)
        if equalized:
            nn.init.normal_(module.weight)
        fan_in = module.weight[0].numel()
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.scale


def _conv(c_in: int, c_out: int, kernel_size: int, equalized: bool) -> EqualizedLayer:
    return EqualizedLayer(nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), equalized=equalized)


class PGANGenerator(Generator, HubModel):
    """z ``(N, latent_dim)`` -> images ``(N, channels, S, S)`` in [-1, 1], S = 4 * 2**len(depth_other_scales).

    ``depth_scale0`` channels at 4x4, then one scale per entry of ``depth_other_scales`` (nearest 2x
    upsampling and two 3x3 convolutions each). Pixel norm on the latent and after every convolution,
    LeakyReLU(``leaky_relu_leak``). Only the last ``toRGBLayers`` entry draws the image; the others are
    the lower resolutions of progressive training, kept so that the published weights load strictly.

    The published models were trained with WGAN-GP and have no output activation (``tanh_output=False``);
    their images slightly overshoot [-1, 1], so :meth:`forward` clamps and :meth:`synthesize` does not.
    """

    def __init__(
        self,
        latent_dim: int = 512,
        depth_scale0: int = 512,
        depth_other_scales: Sequence[int] = (512, 512, 512, 256, 128, 64, 32),
        channels: int = 3,
        leaky_relu_leak: float = 0.2,
        normalization: bool = True,
        equalized_lr: bool = True,
        tanh_output: bool = False,  # pytorch_GAN_zoo adds tanh only for its 'DCGAN' and 'MSE' losses
    ):
        super().__init__()
        depths = [int(depth_scale0), *(int(d) for d in depth_other_scales)]
        if min(depths) < 1 or latent_dim < 1 or channels < 1:
            raise ValueError(
                f"latent_dim, channels and every depth must be >= 1; got {latent_dim}, {channels}, {depths}"
            )
        side = 4 * 2 ** (len(depths) - 1)
        self.latent_dim = int(latent_dim)
        self.image_shape = (int(channels), side, side)
        self.leaky_relu_leak = float(leaky_relu_leak)
        self.normalization = bool(normalization)
        self.tanh_output = bool(tanh_output)

        # Registration order follows pytorch_GAN_zoo's GNet, so state_dict() lists keys in its order.
        self.scaleLayers = nn.ModuleList(
            nn.ModuleList([_conv(c_in, c_out, 3, equalized_lr), _conv(c_out, c_out, 3, equalized_lr)])
            for c_in, c_out in zip(depths[:-1], depths[1:])
        )
        self.toRGBLayers = nn.ModuleList(_conv(d, channels, 1, equalized_lr) for d in depths)
        self.formatLayer = EqualizedLayer(nn.Linear(latent_dim, 16 * depths[0]), equalized=equalized_lr)
        self.groupScale0 = nn.ModuleList([_conv(depths[0], depths[0], 3, equalized_lr)])

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, self.leaky_relu_leak)
        return pixel_norm(x) if self.normalization else x

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """The published network's raw output ``(N, C, S, S)``, not clamped (what pytorch_GAN_zoo returns)."""
        x = pixel_norm(z) if self.normalization else z
        x = F.leaky_relu(self.formatLayer(x.flatten(1)), self.leaky_relu_leak)
        x = x.view(len(x), -1, 4, 4)
        x = pixel_norm(x) if self.normalization else x
        for conv in self.groupScale0:
            x = self._act(conv(x))
        for group in self.scaleLayers:
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # pytorch_GAN_zoo's Upscale2d
            for conv in group:
                x = self._act(conv(x))
        x = self.toRGBLayers[-1](x)
        return torch.tanh(x) if self.tanh_output else x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesize(z).clamp(-1.0, 1.0)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter except the unused lower-resolution ``toRGBLayers``."""
        unused = {id(p) for layer in self.toRGBLayers[:-1] for p in layer.parameters()}
        return (p for p in self.parameters() if id(p) not in unused)
