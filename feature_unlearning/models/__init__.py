"""Model architectures. Each is a ``PyTorchModelHubMixin``: safetensors + config.json on disk."""

from ._hub import ARCHITECTURES, HubModel
from .adapter import GeneratorAdapter
from .base import Generator, render
from .classifier import DigitClassifier
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan64 import DCGAN64Generator
from .encoder import ImageEncoder
from .pgan import PGANGenerator
from .pggan import PGGANGenerator
from .vae import ConvVAE

__all__ = [
    "ARCHITECTURES",
    "ConvVAE",
    "DCGAN64Generator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DigitClassifier",
    "Generator",
    "GeneratorAdapter",
    "HubModel",
    "ImageEncoder",
    "PGANGenerator",
    "PGGANGenerator",
    "render",
]
