"""Unlearning: the loss terms, the original model left untouched, and the feature really going away."""

import copy

import pytest
import torch

from feature_unlearning.directions import feature_direction, threshold
from feature_unlearning.oracles import DigitClass, StrokeThickness, collect
from feature_unlearning.unlearn import (
    UnlearnConfig,
    UnlearningDiverged,
    collect_positives,
    draw_latents,
    find_targets,
    make_targets,
    ms_ssim_per_sample,
    oversample_cut,
    sample_batch,
    target_anchor,
    target_margin,
    training_step,
    unlearn,
    unlearning_loss,
)


def test_loss_of_an_untouched_copy_is_zero_on_negatives():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    negative = torch.zeros(8, dtype=torch.bool)
    loss, parts = unlearning_loss(x, x, x.flip(0), negative)
    assert loss.item() == 0.0 and parts["recon"] == 0.0


def test_loss_terms_follow_the_labels():
    g = torch.Generator().manual_seed(0)
    student = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    teacher = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    target = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    positive = torch.tensor([True, False, True, False])
    loss, parts = unlearning_loss(student, teacher, target, positive, alpha=2.0, percep_weight=0.0)
    l1 = lambda a, b: (a - b).abs().flatten(1).mean(1)  # noqa: E731
    expected = (2.0 * l1(student, target) * positive + l1(student, teacher) * ~positive).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    _, with_ssim = unlearning_loss(student, teacher, target, positive)
    assert with_ssim["percep"] > 0
    _, same = unlearning_loss(target, teacher, target, positive)
    assert same["unlearn"] == 0 and same["percep"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("shape", [(16, 1, 28, 28), (4, 3, 32, 32), (2, 1, 80, 80)])
def test_ms_ssim_matches_torchmetrics_values_and_gradients(shape):
    """The fast matrix-product MS-SSIM (and the fallback for large images) is torchmetrics' MS-SSIM."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as reference

    from feature_unlearning.unlearn import MS_SSIM_BETAS

    g = torch.Generator().manual_seed(0)
    a = (torch.rand(*shape, generator=g) * 2 - 1).requires_grad_(True)
    b = (a.detach() + 0.3 * torch.randn(*shape, generator=g)).clamp(-1, 1)
    a_ref = a.detach().clone().requires_grad_(True)
    ours = ms_ssim_per_sample(a, b)
    theirs = reference(a_ref, b, kernel_size=7, sigma=1.0, data_range=2.0, betas=MS_SSIM_BETAS, normalize="relu",
                       reduction="none")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(a.grad, a_ref.grad, atol=1e-6, rtol=1e-4)
    assert ms_ssim_per_sample(b, b).sub(1).abs().max() < 1e-5


def test_oversampled_batches_follow_the_conditioned_prior():
    d = torch.nn.functional.normalize(torch.ones(8), dim=0)
    z = sample_batch(4000, 8, d, oversample=0.5, cut=1.0, generator=torch.Generator().manual_seed(0))
    p = z @ d
    assert (p[:2000] >= 1.0 - 1e-5).all()
    assert abs(p[2000:].mean().item()) < 0.1 and abs(p[2000:].std().item() - 1) < 0.1
    rest = z[:2000] - p[:2000, None] * d
    assert abs(rest.pow(2).sum(1).mean().item() - 7) < 0.3  # the orthogonal part stays N(0, I)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        UnlearnConfig(steps=0)
    with pytest.raises(ValueError, match="unknown method"):
        UnlearnConfig(method="magic")
    with pytest.raises(ValueError, match="lr must be > 0"):
        UnlearnConfig(lr=0)
    with pytest.raises(ValueError, match="anchor must be >= 0"):
        UnlearnConfig(anchor=-1.0)


@pytest.fixture(scope="module")
def thick_setup():
    import feature_unlearning as fu

    model = fu.load_pretrained("mnist-dcgan")
    oracle = StrokeThickness()
    col = collect(model, oracle, 3000, seed=0)
    d = feature_direction(col.z_pos, col.z_neg)
    return model, oracle, d, threshold(col.z_pos, col.z_neg, d), col.z_pos


def test_targets_found_are_free_of_the_feature(thick_setup):
    model, oracle, d, t, _ = thick_setup
    col = collect(model, oracle, 500, seed=5)
    z_hat, images, resolved = find_targets(model, oracle, col.z_pos, d, t, margin=0.1, offsets=(0.0, 1.0, 2.0, 4.0))
    assert resolved.float().mean() > 0.9
    assert (oracle.scores(images[resolved]) < oracle.threshold - 0.1).all()
    with torch.no_grad():
        torch.testing.assert_close(images, model(z_hat))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["oracle", "paper"])
def test_short_run_lowers_the_feature_and_leaves_the_original_alone(thick_setup, method):
    model, oracle, d, t, positives = thick_setup
    before_state = copy.deepcopy(model.state_dict())
    cfg = UnlearnConfig(method=method, steps=60, seed=0)
    seen = []
    new, hist = unlearn(model, d, t, cfg, oracle=oracle, positives=positives,
                        callback=lambda step, info: seen.append(step))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before_state[k]), f"the original model changed: {k}"
    assert new is not model and not new.training
    assert not any(p.requires_grad for p in new.parameters())
    share = lambda m: oracle.labels(m.generate(2000, seed=99)).float().mean().item()  # noqa: E731
    assert share(new) < 0.6 * share(model)
    assert hist.step == seen and hist.seconds > 0 and len(hist.loss) == len(hist.step)


def test_callback_can_stop_early(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    cfg = UnlearnConfig(method="paper", steps=50, log_every=5, batch_size=8)
    _, hist = unlearn(tiny_dcgan, d, 0.0, cfg, callback=lambda step, info: step < 10)
    assert hist.stopped_early and hist.step == [5, 10]


def test_vae_encoder_is_left_alone(tiny_vae):
    d = torch.nn.functional.normalize(torch.randn(tiny_vae.latent_dim), dim=0)
    new, _ = unlearn(tiny_vae, d, 0.0, UnlearnConfig(method="paper", steps=5, batch_size=8, lr=1e-2))
    for (name, a), b in zip(tiny_vae.encoder.state_dict().items(), new.encoder.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, b) for a, b in zip(tiny_vae.decoder.parameters(), new.decoder.parameters()))


def test_oracle_method_needs_an_oracle_and_the_positives(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    with pytest.raises(ValueError, match="needs the oracle"):
        unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(steps=1))
    with pytest.raises(ValueError, match="finds the feature in none of 2000 samples"):
        unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(steps=1), oracle=StrokeThickness(threshold=1e6))


def test_without_positives_unlearn_collects_its_own_and_leaves_the_training_stream_alone(tiny_dcgan):
    oracle = StrokeThickness(threshold=0.0)
    positives = collect_positives(tiny_dcgan, oracle, n=300, seed=0)
    assert 0 < len(positives) <= 300 and oracle.labels(tiny_dcgan(positives)).all()
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    cfg = UnlearnConfig(steps=2, batch_size=8)
    own, _ = unlearn(tiny_dcgan, d, 0.0, cfg, oracle=oracle)
    given, _ = unlearn(tiny_dcgan, d, 0.0, cfg, oracle=oracle, positives=collect_positives(tiny_dcgan, oracle, seed=0))
    for a, b in zip(own.parameters(), given.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="direction must have shape"):
        unlearn(tiny_dcgan, torch.ones(3), 0.0, UnlearnConfig.paper(steps=1))


def test_the_oversampling_cut_is_a_quantile_of_the_positives_projections():
    d = torch.tensor([1.0, 0.0])
    positives = torch.stack([torch.arange(100.0), torch.zeros(100)], dim=1)
    assert oversample_cut(d, positives, 0.05) == pytest.approx(float(torch.quantile(torch.arange(100.0), 0.05)))
    with pytest.raises(ValueError, match="no positive latents"):
        oversample_cut(d, positives[:0], 0.05)


def test_direct_call_runs_the_same_algorithm_as_the_feature(tiny_dcgan):
    """unlearn(..., positives=) and Feature.unlearn place the oversampling cut alike: the same weights."""
    from feature_unlearning.feature import Feature

    oracle = StrokeThickness(threshold=0.0)
    col = collect(tiny_dcgan, oracle, 64, seed=0)
    col.labels = torch.arange(64) % 4 == 0  # any split works for the direction
    feature = Feature.from_collection(oracle, col)
    cfg = UnlearnConfig(steps=3, batch_size=8)
    direct, _ = unlearn(tiny_dcgan, feature.direction, feature.threshold, cfg, oracle=oracle, positives=col.z_pos)
    via_feature = feature.unlearn(tiny_dcgan, cfg).unlearned
    for a, b in zip(direct.parameters(), via_feature.parameters()):
        assert torch.equal(a, b)


def test_unlearn_leaves_the_global_random_state_and_the_oracle_alone(tiny_dcgan, classifier):
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    oracle = DigitClass(3, classifier)
    positives = torch.randn(10, tiny_dcgan.latent_dim)
    state = torch.random.get_rng_state()
    new, _ = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(steps=2, batch_size=8, seed=5), oracle=oracle,
                     positives=positives)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert oracle.classifier is classifier and next(classifier.parameters()).device.type == "cpu"
    assert next(new.parameters()).device == next(tiny_dcgan.parameters()).device
    again, _ = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(steps=2, batch_size=8, seed=5), oracle=oracle,
                       positives=positives)
    for a, b in zip(new.parameters(), again.parameters()):  # the same seed gives the same model
        assert torch.equal(a, b)


def test_sampling_targets_and_step_work_alone(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    cfg = UnlearnConfig(method="paper", batch_size=16, lr=1e-3)
    z = draw_latents(cfg, tiny_dcgan.latent_dim, d, None, torch.empty(0, tiny_dcgan.latent_dim),
                     torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, torch.randn(16, tiny_dcgan.latent_dim, generator=torch.Generator().manual_seed(0)))
    teacher = copy.deepcopy(tiny_dcgan).requires_grad_(False)
    teach, target, positive, resolved = make_targets(teacher, z, d, 0.0, cfg, None, 0.0)
    assert torch.equal(positive, z @ d >= 0) and torch.equal(resolved, positive)
    assert torch.equal(target[~positive], teach[~positive]) and not torch.equal(target[positive], teach[positive])
    student = copy.deepcopy(tiny_dcgan)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    losses = [training_step(student, opt, z, teach, target, positive, cfg, None, 0.0, torch.autocast("cpu", enabled=False))[0]["loss"]
              for _ in range(10)]
    assert losses[-1] < losses[0]  # the step optimises the paper's loss on a fixed batch


def test_divergence_raises_with_the_last_good_model(tiny_dcgan):
    """A learning rate far too high: a clear error, the original untouched, and the last finite model kept."""
    import feature_unlearning as fu

    assert fu.UnlearningDiverged is UnlearningDiverged and issubclass(UnlearningDiverged, RuntimeError)
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    before = copy.deepcopy(tiny_dcgan.state_dict())
    cfg = UnlearnConfig(method="paper", steps=30, batch_size=8, lr=1e7, log_every=1)
    with pytest.raises(UnlearningDiverged, match="diverged at step .* lower one") as caught:
        unlearn(tiny_dcgan, d, 0.0, cfg)
    err = caught.value
    assert 1 <= err.step <= 30 and err.history.diverged_at == err.step and err.good_step < err.step
    assert all(torch.isfinite(p).all() for p in err.model.parameters())
    assert not err.model.training and not any(p.requires_grad for p in err.model.parameters())
    assert torch.isfinite(err.model.generate(4, seed=0)).all()
    for k, v in tiny_dcgan.state_dict().items():
        assert torch.equal(v, before[k]), f"the original model changed: {k}"
    # the model kept is exactly the run stopped after good_step steps (the original if none)
    if err.good_step:
        same, _ = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(method="paper", steps=err.good_step, batch_size=8, lr=1e7))
    else:
        same = tiny_dcgan
    for a, b in zip(err.model.parameters(), same.parameters()):
        assert torch.equal(a, b)


def test_a_finite_run_does_not_diverge(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    new, hist = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(method="paper", steps=3, batch_size=8))
    assert hist.diverged_at is None and hist.margin is None  # the paper's rule uses no margin
    assert all(p.is_contiguous() for p in new.parameters())  # the default layout, whatever ran inside (safetensors)


class _MeanBrightness:
    """An oracle on the mean pixel: 'the feature' is a bright image (threshold at the batch's 90th percentile)."""

    name, default_margin = "bright", 0.0

    def __init__(self, threshold: float):
        self.threshold = threshold

    def scores(self, images):
        return images.flatten(1).mean(1)

    def to(self, device):
        return self


def test_linear_positives_adds_the_latents_above_the_threshold_to_the_oracles(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    z = torch.randn(64, tiny_dcgan.latent_dim, generator=torch.Generator().manual_seed(1))
    teacher = copy.deepcopy(tiny_dcgan).requires_grad_(False)
    with torch.no_grad():
        scores = teacher(z).flatten(1).mean(1)
    oracle = _MeanBrightness(float(scores.quantile(0.9)))
    t = float((z @ d).quantile(0.7))
    by_oracle = scores >= oracle.threshold
    cfg = UnlearnConfig(batch_size=64, search_offsets=(1.0,))
    _, _, positive, _ = make_targets(teacher, z, d, t, cfg, oracle, 0.0)
    assert torch.equal(positive, by_oracle)  # the default: the oracle alone decides
    cfg = UnlearnConfig(batch_size=64, search_offsets=(1.0,), linear_positives=True)
    teach, target, positive, _ = make_targets(teacher, z, d, t, cfg, oracle, 0.0)
    assert torch.equal(positive, by_oracle | (z @ d >= t))
    assert (positive & ~by_oracle).any()  # some latents only the linear rule flags ...
    assert torch.equal(target[~positive], teach[~positive])  # ... negatives keep their own image
    assert not torch.equal(target[positive & ~by_oracle], teach[positive & ~by_oracle])  # positives get moved targets


def test_target_margin_prefers_the_config_then_the_oracles_unlearn_margin_then_its_unit(tiny_dcgan):
    oracle = _MeanBrightness(0.0)
    assert target_margin(UnlearnConfig(), oracle) == 0.0  # the oracle's score unit (default_margin)
    oracle.unlearn_margin = 0.25
    assert target_margin(UnlearnConfig(), oracle) == 0.25
    assert target_margin(UnlearnConfig(margin=0.5), oracle) == 0.5
    assert target_margin(UnlearnConfig(), None) == 0.0
    # the digit oracle aims further below its threshold than its score unit (which the attack and metrics use)
    digit = DigitClass(8)
    assert target_margin(UnlearnConfig(), digit) == digit.unlearn_margin > digit.default_margin
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    z = torch.randn(200, tiny_dcgan.latent_dim, generator=torch.Generator().manual_seed(0))
    _, hist = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig(steps=1, batch_size=8), oracle=oracle, positives=z,
                      progress_bar=False)
    assert hist.margin == 0.25  # the run used, and recorded, the resolved margin


def test_target_anchor_prefers_the_config_then_the_oracles_unlearn_anchor_and_the_paper_never_anchors(tiny_dcgan):
    oracle = _MeanBrightness(0.0)
    assert target_anchor(UnlearnConfig(), oracle) == 0.0  # an oracle without its own: no anchor
    oracle.unlearn_anchor = 0.5
    assert target_anchor(UnlearnConfig(), oracle) == 0.5
    assert target_anchor(UnlearnConfig(anchor=0.0), oracle) == 0.0  # the config's 0 is an answer, not "unset"
    assert target_anchor(UnlearnConfig.paper(), oracle) == 0.0
    assert target_anchor(UnlearnConfig(method="paper"), oracle) == 0.0  # the oracle's defaults are the oracle method's
    assert target_anchor(UnlearnConfig(), None) == 0.0
    assert target_anchor(UnlearnConfig(), DigitClass(8)) > 0
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)
    z = torch.randn(200, tiny_dcgan.latent_dim, generator=torch.Generator().manual_seed(0))

    def run(cfg):
        new, hist = unlearn(tiny_dcgan, d, 0.0, cfg, oracle=oracle, positives=z, progress_bar=False)
        return new, hist

    oracle.unlearn_anchor = 100.0
    held, hist = run(UnlearnConfig(steps=4, batch_size=8, lr=1e-2, seed=1))
    free, hist_free = run(UnlearnConfig(steps=4, batch_size=8, lr=1e-2, seed=1, anchor=0.0))
    assert hist.anchor == 100.0 and hist_free.anchor == 0.0 and hist.config["anchor"] is None  # used, and recorded

    def drift(new):
        return sum((a - b).pow(2).sum().item() for a, b in zip(tiny_dcgan.parameters(), new.parameters()))

    assert drift(free) > drift(held) > 0  # the oracle's anchor was applied


def test_trainable_limits_the_fine_tuned_parameters(tiny_dcgan):
    names = [n for n, _ in tiny_dcgan.named_parameters()]
    last = names[-1].rsplit(".", 1)[0]  # the last layer's module
    cfg = UnlearnConfig(method="paper", steps=3, batch_size=8, lr=1e-2, log_every=1, trainable=(last,))
    new, _ = unlearn(tiny_dcgan, torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0), -10.0, cfg,
                     progress_bar=False)
    changed = {n for (n, a), b in zip(tiny_dcgan.named_parameters(), new.parameters()) if not torch.equal(a, b)}
    assert changed and all(n.startswith(last + ".") for n in changed)
    with pytest.raises(ValueError, match="names none"):
        unlearn(tiny_dcgan, torch.ones(tiny_dcgan.latent_dim), 0.0, UnlearnConfig(method="paper", steps=1, trainable=("nope",)),
                progress_bar=False)


def test_the_anchor_keeps_the_weights_near_the_original(tiny_dcgan):
    """L2-SP (``anchor``): the same run drifts less from the original weights, and more so the larger the weight."""
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)

    def drift(anchor):
        cfg = UnlearnConfig(method="paper", steps=8, batch_size=8, lr=1e-2, anchor=anchor, seed=3)
        new, _ = unlearn(tiny_dcgan, d, 0.0, cfg, progress_bar=False)
        return sum((a - b).pow(2).sum().item() for a, b in zip(tiny_dcgan.parameters(), new.parameters()))

    free, held, tight = drift(0.0), drift(1.0), drift(100.0)
    assert free > held > tight > 0


def test_the_loops_adam_is_torchs_to_the_last_bit(tiny_dcgan, fresh_python):
    """unlearn's own Adam (torch.optim imports torch._dynamo, seconds on a CPU) gives torch.optim.Adam's weights
    exactly, also for a parameter that gets no gradient; and a short unlearning run in a fresh process imports no
    torch._dynamo."""
    from feature_unlearning.unlearn import Adam

    a, b = copy.deepcopy(tiny_dcgan), copy.deepcopy(tiny_dcgan)
    ours = Adam(list(a.parameters()), lr=3e-3, betas=(0.8, 0.99))
    theirs = torch.optim.Adam(b.parameters(), lr=3e-3, betas=(0.8, 0.99))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        z = torch.randn(16, a.latent_dim, generator=g)
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad(set_to_none=True)
            model(z).pow(2).mean().backward()
            model.fc.bias.grad = None  # no gradient this step: left alone by both
            opt.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.fc.weight, tiny_dcgan.fc.weight) and torch.equal(a.fc.bias, tiny_dcgan.fc.bias)

    code = ("import sys, torch\n"
            "from feature_unlearning.models import DCGANGenerator\n"
            "from feature_unlearning.unlearn import UnlearnConfig, unlearn\n"
            "m = DCGANGenerator(latent_dim=8, base_channels=8).eval()\n"
            "d = torch.nn.functional.normalize(torch.ones(8), dim=0)\n"
            "unlearn(m, d, 0.0, UnlearnConfig.paper(steps=3, batch_size=8), progress_bar=False)\n"
            "print('torch._dynamo' in sys.modules)\n")
    assert fresh_python(code) == "False"


def test_the_cosine_schedule_takes_the_same_first_step_and_moves_less_in_all(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)

    def run(steps, schedule):
        cfg = UnlearnConfig(method="paper", steps=steps, batch_size=8, lr=1e-2, lr_schedule=schedule, seed=3)
        return unlearn(tiny_dcgan, d, 0.0, cfg, progress_bar=False)[0]

    def drift(new):
        return sum((a - b).pow(2).sum().item() for a, b in zip(tiny_dcgan.parameters(), new.parameters()))

    one_c, one_s = run(1, "constant"), run(1, "cosine")
    assert all(torch.equal(a, b) for a, b in zip(one_c.parameters(), one_s.parameters()))  # step 1: the full lr
    assert drift(run(12, "constant")) > drift(run(12, "cosine")) > 0  # then it decays towards 0
    with pytest.raises(ValueError, match="lr_schedule"):
        UnlearnConfig(lr_schedule="linear")


def test_ema_returns_the_averaged_weights(tiny_dcgan):
    d = torch.nn.functional.normalize(torch.ones(tiny_dcgan.latent_dim), dim=0)

    def run(ema):
        cfg = UnlearnConfig(method="paper", steps=6, batch_size=8, lr=1e-2, ema=ema, seed=3)
        return unlearn(tiny_dcgan, d, 0.0, cfg, progress_bar=False)[0]

    def drift(new):
        return sum((a - b).pow(2).sum().item() for a, b in zip(tiny_dcgan.parameters(), new.parameters()))

    raw, averaged, frozen = run(0.0), run(0.5), run(0.999999)
    assert drift(raw) > drift(averaged) > drift(frozen) > 0  # a slow average stays near the original weights
    assert drift(frozen) < 1e-3 * drift(raw)
    with pytest.raises(ValueError, match="ema"):
        UnlearnConfig(ema=1.0)


def test_parse_overrides_reads_each_value_as_its_fields_type():
    from feature_unlearning.unlearn import parse_overrides

    got = parse_overrides(["steps=200", "lr=1e-3", "linear_positives=false", "trainable=model.0,model.1",
                           "search_offsets=[1.5, 2.5]", "margin=none", "anchor=0.01", "lr_schedule=constant"])
    assert got == {"steps": 200, "lr": 1e-3, "linear_positives": False, "trainable": ("model.0", "model.1"),
                   "search_offsets": (1.5, 2.5), "margin": None, "anchor": 0.01, "lr_schedule": "constant"}
    assert parse_overrides(["trainable=[]"]) == {"trainable": ()}
    assert parse_overrides(["mixed_precision=auto"]) == parse_overrides(["mixed_precision=none"]) == {"mixed_precision": None}
    # a flag whose default is None (auto) still reads as a flag
    assert parse_overrides(["mixed_precision=false"]) == {"mixed_precision": False}
    with pytest.raises(ValueError, match="true or false"):
        parse_overrides(["mixed_precision=fast"])
    UnlearnConfig(**got)  # a valid config
    for bad, message in [("steps", "FIELD=VALUE"), ("stepz=3", "not an UnlearnConfig field"),
                         ("steps=2.5", "steps=2.5"), ("linear_positives=maybe", "true or false"),
                         ("lr=none", "cannot be none")]:
        with pytest.raises(ValueError, match=message):
            parse_overrides([bad])


def test_the_hinge_reads_the_oracles_hinge_scores():
    """The hinge pushes down ``hinge_scores`` (StrokeThickness: specks of up to three pixels removed), else ``scores``."""
    from types import SimpleNamespace

    from feature_unlearning.oracles import Oracle
    from feature_unlearning.unlearn import oracle_hinge

    class Fooled(Oracle):
        threshold = 0.0

        def scores(self, images):
            return images.flatten(1).mean(1) + 5.0  # clearly the feature

        def hinge_scores(self, images):
            return images.flatten(1).mean(1) - 5.0  # clearly not

    x = torch.zeros(2, 1, 4, 4)
    assert torch.equal(oracle_hinge(Fooled(), x, 1.0), torch.zeros(2))
    duck = SimpleNamespace(threshold=0.0, scores=lambda images: images.flatten(1).mean(1) + 5.0)  # no hinge_scores
    assert torch.allclose(oracle_hinge(duck, x, 1.0), torch.full((2,), 6.0))


def test_mixed_precision_runs_the_networks_in_bfloat16_on_the_cpu_too(tiny_dcgan):
    """``mixed_precision`` is bfloat16 autocast on the model's device, the CPU included (not silently ignored)."""
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    runs, autocast_seen = {}, {}
    for mp in (False, True):
        seen = autocast_seen[mp] = []  # the hook travels with the deep copies into the teacher and the student
        hook = tiny_dcgan.register_forward_hook(
            lambda m, i, out, seen=seen: seen.append(torch.is_autocast_enabled("cpu"))
        )
        try:
            runs[mp] = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig.paper(steps=3, batch_size=8, mixed_precision=mp))[0]
        finally:
            hook.remove()
    assert autocast_seen[True] and all(autocast_seen[True]) and not any(autocast_seen[False])
    plain, mixed = ([p for p in m.parameters()] for m in (runs[False], runs[True]))
    assert all(torch.isfinite(p).all() for p in mixed) and all(p.dtype == torch.float32 for p in mixed)
    assert any(not torch.equal(a, b) for a, b in zip(plain, mixed))


@pytest.mark.parametrize("native", [False, True])
def test_mixed_precision_none_means_where_bfloat16_is_native_and_the_history_says_which(tiny_dcgan, monkeypatch, native):
    import importlib

    unlearn_module = importlib.import_module("feature_unlearning.unlearn")  # the package's `unlearn` is the function

    asked = []
    monkeypatch.setattr(unlearn_module, "bfloat16_is_fast", lambda device: asked.append(device) or native)
    d = torch.nn.functional.normalize(torch.randn(tiny_dcgan.latent_dim), dim=0)
    _, history = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig.paper(steps=2, batch_size=8, mixed_precision=None))
    assert asked == [torch.device("cpu")] and history.config["mixed_precision"] is native
    _, history = unlearn(tiny_dcgan, d, 0.0, UnlearnConfig.paper(steps=2, batch_size=8, mixed_precision=False))
    assert len(asked) == 1 and history.config["mixed_precision"] is False  # an explicit choice is not second-guessed


def test_bfloat16_is_fast_reads_the_cpus_flags(monkeypatch, tmp_path):
    from feature_unlearning import utils

    assert utils.bfloat16_is_fast("meta") is False
    cpuinfo = tmp_path / "cpuinfo"
    real_path = utils.Path
    monkeypatch.setattr(utils, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert utils.bfloat16_is_fast("cpu") is False
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert utils.bfloat16_is_fast("cpu") is True
