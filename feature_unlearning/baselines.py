"""What feature unlearning is compared with, behind the same interface (a generator in, a generator out).

* :func:`retrain_without` -- the gold standard: train the base model again from scratch on training data
  from which the feature was filtered out. Slow: it costs a whole training run.
* :class:`LatentFilter` -- no weight change: latents above the threshold are moved back to it before the
  unchanged generator draws them. The weights still draw the feature, so a white-box attacker who reads
  them finds it at once.
* :func:`negatives_only` -- fine-tuning on latents without the feature only (the reconstruction term,
  no unlearning term): what the paper's L_recon achieves alone.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from .directions import translate
from .models import ConvVAE, DCGANGenerator, Generator
from .oracles import DigitClass, Oracle
from .unlearn import UnlearnConfig


class LatentFilter(Generator):
    """Wraps a generator: ``forward(z)`` draws ``model(translate(z, direction, threshold))``.

    The wrapped weights are untouched (``model`` is shared, not copied), so this is an inference-time
    filter, not unlearning.
    """

    def __init__(self, model: nn.Module, direction: torch.Tensor, threshold: float):
        super().__init__()
        self.model = model
        self.latent_dim = model.latent_dim
        self.image_shape = model.image_shape
        self.register_buffer("direction", direction.detach().clone().float())
        self.threshold = float(threshold)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(translate(z, self.direction, self.threshold))


def negatives_only(model: nn.Module, feature, config: UnlearnConfig | None = None):
    """Fine-tune with the reconstruction term alone: positives get no loss (alpha = 0, no hinge, no replay).

    ``feature`` is a :class:`~feature_unlearning.feature.Feature`; returns its
    :class:`~feature_unlearning.result.UnlearnResult` (the same batches as the default method would draw)."""
    cfg = replace(config or UnlearnConfig(), method="oracle", alpha=0.0, oracle_weight=0.0, replay=0.0)
    return feature.unlearn(model, cfg)


def filter_training_data(images: torch.Tensor, labels: torch.Tensor, oracle: Oracle) -> torch.Tensor:
    """The training images without the feature: a :class:`~feature_unlearning.oracles.DigitClass` drops the
    true label of its digit, other oracles drop the images they label positive."""
    if isinstance(oracle, DigitClass):
        return images[labels != oracle.digit]
    return images[~oracle.labels(images)]


def training_config(model: nn.Module, budget: float = 1.0):
    """The config that made the bundled checkpoints, with ``model``'s sizes and ``budget`` times its length
    (steps for a :class:`~feature_unlearning.train.GANTrainConfig`, epochs for a ``VAETrainConfig``)."""
    from . import train

    if not 0 < budget <= 1:
        raise ValueError(f"budget must be in (0, 1], got {budget}")
    if isinstance(model, DCGANGenerator):
        cfg = train.GANTrainConfig(latent_dim=model.latent_dim, base_channels=model.config["base_channels"])
        return replace(cfg, steps=max(1, round(cfg.steps * budget)))
    if isinstance(model, ConvVAE):
        c = model.config
        cfg = train.VAETrainConfig(latent_dim=c["latent_dim"], base_channels=c["base_channels"], hidden_dim=c["hidden_dim"])
        return replace(cfg, epochs=max(1, round(cfg.epochs * budget)))
    raise ValueError(f"retraining is implemented for DCGANGenerator and ConvVAE, not {type(model).__name__}")


def retrain_without(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    oracle: Oracle,
    *,
    config=None,
) -> tuple[nn.Module, dict]:
    """Train a model of ``model``'s architecture and size from scratch on the filtered training data.

    ``config`` is a :class:`~feature_unlearning.train.GANTrainConfig` or ``VAETrainConfig`` (default:
    :func:`training_config`, the one that made the bundled checkpoints). Returns the model and its history
    (``history["seconds"]`` is the cost to compare unlearning with).
    """
    from . import train

    if not isinstance(model, (DCGANGenerator, ConvVAE)):
        raise ValueError(f"retraining is implemented for DCGANGenerator and ConvVAE, not {type(model).__name__}")
    cfg = config or training_config(model)
    kept = filter_training_data(images, labels, oracle)
    new, hist = (train.train_dcgan if isinstance(model, DCGANGenerator) else train.train_vae)(kept, cfg)
    hist["n_train"] = len(kept)
    return new, hist


def copy_of(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode (what an unchanged baseline returns)."""
    return copy.deepcopy(model).eval()
