"""Progressive GAN generator in the layout of genforce/sefa (the Hub repo ``huggan/pggan-celebahq-1024``).

Karras et al.'s official CelebA-HQ 1024x1024 model (ICLR 2018, arXiv 1710.10196), converted from
TensorFlow by genforce (https://github.com/genforce/sefa, ``models/pggan_generator.py``) and uploaded
to the Hugging Face Hub as a pickled ``pytorch_model.bin`` by the HugGAN community. Our own code; its
parameter names and shapes equal that ``PGGANGenerator.state_dict()`` (``lod``, ``layer{i}.weight``,
``layer{i}.bias``, ``output{k}.weight``, ``output{k}.bias``), so the weights load with ``strict=True``
after :mod:`feature_unlearning.convert`.

Weight scaling (the equalized learning rate) as in that code: weights are stored N(0, 1)-scaled and
multiplied by ``gain / sqrt(fan_in)`` at run time (gain sqrt(2), 1 for the RGB layers); the bias is not
scaled. Every block first pixel-normalises its input.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ._hub import HubModel
from .base import Generator
from .pgan import pixel_norm

RESOLUTIONS = (8, 16, 32, 64, 128, 256, 512, 1024)


class WScaleConv(nn.Module):
    """Pixel norm, optional nearest 2x upsampling, a convolution with run-time weight scaling, activation.

    Holds ``weight`` ``(out, in, k, k)`` and ``bias`` ``(out,)`` directly, as genforce's ``ConvBlock`` does.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int = 3,
        *,
        padding: int = 1,
        upsample: bool = False,
        gain: float = math.sqrt(2.0),
        activation: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.wscale = gain / math.sqrt(kernel_size * kernel_size * c_in)
        self.padding = padding
        self.upsample = upsample
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.conv2d(x, self.weight * self.wscale, self.bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) if self.activation else x


class PGGANGenerator(Generator, HubModel):
    """z ``(N, latent_dim)`` -> images ``(N, channels, resolution, resolution)`` in [-1, 1].

    Block 0 turns the pixel-normalised latent (viewed as ``(N, latent_dim, 1, 1)``) into 4x4 maps with a
    4x4 convolution padded by 3 (TensorFlow's dense layer), then a 3x3 convolution; each further block
    doubles the side. ``fmaps_base // res`` feature maps at side ``res``, at most ``fmaps_max``. Only the
    last ``output{k}`` layer draws the image (the others served progressive training; they are kept so
    that the published weights load strictly). The published model has no output activation
    (``final_tanh=False``): :meth:`forward` clamps to [-1, 1], :meth:`synthesize` does not.
    """

    def __init__(
        self,
        resolution: int = 1024,
        latent_dim: int = 512,
        channels: int = 3,
        fmaps_base: int = 16 << 10,
        fmaps_max: int = 512,
        final_tanh: bool = False,
    ):
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
        self.latent_dim = int(latent_dim)
        self.image_shape = (int(channels), int(resolution), int(resolution))
        self.final_tanh = bool(final_tanh)
        self.num_blocks = int(math.log2(resolution)) - 1  # sides 4, 8, ..., resolution
        # A scalar level of detail, part of the published state dict; only lod = 0 (full resolution) is used.
        self.register_buffer("lod", torch.zeros(()))

        def nf(res: int) -> int:
            return min(fmaps_base // res, fmaps_max)

        for block in range(self.num_blocks):
            res = 4 * 2**block
            if block == 0:
                first = WScaleConv(latent_dim, nf(res), 4, padding=3)
            else:
                first = WScaleConv(nf(res // 2), nf(res), upsample=True)
            self.add_module(f"layer{2 * block}", first)
            self.add_module(f"layer{2 * block + 1}", WScaleConv(nf(res), nf(res)))
            self.add_module(f"output{block}", WScaleConv(nf(res), channels, 1, padding=0, gain=1.0, activation=False))

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """The published network's raw output ``(N, C, R, R)`` (not clamped), at full resolution."""
        x = pixel_norm(z).view(len(z), self.latent_dim, 1, 1)  # normalised again inside layer0, as published
        for i in range(2 * self.num_blocks):
            x = getattr(self, f"layer{i}")(x)
        image = getattr(self, f"output{self.num_blocks - 1}")(x)
        return torch.tanh(image) if self.final_tanh else image

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesize(z).clamp(-1.0, 1.0)

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter except the unused lower-resolution ``output{k}`` layers."""
        unused = {id(p) for k in range(self.num_blocks - 1) for p in getattr(self, f"output{k}").parameters()}
        return (p for p in self.parameters() if id(p) not in unused)
