"""The latent-space math: unit directions, thresholds, translation, traversal."""

import pytest
import torch

from feature_unlearning.directions import feature_direction, project, threshold, translate, traverse


@pytest.fixture
def two_clouds():
    g = torch.Generator().manual_seed(0)
    true = torch.zeros(16)
    true[3] = 1.0
    z = torch.randn(2000, 16, generator=g)
    labels = z @ true > 1.0
    return z[labels], z[~labels], true


@pytest.mark.parametrize("method", ["mean_diff", "logistic"])
def test_direction_is_a_unit_vector_along_the_feature(two_clouds, method):
    z_pos, z_neg, true = two_clouds
    d = feature_direction(z_pos, z_neg, method)
    assert d.shape == (16,)
    assert d.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.dot(d, true) > 0.95


def test_mean_diff_is_the_papers_formula(two_clouds):
    z_pos, z_neg, _ = two_clouds
    expected = z_pos.mean(0) - z_neg.mean(0)
    torch.testing.assert_close(feature_direction(z_pos, z_neg), expected / expected.norm())


def _balanced_accuracy(z_pos, z_neg, d):
    t = threshold(z_pos, z_neg, d, "balanced")
    return ((project(z_pos, d) >= t).float().mean() + (project(z_neg, d) < t).float().mean()).item() / 2


def test_logistic_beats_mean_diff_when_the_classes_are_stretched():
    """Equal means shift along e0 and e1, but e1 is 3x noisier: the separating normal leans to e0."""
    g = torch.Generator().manual_seed(1)
    scale = torch.tensor([1.0, 3.0, 1.0, 1.0])
    z_neg = torch.randn(4000, 4, generator=g) * scale
    z_pos = torch.randn(4000, 4, generator=g) * scale + torch.tensor([1.0, 1.0, 0.0, 0.0])
    d_mean = feature_direction(z_pos, z_neg, "mean_diff")
    d_log = feature_direction(z_pos, z_neg, "logistic")
    assert d_mean[0] == pytest.approx(2**-0.5, abs=0.05)
    assert d_log[0] > 0.9
    assert _balanced_accuracy(z_pos, z_neg, d_log) > _balanced_accuracy(z_pos, z_neg, d_mean) + 0.02


def test_thresholds(two_clouds):
    z_pos, z_neg, true = two_clouds
    d = feature_direction(z_pos, z_neg)
    all_p = project(torch.cat([z_pos, z_neg]), d)
    assert threshold(z_pos, z_neg, d, "mean") == pytest.approx(all_p.mean().item(), abs=1e-5)
    mid = threshold(z_pos, z_neg, d, "midpoint")
    assert project(z_neg, d).mean() < mid < project(z_pos, d).mean()
    bal = threshold(z_pos, z_neg, d, "balanced")
    assert 0.5 < bal < 1.5  # the true cut is at 1.0
    with pytest.raises(ValueError, match="unknown threshold rule"):
        threshold(z_pos, z_neg, d, "median")


def test_translate_puts_the_projection_exactly_at_t(two_clouds):
    z_pos, z_neg, _ = two_clouds
    d = feature_direction(z_pos, z_neg)
    z = torch.cat([z_pos, z_neg])
    t = 0.3
    moved = translate(z, d, t)
    above = project(z, d) >= t
    torch.testing.assert_close(project(moved[above], d), torch.full((int(above.sum()),), t), atol=1e-5, rtol=0)
    assert torch.equal(moved[~above], z[~above])
    # only the component along d changes
    rest = lambda x: x - project(x, d)[:, None] * d  # noqa: E731
    torch.testing.assert_close(rest(moved), rest(z), atol=1e-5, rtol=0)
    margin = translate(z, d, t, margin=0.5)
    torch.testing.assert_close(project(margin[above], d), torch.full((int(above.sum()),), t - 0.5), atol=1e-5, rtol=0)


def test_traversal_at_zero_is_the_sample(tiny_dcgan):
    z = tiny_dcgan.sample_latent(3, seed=0)
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    strip = traverse(tiny_dcgan, z, d, alphas=(-2, 0, 2))
    assert strip.shape == (3, 3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(strip[:, 1], tiny_dcgan(z))
    assert not torch.allclose(strip[:, 0], strip[:, 2])


@pytest.mark.parametrize(
    "n_pos, n_neg, message",
    [(0, 10, "no positive samples"), (10, 0, "no negative samples"), (1, 10, "too few samples")],
)
def test_degenerate_selections_are_clear_errors(n_pos, n_neg, message):
    z = torch.randn(20, 8)
    with pytest.raises(ValueError, match=message):
        feature_direction(z[:n_pos], z[10 : 10 + n_neg])
    with pytest.raises(ValueError, match=message):
        threshold(z[:n_pos], z[10 : 10 + n_neg], torch.ones(8) / 8**0.5)


def test_identical_means_have_no_direction():
    z = torch.randn(10, 4)
    with pytest.raises(ValueError, match="same mean"):
        feature_direction(z, z.clone())
    with pytest.raises(ValueError, match="unknown direction method"):
        feature_direction(z, z + 1, "svm")
