"""Model architectures. Each is a ``PyTorchModelHubMixin``: safetensors + config.json on disk."""

from ._hub import ARCHITECTURES, HubModel
from .base import Generator, render
from .classifier import DigitClassifier
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .vae import ConvVAE

__all__ = [
    "ARCHITECTURES",
    "ConvVAE",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DigitClassifier",
    "Generator",
    "HubModel",
    "render",
]
