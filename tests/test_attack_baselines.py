"""The latent attack and the baselines."""

import math

import pytest
import torch

from feature_unlearning.attack import latent_attack, prior_radius
from feature_unlearning.baselines import LatentFilter, filter_training_data, negatives_only
from feature_unlearning.directions import project
from feature_unlearning.oracles import DigitClass, Oracle, StrokeThickness
from feature_unlearning.unlearn import UnlearnConfig


class MeanBrightness(Oracle):
    """A differentiable toy oracle: the mean pixel value."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.name = "bright"

    def scores(self, images):
        return images.flatten(1).mean(1)


def test_prior_radius_holds_the_mass():
    g = torch.Generator().manual_seed(0)
    for d in (8, 32, 512):
        r = prior_radius(d, 0.999)
        inside = (torch.randn(20000, d, generator=g).norm(dim=1) <= r).float().mean().item()
        assert inside == pytest.approx(0.999, abs=0.002)
        assert r > math.sqrt(d)


def test_attack_finds_a_feature_that_random_sampling_rarely_shows(tiny_dcgan):
    oracle = MeanBrightness(threshold=0.0)
    base = oracle.scores(tiny_dcgan.generate(512, seed=0))
    oracle.threshold = float(torch.quantile(base, 0.98))  # 2% of random samples are "bright"
    result = latent_attack(tiny_dcgan, oracle, n=32, steps=60, lr=0.1, seed=1)
    assert result.success_rate > 0.5
    assert (result.z.norm(dim=1) <= prior_radius(tiny_dcgan.latent_dim) + 1e-4).all()
    assert all(p.requires_grad for p in tiny_dcgan.parameters())  # the model's flags are restored


def test_latent_filter_translates_and_shares_the_weights(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    filt = LatentFilter(tiny_dcgan, d, 0.5)
    z = tiny_dcgan.sample_latent(64, seed=0)
    below = project(z, d) < 0.5
    with torch.no_grad():
        torch.testing.assert_close(filt(z)[below], tiny_dcgan(z)[below])
        assert not torch.allclose(filt(z)[~below], tiny_dcgan(z)[~below])
    assert filt.model is tiny_dcgan


def test_filter_training_data(classifier):
    images = torch.rand(10, 1, 28, 28) * 2 - 1
    labels = torch.arange(10)
    assert len(filter_training_data(images, labels, DigitClass(8, classifier))) == 9  # the true labels count
    assert len(filter_training_data(images, labels, StrokeThickness(threshold=0.0))) == 0  # everything is thick
    assert len(filter_training_data(images, labels, StrokeThickness(threshold=100.0))) == 10


def test_negatives_only_never_pushes_positives(tiny_dcgan):
    """Positives are in every batch and differ from their targets, yet they add nothing to the loss."""
    from feature_unlearning.feature import Feature

    oracle = MeanBrightness(threshold=0.0)
    oracle.threshold = float(oracle.scores(tiny_dcgan.generate(512, seed=0)).median())  # half are "bright"
    feature = Feature.from_oracle(tiny_dcgan, oracle, n=200, seed=0)
    hist = negatives_only(tiny_dcgan, feature, UnlearnConfig(steps=4, batch_size=16, log_every=1)).history
    assert hist.config["alpha"] == 0.0 and hist.config["oracle_weight"] == 0.0 and hist.config["replay"] == 0.0
    assert min(hist.positive_share) > 0 and min(hist.unlearn) > 0  # positives were there, away from their targets
    assert hist.loss == hist.recon  # ... and only the negatives' reconstruction term was trained
