import pytest
import torch

from feature_unlearning import train
from feature_unlearning.models import DCGANDiscriminator, DCGANGenerator, DigitResNet


def fake_images(n: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def test_dcgan_init_follows_the_paper():
    g = DCGANGenerator(latent_dim=8, base_channels=32)
    train.dcgan_init(g)
    conv = g.net[3].weight
    assert abs(conv.std().item() - 0.02) < 0.003 and abs(conv.mean().item()) < 0.002
    bn = g.net[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and torch.all(bn.bias == 0)


def test_discriminator_minibatch_std_is_optional():
    x = fake_images(4)
    plain, mbstd = DCGANDiscriminator(base_channels=8), DCGANDiscriminator(base_channels=8, minibatch_std=True)
    assert plain(x).shape == mbstd(x).shape == (4,)
    assert mbstd.head.in_features == plain.head.in_features + 49


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_train_dcgan_returns_recalibrated_eval_generator(ema):
    seen = []
    cfg = train.GANTrainConfig(steps=4, batch_size=8, latent_dim=4, base_channels=8, ema_decay=ema)
    g, hist = train.train_dcgan(fake_images(), cfg, snapshot=lambda s, gens: seen.append((s, sorted(gens))),
                                snapshot_every=2)
    assert isinstance(g, DCGANGenerator) and not g.training
    assert hist["step"][-1] == 4 and len(hist["loss_d"]) == len(hist["step"]) and hist["seconds"] > 0
    kinds = ["ema", "raw"] if ema else ["raw"]
    assert seen == [(2, kinds), (4, kinds)]
    bn = g.net[1]
    assert bn.num_batches_tracked > 0 and not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    out = g.generate(5, seed=0)
    assert out.shape == (5, 1, 28, 28) and out.abs().max() <= 1
    z = g.sample_latent(5, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(g(z)[:2], g(z[:2]))  # eval mode: each image depends on its latent only


def test_train_dcgan_is_reproducible():
    cfg = train.GANTrainConfig(steps=3, batch_size=8, latent_dim=4, base_channels=8)
    a, _ = train.train_dcgan(fake_images(), cfg)
    b, _ = train.train_dcgan(fake_images(), cfg)
    torch.testing.assert_close(a.generate(3, seed=1), b.generate(3, seed=1))


@pytest.mark.parametrize("decay_start, last_lr", [(0, 2e-4), (2, 2e-4 / 3)])
def test_train_dcgan_lr_decays_linearly_after_its_start(decay_start, last_lr):
    cfg = train.GANTrainConfig(steps=4, batch_size=8, latent_dim=4, base_channels=8, lr_decay_start=decay_start)
    _, hist = train.train_dcgan(fake_images(), cfg)
    assert hist["step"] == [4] and hist["lr"] == [pytest.approx(last_lr)]  # steps 3 and 4: lr * 2/3, lr * 1/3


def test_standard_recipe_has_no_extra_terms():
    cfg = train.GANTrainConfig()
    assert (cfg.lr, cfg.betas) == (2e-4, (0.5, 0.999))
    assert cfg.balance_weight == 0 and not cfg.minibatch_std and cfg.translate == 0 and cfg.lr_decay_start == 0


def test_elastic_affine_keeps_shape_range_and_background():
    g = torch.Generator().manual_seed(0)
    x = fake_images(6)
    out = train.elastic_affine(x, g)
    assert out.shape == x.shape and out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    assert not torch.allclose(out, x)
    blank = -torch.ones(3, 1, 28, 28)
    torch.testing.assert_close(train.elastic_affine(blank, g), blank)
    a = train.elastic_affine(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, train.elastic_affine(x, torch.Generator().manual_seed(3)))


def test_train_judge_returns_a_resnet_in_eval_mode():
    labels = torch.arange(64) % 10
    net, hist = train.train_judge(fake_images(), labels, train.JudgeTrainConfig(epochs=1, batch_size=16, width=4))
    assert isinstance(net, DigitResNet) and not net.training
    assert net(fake_images(3)).shape == (3, 10) and len(hist["loss"]) == 1


def test_train_vae_runs():
    v, hist = train.train_vae(fake_images(), train.VAETrainConfig(epochs=1, batch_size=16, latent_dim=2,
                                                                   base_channels=4, hidden_dim=8))
    assert not v.training and v.generate(2, seed=0).shape == (2, 1, 28, 28)
    assert len(hist["loss"]) == 1
