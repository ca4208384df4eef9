import numpy as np
import pytest
import torch

from feature_unlearning import judges, oracles
from feature_unlearning.data import default_mnist_dir, load_mnist
from feature_unlearning.models import DigitClassifier, DigitResNet


def bars(widths, length: int = 16) -> torch.Tensor:
    """Images (N, 1, 28, 28) in [-1, 1] of one horizontal bar each, ``width`` px thick."""
    x = -torch.ones(len(widths), 1, 28, 28)
    for i, w in enumerate(widths):
        top = 14 - w // 2
        x[i, 0, top : top + w, 6 : 6 + length] = 1.0
    return x


def test_zhang_suen_thins_to_one_pixel_and_keeps_thin_lines():
    mask = (bars([5]) > 0)[:, 0].numpy()
    skel = judges.zhang_suen(mask)
    assert skel.sum() > 0 and (skel <= mask).all()  # a subset of the ink
    assert skel.sum(1).max() == 1  # one pixel wide: at most one skeleton pixel per column
    line = (bars([1]) > 0)[:, 0].numpy()
    assert judges.zhang_suen(line).sum() >= line.sum() - 2  # a 1-px line stays (up to its end pixels)
    assert judges.zhang_suen(np.zeros((2, 28, 28), bool)).sum() == 0


def test_skeleton_width_measures_bar_width():
    w = judges.skeleton_stroke_width(bars([1, 2, 3, 4, 6]))
    assert torch.all(w[1:] > w[:-1])  # monotone in the true width
    torch.testing.assert_close(w, torch.tensor([1.0, 2.0, 3.0, 4.0, 6.0]), atol=0.5, rtol=0.2)
    assert judges.skeleton_stroke_width(-torch.ones(1, 1, 28, 28)).item() == 0.0


def test_no_images_give_no_widths():
    assert judges.skeleton_stroke_width(torch.zeros(0, 1, 28, 28)).shape == (0,)


def test_skeleton_thickness_calibrates_to_a_quantile():
    real = bars(list(range(1, 11)) * 10)
    oracle = judges.SkeletonThickness.calibrate(real, quantile=0.9)
    assert 0.05 <= metrics_share(real, oracle) <= 0.2
    with pytest.raises(ValueError, match="no calibrated skeleton width"):
        judges.SkeletonThickness(quantile=0.42)


def metrics_share(images, oracle) -> float:
    return float(oracle.labels(images).float().mean())


needs_judge = pytest.mark.skipif(not (judges.PRETRAINED / judges.JUDGE_NAME).is_dir(),
                                 reason="mnist-judge-resnet is not bundled yet (python -m benchmarks.train_bundled --only judge)")


@needs_judge
def test_bundled_judges_are_independent_of_the_oracles():
    net = judges.digit_judge()
    assert isinstance(net, DigitResNet) and not isinstance(net, DigitClassifier) and not net.training
    assert judges.digit_judge() is net  # cached
    calibrated = judges.SkeletonThickness()  # the shipped calibration exists
    assert calibrated.threshold > oracles.StrokeThickness().threshold * 0.5
    with pytest.raises(ValueError, match="judges know"):
        judges.judge_oracles("smiling")


def test_unknown_feature_is_an_error():
    with pytest.raises(ValueError, match="judges know"):
        judges.removal_report(bars([1]), bars([1]), "smiling")


def test_removal_report_on_stroke_width():
    thick, thin = bars([7] * 10), bars([1] * 10)
    report = judges.removal_report(thick, thin, "thick")
    row = report["skeleton"]
    assert row["before"] == 1.0 and row["after"] == 0.0 and row["removed"] == 1.0
    assert row["removed_strict"] == 1.0
    half = judges.removal_report(thick, torch.cat([thick[:5], thin[:5]]), "thick")["skeleton"]
    assert half["removed"] == pytest.approx(0.5)
    none = judges.removal_report(thin, thin, "thick")["skeleton"]
    assert np.isnan(none["removed"])  # nothing to remove: undefined, not 100%


@needs_judge
@pytest.mark.skipif(default_mnist_dir() is None, reason="needs the MNIST idx files")
def test_digit_judge_on_real_digits():
    x, y = load_mnist("heldout")
    with torch.no_grad():
        pred = judges.digit_judge()(x).argmax(1)
    assert (pred == y).float().mean() > 0.95  # a judge that can read digits at all
    # removing every true 8 removes (almost) every 8 the judge sees; what is left are its errors
    report = judges.removal_report(x, x[y != 8], "digit:8")["resnet"]
    assert report["before"] == pytest.approx((y == 8).float().mean().item(), abs=0.02)
    assert report["removed"] > 0.9 and report["removed_strict"] > 0.9
    survivors = judges.survivors(x, "digit:8", n=50)
    assert len(survivors) == 50
    assert (judges.digit_judge()(survivors).argmax(1) == 8).all()
    strict = judges.survivors(x, "digit:8", n=10_000, strict=True)
    assert len(strict) <= len(judges.survivors(x, "digit:8", n=10_000))
    # the two stroke measures mean the same thing on real digits without being the same number
    a, b = oracles.stroke_width(x), judges.skeleton_stroke_width(x)
    ranks = torch.stack([a.argsort().argsort(), b.argsort().argsort()]).double()
    assert 0.5 < torch.corrcoef(ranks)[0, 1] < 0.99
