"""Oracles and collection."""

import pytest
import torch

from feature_unlearning.oracles import (
    Collection,
    DigitClass,
    LinearProbe,
    Oracle,
    Selection,
    StrokeThickness,
    collect,
    get_oracle,
    remove_specks,
    stroke_width,
)


def _bar(width: int, length: int = 18) -> torch.Tensor:
    img = -torch.ones(1, 1, 28, 28)
    img[0, 0, 5 : 5 + length, 10 : 10 + width] = 1.0
    return img


def test_stroke_width_grows_with_the_stroke():
    widths = stroke_width(torch.cat([_bar(w) for w in (1, 2, 3, 4, 5)]))
    assert (widths.diff() > 0.5).all()
    assert widths[2] == pytest.approx(3.0, rel=0.2)  # a 3 px bar measures about 3 px


def test_stroke_width_is_differentiable():
    x = _bar(3).requires_grad_(True)
    stroke_width(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_specks_lower_the_stroke_width_but_not_the_hinges_score():
    """The exploit the hinge's score closes: specks away from the stroke thin nothing, yet lower the plain measure."""
    oracle = StrokeThickness(threshold=3.0)
    bar = _bar(4)
    dotted = bar.clone()
    dotted[0, 0, 26, 3] = 1.0  # a lone dot,
    dotted[0, 0, 26, 20:22] = 1.0  # a two-pixel mark
    dotted[0, 0, 1:3, 3:5] = torch.tensor([[1.0, 1.0], [1.0, -1.0]])  # and a three-pixel one
    assert oracle.scores(dotted) < oracle.scores(bar) - 0.1  # what the student found: below the 0.1 px margin
    assert torch.equal(remove_specks(dotted), remove_specks(bar))
    assert torch.allclose(oracle.hinge_scores(dotted), oracle.scores(bar))
    # strokes 2 px wide or more are kept exactly, a 1 px line loses only its end pixels; every other oracle's
    # hinge reads its plain score
    assert torch.equal(remove_specks(_bar(2)), _bar(2))
    thin, kept = _bar(1), remove_specks(_bar(1))
    assert (kept != thin).sum() == 2 and kept[0, 0, 6:22].eq(thin[0, 0, 6:22]).all()
    x = _bar(3).requires_grad_(True)
    oracle.hinge_scores(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert DigitClass.hinge_scores is LinearProbe.hinge_scores is Oracle.hinge_scores


def test_thick_oracle_uses_the_calibrated_cut():
    oracle = StrokeThickness()
    assert 2.5 < oracle.threshold < 5.0
    labels = oracle.labels(torch.cat([_bar(1), _bar(7)]))
    assert labels.tolist() == [False, True]
    with pytest.raises(ValueError, match="no calibrated stroke width"):
        StrokeThickness(quantile=0.42)
    calibrated = StrokeThickness.calibrate(torch.cat([_bar(w) for w in range(1, 11)]), quantile=0.5)
    assert 4 < calibrated.threshold < 7


def test_digit_oracle_score_is_the_logit_margin(classifier):
    oracle = DigitClass(8, classifier)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        logits = classifier(x)
    assert torch.equal(oracle.labels(x), logits.argmax(1) == 8)
    with pytest.raises(ValueError, match="digit must be in 0..9"):
        DigitClass(12, classifier)


def test_selection_labels_the_batch_it_was_made_on():
    sel = Selection([0, 3, 3, 5])
    assert sel.labels(torch.zeros(6, 1, 28, 28)).tolist() == [True, False, False, True, False, True]
    with pytest.raises(ValueError, match="outside the 4 images"):
        sel.labels(torch.zeros(4, 1, 28, 28))


def test_probe_learns_a_clicked_feature(dcgan, classifier):
    """Click the 8s among 200 samples: the probe then finds 8s among fresh samples."""
    eight = DigitClass(8, classifier)
    shown = dcgan.generate(200, seed=0)
    sel = Selection(eight.labels(shown).nonzero().squeeze(1).tolist())
    probe = sel.fit_probe(shown, classifier)
    assert isinstance(probe, LinearProbe)
    fresh = dcgan.generate(500, seed=1)
    agree = (probe.labels(fresh) == eight.labels(fresh)).float().mean()
    assert agree > 0.9
    with pytest.raises(ValueError, match="positive and negative"):
        Selection([]).fit_probe(shown, classifier)


def test_collect_returns_labelled_latents(tiny_dcgan):
    oracle = StrokeThickness(threshold=0.0)
    col = collect(tiny_dcgan, oracle, 50, seed=0)
    assert isinstance(col, Collection) and len(col) == 50
    assert col.images.shape == (50, 1, 28, 28)
    assert torch.equal(col.labels, col.scores >= 0.0)
    assert len(col.z_pos) + len(col.z_neg) == 50
    again = collect(tiny_dcgan, oracle, 50, seed=0)
    assert torch.equal(col.z, again.z) and torch.equal(col.images, again.images)
    both = col.extend(again)
    assert len(both) == 100


def test_get_oracle_names():
    assert isinstance(get_oracle("thick"), StrokeThickness)
    assert get_oracle("thick:0.8").quantile == 0.8
    assert get_oracle("digit:3").digit == 3
    with pytest.raises(ValueError, match="unknown feature"):
        get_oracle("bangs")


@pytest.mark.parametrize("spec", ["thick", "thick:0.8", "digit:3"])
def test_an_oracles_name_is_the_short_name_it_was_made_from(spec):
    oracle = get_oracle(spec)
    assert oracle.name == spec
    assert get_oracle(oracle.name).threshold == oracle.threshold


def test_the_reference_statistics_match_the_oracle():
    assert get_oracle("thick").reference == "not-thick" and get_oracle("digit:3").reference == "not-digit:3"
    assert get_oracle("thick:0.8").reference is None  # shipped statistics exist for the default cut only
    assert StrokeThickness(threshold=3.0).reference is None and StrokeThickness(threshold=3.0).name != "thick"


def test_score_all_batches_like_scores_and_labels_share_agree():
    oracle = StrokeThickness()
    x = torch.cat([_bar(w) for w in (1, 2, 3, 4, 5, 6, 7)])
    torch.testing.assert_close(oracle.score_all(x, batch_size=3), oracle.scores(x))
    assert oracle.labels(x).tolist() == (oracle.scores(x) >= oracle.threshold).tolist()
    assert oracle.share(x) == pytest.approx(oracle.labels(x).float().mean().item())
    assert oracle.share(x[:0]) == 0.0 and oracle.score_all(x[:0]).shape == (0,)


def test_the_bundled_classifier_is_loaded_once_and_moving_an_oracle_copies_it(monkeypatch):
    from feature_unlearning import hub, oracles

    first = oracles.bundled_classifier()
    monkeypatch.setattr(hub, "load_pretrained", lambda *a, **k: pytest.fail("loaded from disk again"))
    eight, probe_like = DigitClass(8), DigitClass(3)
    assert eight.classifier is first and probe_like.classifier is first
    assert eight.to("cpu") is eight
    moved = eight.to("meta")  # a device that holds no data: enough to see what moved
    assert moved is not eight and next(moved.classifier.parameters()).device.type == "meta"
    assert next(first.parameters()).device.type == "cpu" and eight.classifier is first


def test_unknown_or_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown feature 'digit:x'"):
        get_oracle("digit:x")
    with pytest.raises(ValueError, match="feature 'thick:0.42': no calibrated stroke width"):
        get_oracle("thick:0.42")
