"""feature_unlearning.metrics: before/after numbers, Frechet distances, preservation."""

import pytest
import torch

from feature_unlearning import metrics
from feature_unlearning.oracles import DigitClass, StrokeThickness


def _constant(like: torch.nn.Module, value: float) -> torch.nn.Module:
    """A stand-in generator with ``like``'s latent and image sizes that draws every pixel as ``value``."""

    class Constant(torch.nn.Module):
        latent_dim, image_shape = like.latent_dim, like.image_shape

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z):
            return torch.full((len(z), *self.image_shape), value) + 0 * self.w

    return Constant()


def test_compare_of_a_model_with_itself_removes_nothing_and_keeps_everything(dcgan):
    report = metrics.compare(dcgan, dcgan, StrokeThickness(), n=300, seed=3)
    assert report["n"] == 300 and report["share_before"] == report["share_after"] > 0
    assert report["removed"] == 0.0
    assert report["preservation"]["ssim"] == pytest.approx(1.0) and report["preservation"]["l1"] == 0.0
    assert report["fd_after_reference"] == "not-thick" and report["fd_ratio"] > 0
    # the fair baseline: the same images against the same reference, so a model compared with itself reads 1
    assert report["fd_before_same_reference"] == pytest.approx(report["fd_after"], rel=1e-9)
    assert report["fd_ratio_fair"] == pytest.approx(1.0, rel=1e-9)
    assert report["fd_before"] == pytest.approx(metrics.frechet_distance(dcgan.generate(300, seed=3), "all"), rel=1e-6)


def test_compare_sees_a_model_that_draws_the_feature_no_more(dcgan):
    """A blank model: no thick strokes after, so everything is removed; no Frechet distance for reference=None."""
    report = metrics.compare(dcgan, _constant(dcgan, -1.0), StrokeThickness(), n=200, seed=1, reference=None)
    assert report["share_after"] == 0.0 and report["removed"] == 1.0 and "fd_ratio" not in report
    assert report["preservation"]["ssim"] < 0.9 and report["preservation"]["l1"] > 0.1  # nothing was kept


def test_reference_statistics_are_read_once_and_handed_out_as_copies():
    a = metrics.load_reference("not-digit:8")
    a["sum"].zero_()
    b = metrics.load_reference("not-digit:8")
    assert b["sum"].abs().sum() > 0  # the cache was not changed through a copy
    assert metrics._reference_file.cache_info().hits >= 1
    with pytest.raises(ValueError, match="no shipped reference 'not-bangs'"):
        metrics.load_reference("not-bangs")


def test_frechet_distance_of_a_model_to_itself_is_below_its_distance_to_real_digits(dcgan):
    images = dcgan.generate(1200, seed=2)
    assert metrics.frechet_distance(images[:600], images[600:]) < metrics.frechet_distance(images[:600], "all")


def test_feature_share_is_the_oracles_share():
    oracle = StrokeThickness(threshold=0.0)
    x = torch.rand(10, 1, 28, 28) * 2 - 1
    assert metrics.feature_share(x, oracle) == oracle.share(x)


def test_metrics_refuse_images_with_nan_or_inf(dcgan):
    """A diverged model's images: every metric says so instead of crashing in the matrix square root."""
    good = dcgan.generate(50, seed=0)
    bad = good.clone()
    bad[3, 0, 5, 5] = float("nan")
    bad[7] = float("inf")
    with pytest.raises(ValueError, match="2 of 50 images hold NaN or infinite values"):
        metrics.frechet_distance(bad, "all")
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.frechet_distance(good, bad)
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.classifier_score(bad)
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.preservation(good, bad)
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.feature_share(bad, StrokeThickness())
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.digit_stats(bad)


def test_compare_refuses_a_model_that_draws_nan(dcgan):
    with pytest.raises(ValueError, match="unlearned model's images: 20 of 20 images hold NaN"):
        metrics.compare(dcgan, _constant(dcgan, float("nan")), StrokeThickness(), n=20, seed=1)


@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (4, 3, 64, 64)])
def test_ssim_is_torchmetrics_ssim(shape):
    from torchmetrics.functional.image import structural_similarity_index_measure as reference

    from feature_unlearning.unlearn import ssim_per_sample

    g = torch.Generator().manual_seed(0)
    a = torch.rand(*shape, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(*shape, generator=g)).clamp(-1, 1)
    theirs = reference(a, b, data_range=2.0, kernel_size=7, sigma=1.0, reduction="none")
    torch.testing.assert_close(ssim_per_sample(a, b), theirs, atol=1e-5, rtol=1e-5)
    assert ssim_per_sample(b, b).sub(1).abs().max() < 1e-5


def test_frechet_distance_is_torchmetrics_fid_with_the_classifier_as_feature_extractor(dcgan):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = dcgan.generate(300, seed=1), dcgan.generate(200, seed=2)
    reference = FrechetInceptionDistance(feature=metrics.ClassifierEmbedding(metrics.bundled_classifier()),
                                         normalize=True, reset_real_features=False)
    reference.update((real + 1) / 2, real=True)
    reference.update((fake + 1) / 2, real=False)
    ours = metrics.frechet_distance(fake, real)
    assert ours == pytest.approx(float(reference.compute()), rel=1e-6)
    assert metrics.frechet_distance(fake, metrics.reference_state(real)) == ours
    state = metrics.reference_state(real)
    torch.testing.assert_close(state["cov_sum"], reference.real_features_cov_sum)
    assert int(state["n"]) == 300


def test_comparing_two_models_does_not_import_torchmetrics(fresh_python):
    # torchmetrics takes seconds to import on a CPU; the default path (collect, unlearn, compare) needs none of it
    code = ("import sys, feature_unlearning as fu\n"
            "m = fu.load_pretrained('mnist-dcgan')\n"
            "r = fu.compare(m, m, fu.get_oracle('thick'), n=200)\n"
            "assert r['preservation']['ssim'] > 0.999 and r['fd_before'] > 0, r\n"
            "print(sorted(k for k in sys.modules if k.startswith('torchmetrics')))\n")
    assert fresh_python(code) == "[]"
