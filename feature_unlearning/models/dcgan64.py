"""DCGAN-64 generator in the layout of the PyTorch DCGAN tutorial and the HugGAN sprint.

Radford et al., DCGAN (ICLR 2016, arXiv 1511.06434), as written in PyTorch's official CelebA tutorial
(https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html) and in HugGAN's training script
(https://github.com/huggingface/community-events, ``huggan/pytorch/dcgan/modeling_dcgan.py``), whose
checkpoints are on the Hub as ``pytorch_model.bin``. Our own code; its parameter names and shapes equal
that ``Generator.state_dict()`` (``model.0.weight`` ... ``model.12.weight``). The tutorial's ``netG``
names the same sequence ``main``; :mod:`feature_unlearning.convert` renames it.
"""

from __future__ import annotations

import torch
from torch import nn

from ._hub import HubModel
from .base import Generator, run_channels_last


class DCGAN64Generator(Generator, HubModel):
    """z ``(N, latent_dim)`` -> images ``(N, channels, 64, 64)`` in [-1, 1].

    Five transposed convolutions (4x4 from the 1x1 latent, then four stride-2 doublings) with
    BatchNorm and ReLU between them and tanh at the end; ``hidden_size * 8`` channels at 4x4, halving at
    each doubling. In eval mode BatchNorm uses the stored statistics, so an image depends on its own
    latent only.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 3, hidden_size: int = 64):
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.image_shape = (int(channels), 64, 64)
        widths = [hidden_size * 8, hidden_size * 4, hidden_size * 2, hidden_size]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False)]  # 1 -> 4 px
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False)]
        self.model = nn.Sequential(*layers, nn.Tanh())
        for m in self.modules():  # the DCGAN paper's initialisation
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return run_channels_last(self.model, z.view(len(z), self.latent_dim, 1, 1))
