"""Training the base models from data: the DCGAN, the VAE and the digit classifier.

``feature-unlearning train {dcgan,vae,classifier}`` calls these functions; the shipped checkpoints
were made by ``python -m benchmarks.train_bundled`` (which calls them too) with the defaults below.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import ConvVAE, DCGANDiscriminator, DCGANGenerator, DigitClassifier
from .utils import progress, seed_everything

Callback = Callable[[int, dict], None]


@dataclass(kw_only=True)
class GANTrainConfig:
    """The DCGAN recipe (Radford et al., 2016): Adam 2e-4 with betas (0.5, 0.999), BatchNorm in G and D,
    N(0, 0.02) initial weights, the non-saturating loss, and nothing else; the digits' class balance
    comes from the data. The extras of earlier checkpoints stay available but are off by default."""

    steps: int = 20_000  # the bundled mnist-dcgan (benchmarks/results/dcgan_snapshots.md)
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_start: int = 0  # > 0: after this step both learning rates fall linearly, to 0 after the last step
    ema_decay: float = 0.0  # > 0: the returned generator is an exponential moving average of G's weights
    translate: int = 0  # DiffAugment (Zhao et al., 2020): shift real and fake images by up to this many px for D
    balance_weight: float = 0.0  # > 0: push each batch's class histogram (by mnist-classifier) towards uniform
    minibatch_std: bool = False  # the discriminator's minibatch standard-deviation channel
    latent_dim: int = 32
    base_channels: int = 64
    seed: int = 0
    device: str = "cpu"


@dataclass(kw_only=True)
class VAETrainConfig:
    epochs: int = 120
    batch_size: int = 128
    lr: float = 1e-3
    latent_dim: int = 8  # prior samples were more confident and closer to real digits than with 16
    base_channels: int = 32
    hidden_dim: int = 128
    seed: int = 0
    device: str = "cpu"


@dataclass(kw_only=True)
class ClassifierTrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    kernel_size: int = 3
    feature_dim: int = 128
    augment: bool = True  # small random shifts, rotations and scalings of the training digits
    seed: int = 0
    device: str = "cpu"


@dataclass(kw_only=True)
class JudgeTrainConfig:
    """The independent judge's recipe, deliberately unlike the oracle's (AdamW, one-cycle, affine jitter):
    SGD with Nesterov momentum, cosine decay, label smoothing, elastic + affine augmentation."""

    epochs: int = 24
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    width: int = 8
    elastic_alpha: float = 0.8  # typical displacement of the elastic field, px
    elastic_sigma: float = 3.0  # smoothness of the field, px
    seed: int = 0
    device: str = "cpu"


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless random mini-batch indices over ``n`` items."""
    while True:
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]


def random_translate(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by a random integer offset in [-max_shift, max_shift] px, filling with background (-1).

    Differentiable with respect to ``x`` (DiffAugment: the same augmentation is applied to real and fake
    images before the discriminator, so it cannot leak into the generator's output)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)


@torch.no_grad()
def recalibrate_batchnorm(model: DCGANGenerator, *, n: int = 20_000, batch_size: int = 500, seed: int = 0) -> None:
    """Re-estimate every BatchNorm's running statistics as the exact mean over ``n`` prior samples.

    After this, eval-mode outputs match what training-mode batches of the prior see, and each image
    depends only on its own latent.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(max(1, n // batch_size)):
        model(model.sample_latent(batch_size, generator=gen))
    for bn in bns:
        bn.momentum = 0.1
    model.train(was_training)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) weights for (transposed) convolutions and linear layers, N(1, 0.02)
    BatchNorm scales, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def train_dcgan(
    images: torch.Tensor,
    config: GANTrainConfig | None = None,
    *,
    callback: Callback | None = None,
    snapshot: Callable[[int, dict[str, DCGANGenerator]], None] | None = None,
    snapshot_every: int = 2000,
    balance_classifier: nn.Module | None = None,
) -> tuple[DCGANGenerator, dict]:
    """Train a :class:`DCGANGenerator` with the non-saturating GAN loss against a
    :class:`DCGANDiscriminator`. ``images``: ``(N, C, S, S)`` in [-1, 1]. Returns the generator (its
    moving average if ``config.ema_decay > 0``; eval mode, BatchNorm recalibrated) and a history of
    losses. ``snapshot(step, generators)`` receives recalibrated eval-mode copies every ``snapshot_every``
    steps, ``{"raw": G}`` plus ``"ema"`` when averaging (to watch quality and keep the best)."""
    cfg = config or GANTrainConfig()
    if cfg.balance_weight > 0 and balance_classifier is None:
        from .hub import load_pretrained

        balance_classifier = load_pretrained("mnist-classifier")
    if balance_classifier is not None:
        balance_classifier = balance_classifier.to(cfg.device).eval().requires_grad_(False)
    gen = seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    c, s = images.shape[1], images.shape[-1]
    g = DCGANGenerator(latent_dim=cfg.latent_dim, channels=c, image_size=s, base_channels=cfg.base_channels).to(device)
    d = DCGANDiscriminator(channels=c, image_size=s, base_channels=cfg.base_channels,
                           minibatch_std=cfg.minibatch_std).to(device)
    dcgan_init(g)
    dcgan_init(d)
    g_ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=cfg.betas)
    history: dict = {"step": [], "loss_d": [], "loss_g": [], "lr": []}
    start = time.perf_counter()
    batches = _batches(len(images), cfg.batch_size, gen)
    for step in progress(range(1, cfg.steps + 1), desc="train dcgan"):
        if 0 < cfg.lr_decay_start < step:
            for opt in (opt_g, opt_d):
                opt.param_groups[0]["lr"] = cfg.lr * (cfg.steps - step + 1) / (cfg.steps - cfg.lr_decay_start + 1)
        real = random_translate(images[next(batches)], cfg.translate, gen).to(device)
        z = g.sample_latent(cfg.batch_size, generator=gen)
        fake = g(z)
        fake_aug = random_translate(fake, cfg.translate, gen)
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake_aug.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(fake_aug)).mean()
        if cfg.balance_weight > 0:
            hist = balance_classifier(fake).softmax(1).mean(0)
            loss_g = loss_g + cfg.balance_weight * (hist * (hist * len(hist)).log()).sum()  # KL(hist || uniform)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if cfg.ema_decay > 0:
            ema_update(g_ema, g, cfg.ema_decay if step > 500 else 0.0)
        if snapshot is not None and step % snapshot_every == 0:
            snaps = {"raw": copy.deepcopy(g)} | ({"ema": copy.deepcopy(g_ema)} if cfg.ema_decay > 0 else {})
            for snap in snaps.values():
                recalibrate_batchnorm(snap, n=5000, seed=cfg.seed)
                snap.eval()
            snapshot(step, snaps)
        if step % 100 == 0 or step == cfg.steps:
            history["step"].append(step)
            history["loss_d"].append(loss_d.item())
            history["loss_g"].append(loss_g.item())
            history["lr"].append(opt_g.param_groups[0]["lr"])
            if callback is not None:
                callback(step, {"loss_d": loss_d.item(), "loss_g": loss_g.item()})
    out = g_ema if cfg.ema_decay > 0 else g
    recalibrate_batchnorm(out, seed=cfg.seed)
    history["seconds"] = time.perf_counter() - start
    return out.eval().cpu(), history


def vae_loss(vae: ConvVAE, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The negative ELBO per image (Bernoulli likelihood of pixel intensities in [0, 1])."""
    mu, logvar = vae.encode(x)
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    z = mu + eps * (0.5 * logvar).exp()
    target = (x + 1.0) / 2.0
    recon = F.binary_cross_entropy_with_logits(vae.decode_logits(z), target, reduction="sum") / len(x)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / len(x)
    return recon + kl, {"recon": recon.item(), "kl": kl.item()}


def train_vae(
    images: torch.Tensor, config: VAETrainConfig | None = None, *, callback: Callback | None = None
) -> tuple[ConvVAE, dict]:
    """Train a :class:`ConvVAE` on ``images`` ``(N, C, S, S)`` in [-1, 1] by maximising the ELBO."""
    cfg = config or VAETrainConfig()
    gen = seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    c, s = images.shape[1], images.shape[-1]
    vae = ConvVAE(
        latent_dim=cfg.latent_dim, channels=c, image_size=s, base_channels=cfg.base_channels, hidden_dim=cfg.hidden_dim
    ).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    steps_per_epoch = len(images) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    history: dict = {"step": [], "loss": [], "recon": [], "kl": []}
    start = time.perf_counter()
    batches = _batches(len(images), cfg.batch_size, gen)
    vae.train()
    for step in progress(range(1, total + 1), desc="train vae"):
        loss, parts = vae_loss(vae, images[next(batches)].to(device), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % steps_per_epoch == 0:
            history["step"].append(step)
            history["loss"].append(loss.item())
            history["recon"].append(parts["recon"])
            history["kl"].append(parts["kl"])
            if callback is not None:
                callback(step, {"loss": loss.item(), **parts})
    history["seconds"] = time.perf_counter() - start
    return vae.eval().cpu(), history


def augment_digits(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random affine jitter of a batch ``(N, 1, S, S)`` in [-1, 1]: +-10 degrees, +-2 px, 0.9-1.1 scale."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / (x.shape[-1] / 2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    # pad with the background value -1, not zero
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def elastic_affine(
    x: torch.Tensor, generator: torch.Generator, *, alpha: float = 0.8, sigma: float = 3.0
) -> torch.Tensor:
    """Elastic distortion (Simard et al., 2003: a Gaussian-smoothed random displacement field, here scaled
    so its typical displacement is ``alpha`` px) on top of a random affine map (+-15 degrees, +-10% scale,
    +-15% shear, +-2 px), in one resampling of ``x`` ``(N, 1, S, S)`` in [-1, 1]."""
    n, _, h, w = x.shape
    u = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    angle, scale, shear = u(n) * math.radians(15), 1 + u(n) * 0.1, u(n) * 0.15
    shift = u(n, 2) * (2 / (w / 2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    field = torch.randn(n, 2, h, w, generator=generator)
    radius = int(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    field = F.conv2d(F.pad(field, (radius,) * 4, mode="reflect").reshape(2 * n, 1, h + 2 * radius, w + 2 * radius),
                     k.view(1, 1, 1, -1))
    field = F.conv2d(field, k.view(1, 1, -1, 1)).reshape(n, 2, h, w)
    field = field / field.flatten(1).std(1).clamp_min(1e-8).view(n, 1, 1, 1) * (alpha * 2 / w)
    grid = grid + field.permute(0, 2, 3, 1).to(x)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def train_judge(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: JudgeTrainConfig | None = None,
    *,
    callback: Callback | None = None,
) -> tuple[nn.Module, dict]:
    """Train the independent digit judge, a :class:`~feature_unlearning.models.DigitResNet`."""
    from .models import DigitResNet

    cfg = config or JudgeTrainConfig()
    gen = seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    net = DigitResNet(num_classes=int(labels.max()) + 1, channels=images.shape[1], width=cfg.width).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = len(images) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    augment = partial(elastic_affine, generator=gen, alpha=cfg.elastic_alpha, sigma=cfg.elastic_sigma)
    return _fit_classifier(net, opt, sched, images, labels, augment=augment, batch_size=cfg.batch_size, total=total,
                           generator=gen, device=device, label_smoothing=cfg.label_smoothing, desc="train judge",
                           callback=callback)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierTrainConfig | None = None,
    *,
    callback: Callback | None = None,
) -> tuple[DigitClassifier, dict]:
    """Train a :class:`DigitClassifier` with cross-entropy (and optional affine augmentation)."""
    cfg = config or ClassifierTrainConfig()
    gen = seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    clf = DigitClassifier(
        num_classes=int(labels.max()) + 1,
        channels=images.shape[1],
        width=cfg.width,
        kernel_size=cfg.kernel_size,
        feature_dim=cfg.feature_dim,
    ).to(device)
    opt = torch.optim.AdamW(clf.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps_per_epoch = len(images) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    augment = partial(augment_digits, generator=gen) if cfg.augment else None
    return _fit_classifier(clf, opt, sched, images, labels, augment=augment, batch_size=cfg.batch_size, total=total,
                           generator=gen, device=device, desc="train classifier", callback=callback)


def _fit_classifier(net, opt, sched, images, labels, *, augment, batch_size: int, total: int, generator, device,
                    label_smoothing: float = 0.0, desc: str, callback: Callback | None) -> tuple[nn.Module, dict]:
    """The supervised loop shared by the classifier and the judge: ``total`` steps of cross-entropy on shuffled
    batches (``augment(x)`` applied to each if given), the history logged once an epoch."""
    steps_per_epoch = len(images) // batch_size
    history: dict = {"step": [], "loss": []}
    start = time.perf_counter()
    batches = _batches(len(images), batch_size, generator)
    net.train()
    for step in progress(range(1, total + 1), desc=desc):
        idx = next(batches)
        x = images[idx] if augment is None else augment(images[idx])
        loss = F.cross_entropy(net(x.to(device)), labels[idx].to(device), label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % steps_per_epoch == 0:
            history["step"].append(step)
            history["loss"].append(loss.item())
            if callback is not None:
                callback(step, {"loss": loss.item()})
    history["seconds"] = time.perf_counter() - start
    return net.eval().cpu(), history


@torch.no_grad()
def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000) -> float:
    """Share of ``images`` whose arg-max class equals ``labels``."""
    classifier.eval()
    device = next(classifier.parameters()).device
    correct = sum(
        (classifier(x.to(device)).argmax(1).cpu() == y).sum().item()
        for x, y in zip(images.split(batch_size), labels.split(batch_size))
    )
    return correct / len(images)
