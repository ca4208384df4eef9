"""feature-unlearning: remove a chosen visual feature from a pretrained GAN or VAE.

Implements Moon, Cho & Kim, "Feature Unlearning for Pre-trained GANs and VAEs" (AAAI 2024,
arXiv 2303.05699). The whole flow from this namespace:

    import feature_unlearning as fu
    model = fu.load_pretrained("mnist-dcgan")
    feature = fu.Feature.from_oracle(model, "digit:8")         # oracle -> samples -> direction, threshold
    result = feature.unlearn(model, fu.UnlearnConfig())        # an UnlearnResult; the original is untouched
    print(result.compare(n=2000))                              # before/after on the same latents
    result.save("mnist-dcgan-without-8")                       # model + card

Importing the package loads no model; the names below the models are imported on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .hub import list_models, load_pretrained, save_pretrained
from .models import ConvVAE, DCGANGenerator, DigitClassifier, Generator, GeneratorAdapter, render

# imported now (cheap: torch only, no model): importing a submodule later would rebind the package's
# ``unlearn`` to the module of that name, so the function must be bound after it
from .unlearn import History, UnlearnConfig, UnlearningDiverged, unlearn

# name -> submodule that defines it, imported when the name is first used
_LAZY = {
    "Feature": "feature",
    "UnlearnResult": "result",
    "compare": "metrics",
    "frechet_distance": "metrics",
    "preservation": "metrics",
    "Oracle": "oracles",
    "StrokeThickness": "oracles",
    "DigitClass": "oracles",
    "Selection": "oracles",
    "LinearProbe": "oracles",
    "Collection": "oracles",
    "collect": "oracles",
    "get_oracle": "oracles",
    "feature_direction": "directions",
    "threshold": "directions",
    "project": "directions",
    "translate": "directions",
    "traverse": "directions",
    "latent_attack": "attack",
    "Workspace": "session",
}
_SUBMODULES = (
    "attack", "baselines", "convert", "data", "directions", "feature", "hub", "metrics", "models", "oracles",
    "result", "session", "train", "unlearn", "utils", "viz",
)

__all__ = [
    "ConvVAE",
    "DCGANGenerator",
    "DigitClassifier",
    "Generator",
    "GeneratorAdapter",
    "list_models",
    "load_pretrained",
    "render",
    "save_pretrained",
    "History",
    "UnlearnConfig",
    "UnlearningDiverged",
    "unlearn",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
