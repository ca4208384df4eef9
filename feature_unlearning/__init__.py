"""feature-unlearning: remove a chosen visual feature from a pretrained GAN or VAE.

Implements Moon, Cho & Kim, "Feature Unlearning for Pre-trained GANs and VAEs" (AAAI 2024,
arXiv 2303.05699). Importing the package loads no model.
"""

__version__ = "0.1.0"

from .hub import list_models, load_pretrained, save_pretrained
from .models import ConvVAE, DCGANGenerator, DigitClassifier, Generator, render

__all__ = [
    "ConvVAE",
    "DCGANGenerator",
    "DigitClassifier",
    "Generator",
    "list_models",
    "load_pretrained",
    "render",
    "save_pretrained",
]
