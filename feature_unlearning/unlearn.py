"""Fine-tuning a copy of a generator so that it stops drawing a feature.

The paper's objective (Moon, Cho & Kim, AAAI 2024, Eq. 4-7), for a frozen teacher f and a student g
initialised from f:

    L = alpha * (L_unlearn + L_percep) + L_recon
    L_recon   = [z is negative] * |g(z) - f(z)|_1
    L_unlearn = [z is positive] * |g(z) - f(z_hat)|_1
    L_percep  = [z is positive] * (1 - MS-SSIM(g(z), f(z_hat)))

Two ways to decide "positive" and pick z_hat (``UnlearnConfig.method``):

* ``"paper"``, exactly as published: positive when proj(z) >= t, and z_hat = z - (proj(z) - t) * d.
* ``"oracle"`` (default): the oracle that defined the feature labels every sample the teacher draws,
  and a positive's target latent is the nearest point along -d whose image the oracle finds clearly
  free of the feature (``margin`` below its threshold: :func:`target_margin`). Samples with the feature that
  the linear rule misses are then unlearned too, samples without it that lie above t are kept, and no target
  is itself a sample with the feature. Half of each batch is drawn from the prior conditioned on a high
  projection, so the rare positives are seen often; the samples are fresh at every step, so the change
  generalises over latent space instead of fitting a fixed set of pairs.

MS-SSIM is adapted to 28x28 images: three scales (28, 14, 7 px) with a Gaussian window of sigma 1 (9 px
wide: torchmetrics sizes a Gaussian window from sigma, and so does :func:`ms_ssim_per_sample`), the first
three of the standard scale weights renormalised (the paper's five scales need >= 160 px).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .directions import project, translate
from .oracles import Oracle
from .utils import bfloat16_is_fast

METHODS = ("oracle", "paper")
LR_SCHEDULES = ("constant", "cosine")
# Scale weights of MS-SSIM (Wang et al., 2003), the first three of five, renormalised.
MS_SSIM_BETAS = tuple(b / (0.0448 + 0.2856 + 0.3001) for b in (0.0448, 0.2856, 0.3001))


@dataclass(kw_only=True)
class UnlearnConfig:
    """Settings of :func:`unlearn`. Defaults are those the benchmark (benchmarks/unlearning.py) validated."""

    method: str = "oracle"  # "oracle" or "paper" (see the module docstring)
    steps: int = 400
    batch_size: int = 64
    lr: float = 6e-4  # Adam's (peak) learning rate
    # "cosine": lr * (1 + cos(pi * (step - 1) / steps)) / 2, from lr down to ~0, the same mean step as a constant lr / 2
    # (not in the paper; on digits it removed as much or more at a higher SSIM: benchmarks/README.md); or "constant"
    lr_schedule: str = "cosine"
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 0.5  # weight of L_unlearn + L_percep against L_recon (the paper's alpha; paper(): 1.0)
    percep_weight: float = 1.0  # weight of the MS-SSIM term inside the alpha bracket
    recon_percep_weight: float = 1.0  # > 0 adds (1 - MS-SSIM(g(z), f(z))) to L_recon (not in the paper; paper(): 0)
    ms_ssim_kernel: int = 7
    ms_ssim_sigma: float = 1.0
    # --- "oracle" method only ---
    margin: float | None = None  # targets score below oracle.threshold - margin (None: target_margin's rule)
    oversample: float = 0.5  # share of each batch drawn from the prior conditioned on proj(z) >= oversample_from
    oversample_quantile: float = 0.05  # ... the projection that this share of the collected positives falls below
    search_offsets: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0)  # moves along -d tried, in latent std
    oracle_weight: float = 0.6  # hinge on the oracle's score of the student's own image of a positive (0: off)
    replay: float = 0.25  # share of each batch re-drawn near latents whose student image still shows the feature
    replay_jitter: float = 0.1  # std of the Gaussian noise added to a replayed latent
    replay_size: int = 1024  # latents remembered for replay (the most recent failures)
    linear_positives: bool = False  # also unlearn latents whose projection is >= t, whatever the oracle says
    # --- both methods ---
    # > 0: L2-SP, adds anchor * sum((w - w_original)^2) over the trained weights (not in the paper); None: the
    # oracle's ``unlearn_anchor`` (0 where it sets none, and for the paper's rule; see :func:`target_anchor`)
    anchor: float | None = None
    trainable: tuple[str, ...] = ()  # names (prefixes) of the parameters fine-tuned, e.g. ("model.9", "model.12"); (): all
    ema: float = 0.0  # > 0: return the exponential moving average of the trained weights with this decay (not in the paper)
    # --- run ---
    seed: int = 0
    device: str | None = None  # None: the model's device
    # bfloat16 autocast of the networks (the losses stay float32), on CUDA or the CPU; on a CPU it pays only with
    # native bfloat16 instructions (AVX512-BF16, AMX): 1.3-1.45x on such a one for digits, 1.5x for faces
    # (benchmarks/README.md); emulated, slower, elsewhere. None (the default): on where it is native
    # (utils.bfloat16_is_fast), float32 elsewhere; the history records which ran. False: float32 everywhere
    mixed_precision: bool | None = None
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if not 0 <= self.oversample < 1:
            raise ValueError(f"oversample must be in [0, 1), got {self.oversample}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {LR_SCHEDULES}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.anchor is not None and self.anchor < 0:
            raise ValueError(f"anchor must be >= 0, got {self.anchor}")

    @classmethod
    def paper(cls, **overrides) -> "UnlearnConfig":
        """The published rule: linear labels, translation exactly to the threshold, prior sampling, alpha 1,
        no term beyond the paper's three, Adam at a constant learning rate (3e-4)."""
        settings = dict(method="paper", alpha=1.0, percep_weight=1.0, recon_percep_weight=0.0, anchor=0.0,
                        lr=3e-4, lr_schedule="constant")
        return cls(**{**settings, **overrides})


def parse_overrides(items) -> dict:
    """:class:`UnlearnConfig` fields from ``"FIELD=VALUE"`` texts (the ``--set`` of the command line and the
    benchmarks), each value read as its field's type: ``steps=200``, ``lr=1e-3``, ``linear_positives=false``,
    ``trainable=model.0,model.1`` or ``trainable=[]``, ``search_offsets=[1.5,2.5]``, ``margin=none``.
    Raises ``ValueError`` naming the text at fault; the values themselves are checked by ``UnlearnConfig``."""
    defaults = {f.name: f.default for f in fields(UnlearnConfig)}
    nullable = {f.name for f in fields(UnlearnConfig) if "None" in str(f.type)}
    # the annotation, not the default, says a field is a flag: mixed_precision (bool | None) defaults to None
    flags = {f.name for f in fields(UnlearnConfig) if str(f.type).split("|")[0].strip() == "bool"}
    out: dict = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise ValueError(f"--set wants FIELD=VALUE, got {item!r}")
        if name not in defaults:
            raise ValueError(f"--set {name}: not an UnlearnConfig field (fields: {', '.join(defaults)})")
        default = defaults[name]
        try:
            if text.lower() in ("none", "null") or (text.lower() == "auto" and name in flags):
                if name not in nullable:
                    raise ValueError("this field cannot be none")
                value = None
            elif name in flags:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("say true or false")
                value = text.lower() in ("true", "1")
            elif isinstance(default, tuple):  # a JSON list, or items separated by commas
                if text.startswith("["):
                    value = tuple(json.loads(text))
                else:
                    value = tuple(_json_or_text(p) for p in text.split(",") if p.strip())
            elif default is None:  # margin, anchor (numbers) or device (a name)
                value = _json_or_text(text)
            else:
                value = type(default)(text)
        except ValueError as err:
            raise ValueError(f"--set {item}: {err}") from None
        out[name] = value
    return out


def _json_or_text(text: str):
    try:
        return json.loads(text.strip())
    except ValueError:
        return text.strip()


@dataclass
class History:
    """What :func:`unlearn` measured while training (one entry per ``log_every`` steps)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    unlearn: list[float] = field(default_factory=list)
    percep: list[float] = field(default_factory=list)
    positive_share: list[float] = field(default_factory=list)  # share of each batch treated as positive
    unresolved: list[float] = field(default_factory=list)  # positives with no feature-free target found
    seconds: float = 0.0
    stopped_early: bool = False
    diverged_at: int | None = None  # the step whose loss or weights were non-finite (see UnlearningDiverged)
    margin: float | None = None  # how far below the oracle's threshold targets had to score; None: the paper's rule
    anchor: float = 0.0  # the L2-SP weight the run used (target_anchor)
    config: dict = field(default_factory=dict)

    def asdict(self) -> dict:
        return asdict(self)

    def log(self, step: int, parts: dict[str, float], positive: torch.Tensor, resolved: torch.Tensor) -> None:
        """Record one logged step: the loss parts, the positive share and the unresolved positives."""
        self.step.append(step)
        for key in ("loss", "recon", "unlearn", "percep"):
            getattr(self, key).append(parts[key])
        self.positive_share.append(positive.float().mean().item())
        n_pos = int(positive.sum())
        self.unresolved.append(float((positive & ~resolved).sum()) / n_pos if n_pos else 0.0)


class UnlearningDiverged(RuntimeError):
    """Training produced a non-finite loss or non-finite weights (usually: the learning rate is too high).

    ``model`` is the student after ``good_step`` optimiser steps (0: an untouched copy of the original), the
    last whose loss and weights were finite, in eval mode on the original model's device; ``step`` is the
    step that diverged and ``history`` what was measured up to it.
    """

    def __init__(self, message: str, *, model: nn.Module, history: "History", step: int, good_step: int):
        super().__init__(message)
        self.model, self.history, self.step, self.good_step = model, history, step, good_step


# ----------------------------------------------------------------------------------- loss terms (pure)


def l1_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image: ``(N, C, H, W)`` x2 -> ``(N,)``."""
    return (a - b).abs().flatten(1).mean(1)


def ms_ssim_per_sample(a: torch.Tensor, b: torch.Tensor, *, kernel_size: int = 7, sigma: float = 1.0) -> torch.Tensor:
    """MS-SSIM per image ``(N, C, H, W)`` x2 in [-1, 1] -> ``(N,)``, adapted to small images (module docstring).

    The same numbers as torchmetrics' ``multiscale_structural_similarity_index_measure`` (Gaussian window,
    reflect padding, ``normalize="relu"``; like torchmetrics, the window spans ``int(3.5 * sigma + 0.5) * 2 + 1``
    pixels whatever ``kernel_size`` says). Images up to 64 px a side are blurred by two small matrix
    products (reflect padding folded into the matrices): on a CPU that is about 3x faster, backward included,
    than torchmetrics' grouped 2-D convolution, which larger images still use.
    """
    if max(a.shape[-2:]) > 64:
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

        return ms_ssim(a.float(), b.float(), kernel_size=kernel_size, sigma=sigma, data_range=2.0,
                       betas=MS_SSIM_BETAS, normalize="relu", reduction="none")
    a, b = a.float(), b.float()
    scores = []
    for i, beta in enumerate(MS_SSIM_BETAS):
        ssim, cs, pad = _ssim_maps(a, b, sigma)
        if i == len(MS_SSIM_BETAS) - 1:  # the full SSIM at the coarsest scale
            value = ssim.flatten(1).mean(1)
        else:  # contrast-structure only, away from the padded border, then halve the resolution
            h, w = a.shape[-2:]
            value = cs[..., pad : h - pad, pad : w - pad].flatten(1).mean(1)
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        scores.append(torch.relu(value) ** beta)
    return torch.stack(scores).prod(0)


def ssim_per_sample(a: torch.Tensor, b: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """SSIM per image ``(N, C, H, W)`` x2 in [-1, 1] -> ``(N,)``: the same numbers as torchmetrics'
    ``structural_similarity_index_measure(..., data_range=2.0, sigma=sigma, reduction="none")`` (Gaussian
    window of ``int(3.5 * sigma + 0.5) * 2 + 1`` taps, reflect padding), without importing torchmetrics,
    which takes seconds. Images larger than 64 px a side go to torchmetrics."""
    if max(a.shape[-2:]) > 64:
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        return ssim(a.float(), b.float(), data_range=2.0, sigma=sigma, reduction="none")
    # float64, blur matrix included: in float32 its rows sum to 1 only within 2e-8, which is enough to give two
    # equal images an SSIM of 1 - 1e-6 (a variance of -4e-8 on the black background)
    return _ssim_maps(a.double(), b.double(), sigma)[0].flatten(1).mean(1).float()


def _ssim_maps(a: torch.Tensor, b: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """SSIM's per-pixel maps at one scale, data range 2: ``(ssim, contrast-structure, pad)``; the Gaussian
    blur is two small matrix products with the reflect padding folded in (:func:`_blur_matrix`)."""
    c1, c2 = (0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2  # torchmetrics' k1, k2 at data_range 2
    h, w = a.shape[-2:]
    blur_h, pad = _blur_matrix(h, sigma, a.device, a.dtype)
    blur_w, _ = _blur_matrix(w, sigma, a.device, a.dtype)
    mu_a, mu_b, e_aa, e_bb, e_ab = (blur_h @ torch.stack((a, b, a * a, b * b, a * b)) @ blur_w.T).unbind(0)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    upper = 2 * (e_ab - mu_ab) + c2
    lower = (e_aa - mu_aa).clamp_min(0) + (e_bb - mu_bb).clamp_min(0) + c2
    return (2 * mu_ab + c1) * upper / ((mu_aa + mu_bb + c1) * lower), upper / lower, pad


@functools.lru_cache(maxsize=32)
def _blur_matrix(n: int, sigma: float, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, int]:
    """``(n, n)`` matrix M such that ``M @ x`` reflect-pads a length-``n`` signal ``x`` by ``pad`` and
    convolves it with torchmetrics' Gaussian window (``int(3.5 * sigma + 0.5) * 2 + 1`` taps); and ``pad``."""
    size = int(3.5 * sigma + 0.5) * 2 + 1
    pad = (size - 1) // 2
    if pad >= n:
        raise ValueError(f"images of {n} px are too small for MS-SSIM's {size}-px window at its coarsest scale")
    offsets = torch.arange((1 - size) / 2, (1 + size) / 2, 1, dtype=torch.float64)
    window = torch.exp(-((offsets / sigma) ** 2) / 2)
    window /= window.sum()
    src = torch.arange(n)[:, None] + torch.arange(size)[None, :] - pad  # (n, size) padded positions read
    src = src.abs()  # reflect at 0 ...
    src = torch.where(src > n - 1, 2 * (n - 1) - src, src)  # ... and at n - 1
    m = torch.zeros(n, n, dtype=torch.float64).index_put_((torch.arange(n)[:, None].expand(-1, size), src),
                                                           window.expand(n, -1), accumulate=True)
    return m.to(device=device, dtype=dtype), pad


def unlearning_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    target: torch.Tensor,
    positive: torch.Tensor,
    *,
    alpha: float = 1.0,
    percep_weight: float = 1.0,
    recon_percep_weight: float = 0.0,
    ms_ssim_kernel: int = 7,
    ms_ssim_sigma: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's loss for one batch.

    ``student`` g(z), ``teacher`` f(z) and ``target`` f(z_hat) are ``(N, C, H, W)``; ``positive`` is
    ``(N,)`` bool. Returns the scalar loss (mean over the batch) and its parts as floats.
    """
    pos = positive.to(student.dtype)
    recon = (1 - pos) * l1_per_sample(student, teacher)
    unl = pos * l1_per_sample(student, target)
    ssim_args = {"kernel_size": ms_ssim_kernel, "sigma": ms_ssim_sigma}
    percep = torch.zeros_like(unl)
    on_pos, on_neg = percep_weight > 0 and bool(positive.any()), recon_percep_weight > 0 and not bool(positive.all())
    if on_pos and on_neg:  # one call for the whole batch: the positives against f(z_hat), the negatives against f(z)
        dissim = 1 - ms_ssim_per_sample(student, torch.where(positive[:, None, None, None], target, teacher),
                                        **ssim_args).to(unl.dtype)
        percep = pos * dissim
        recon = recon + recon_percep_weight * (1 - pos) * dissim
    elif on_pos:
        p_idx = positive.nonzero().squeeze(1)
        ssim = ms_ssim_per_sample(student[p_idx], target[p_idx], **ssim_args)
        percep = percep.index_put((p_idx,), 1 - ssim.to(unl.dtype))
    elif on_neg:
        n_idx = (~positive).nonzero().squeeze(1)
        ssim = ms_ssim_per_sample(student[n_idx], teacher[n_idx], **ssim_args)
        recon = recon.index_put((n_idx,), recon[n_idx] + recon_percep_weight * (1 - ssim.to(unl.dtype)))
    loss = (alpha * (unl + percep_weight * percep) + recon).mean()
    return loss, {
        "loss": loss.item(),
        "recon": recon.mean().item(),
        "unlearn": unl.mean().item(),
        "percep": percep.mean().item(),
    }


def target_margin(cfg: UnlearnConfig, oracle: Oracle | None) -> float:
    """How far below the oracle's threshold the unlearning's targets must score: ``cfg.margin`` when set,
    else the oracle's ``unlearn_margin``, else its ``default_margin`` (0 without an oracle)."""
    if cfg.margin is not None:
        return float(cfg.margin)
    own = getattr(oracle, "unlearn_margin", None)
    return float(own if own is not None else getattr(oracle, "default_margin", 0.0))


def target_anchor(cfg: UnlearnConfig, oracle: Oracle | None) -> float:
    """The L2-SP weight of a run: ``cfg.anchor`` when set, else the oracle's ``unlearn_anchor`` for the
    oracle-guided method, else 0 (the paper's rule never anchors unless asked to)."""
    if cfg.anchor is not None:
        return float(cfg.anchor)
    own = getattr(oracle, "unlearn_anchor", None) if cfg.method == "oracle" else None
    return float(own) if own is not None else 0.0


def oracle_hinge(oracle: Oracle, images: torch.Tensor, margin: float) -> torch.Tensor:
    """Per image, how far the oracle's score is above ``threshold - margin``, in units of the margin
    (0 once an image is clearly free of the feature): ``(N, C, H, W)`` -> ``(N,)``. The score is the oracle's
    ``hinge_scores`` where it has one (:meth:`Oracle.hinge_scores`), else ``scores``."""
    unit = margin if margin > 0 else 1.0
    score = getattr(oracle, "hinge_scores", oracle.scores)
    return torch.relu((score(images) - (oracle.threshold - margin)) / unit)


# ---------------------------------------------------------------------------- sampling and targets


def _standard_normal_above(q: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of N(0, 1) conditioned on being >= q (inverse-CDF sampling)."""
    lo = 0.5 * (1 + math.erf(q / math.sqrt(2)))
    u = lo + (1 - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    return (math.sqrt(2) * torch.erfinv(2 * u - 1)).float()


def sample_batch(
    n: int,
    latent_dim: int,
    direction: torch.Tensor,
    *,
    oversample: float,
    cut: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """``n`` latents: a share ``oversample`` from N(0, I) conditioned on proj >= ``cut``, the rest from N(0, I).

    The prior factorises into the projection on the unit vector ``direction`` and the orthogonal rest, so
    replacing the projection by a conditioned draw samples the conditioned prior exactly.
    """
    z = torch.randn(n, latent_dim, generator=generator)
    k = int(round(oversample * n))
    if k:
        d = direction.cpu().float()
        p = z[:k] @ d
        z[:k] += (_standard_normal_above(cut, k, generator) - p)[:, None] * d
    return z


@torch.no_grad()
def find_targets(
    teacher: nn.Module,
    oracle: Oracle,
    z: torch.Tensor,
    direction: torch.Tensor,
    t: float,
    *,
    margin: float,
    offsets: tuple[float, ...],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target latents for positives: the first of z - (max(proj - t, 0) + o) * d, o in ``offsets``,
    whose image the oracle scores below ``threshold - margin``. The offsets are tried in turn, each on the
    positives still unresolved: most resolve at the first (80% for thick strokes, 68% for digit 8 of the
    prior's positives on the bundled DCGAN; 97% and 85% by the second), so this runs ~1.25-1.6x the
    positives through the teacher where one batch of every offset at once would run 8x.

    Returns ``(z_hat, images, resolved)``: the target latents, the teacher's images of them, and
    whether each met the margin (where no offset did, z_hat is the largest move tried).
    """
    d = direction.to(z)
    base = (project(z, d) - t).clamp_min(0.0)
    z_hat = z.clone()
    images = None
    todo = torch.ones(len(z), dtype=torch.bool, device=z.device)
    for offset in offsets:
        idx = todo.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        cand = z[idx] - (base[idx] + offset)[:, None] * d
        out = teacher(cand).float()
        if images is None:
            images = torch.empty(len(z), *out.shape[1:], device=out.device)
        z_hat[idx], images[idx] = cand, out
        ok = oracle.scores(out).to(z.device) < oracle.threshold - margin
        todo[idx[ok]] = False
    return z_hat, images, ~todo


# ------------------------------------------------------------------------------------------ the loop


def oversample_cut(direction: torch.Tensor, positives: torch.Tensor, quantile: float) -> float:
    """The projection above which the oversampled share of a batch is drawn: the ``quantile`` of the
    projections of the collected ``positives`` ``(P, latent_dim)`` on ``direction``."""
    if len(positives) == 0:
        raise ValueError("no positive latents to place the oversampling cut: collect samples that show the feature")
    return float(torch.quantile(project(positives.float().cpu(), direction.cpu()), quantile))


@torch.no_grad()
def collect_positives(model: nn.Module, oracle: Oracle, *, n: int = 2000, seed: int = 0) -> torch.Tensor:
    """Latents ``(P, latent_dim)`` among ``n`` fresh ones from the prior whose images ``oracle`` says show the
    feature: what :func:`unlearn` places its oversampling cut by when it is not given the collected positives.
    Draws from its own generator (``seed``), so the training's random stream is not touched."""
    from .models.base import render

    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed + 7919))
    labels = torch.cat([oracle.labels(render(model, chunk)) for chunk in z.split(500)])
    if not labels.any():
        raise ValueError(f"the oracle {oracle} finds the feature in none of {n} samples: nothing to unlearn")
    return z[labels]


def draw_latents(
    cfg: UnlearnConfig,
    latent_dim: int,
    direction: torch.Tensor,
    cut: float | None,
    failures: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """One batch of latents ``(batch_size, latent_dim)`` on the CPU: the prior (``"paper"``), or the prior with
    a share conditioned on a high projection and a share replayed near past ``failures`` (``"oracle"``)."""
    if cfg.method == "paper":
        return torch.randn(cfg.batch_size, latent_dim, generator=generator)
    z = sample_batch(cfg.batch_size, latent_dim, direction, oversample=cfg.oversample, cut=cut, generator=generator)
    k = min(int(round(cfg.replay * cfg.batch_size)), len(failures))
    if k:  # hard examples: the regions of latent space the student has not unlearned yet
        pick = torch.randint(len(failures), (k,), generator=generator)
        z[-k:] = failures[pick] + cfg.replay_jitter * torch.randn(k, latent_dim, generator=generator)
    return z


@torch.no_grad()
def make_targets(
    teacher: nn.Module,
    z: torch.Tensor,
    direction: torch.Tensor,
    threshold: float,
    cfg: UnlearnConfig,
    oracle: Oracle | None,
    margin: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the student should draw for latents ``z``: ``(teach, target, positive, resolved)``.

    ``teach`` = f(z) and ``target`` = f(z_hat) are ``(N, C, H, W)``; ``target`` equals ``teach`` on the
    negatives. ``positive`` says which latents are unlearned (linear rule or oracle, see ``cfg.method``),
    ``resolved`` which positives found a target clearly free of the feature.
    """
    teach = teacher(z).float()
    target = teach.clone()
    if cfg.method == "paper":
        positive = project(z, direction) >= threshold
        if positive.any():
            target[positive] = teacher(translate(z[positive], direction, threshold)).float()
        return teach, target, positive, positive
    positive = oracle.scores(teach).to(z.device) >= oracle.threshold - margin
    if cfg.linear_positives:  # an oracle with a low recall misses samples the direction clearly places high
        positive |= project(z, direction) >= threshold
    resolved = positive.clone()
    if positive.any():
        _, target[positive], resolved[positive] = find_targets(
            teacher, oracle, z[positive], direction, threshold, margin=margin, offsets=cfg.search_offsets
        )
    return teach, target, positive, resolved


def training_step(
    student: nn.Module,
    optimizer: "Adam | torch.optim.Optimizer",
    z: torch.Tensor,
    teach: torch.Tensor,
    target: torch.Tensor,
    positive: torch.Tensor,
    cfg: UnlearnConfig,
    oracle: Oracle | None,
    margin: float,
    autocast,
    last_good: "_Snapshot | None" = None,
    start: "_Snapshot | None" = None,
    anchor: float = 0.0,
) -> tuple[dict[str, float], torch.Tensor]:
    """One optimiser step of the student on one batch. Returns the loss parts and the latents whose student
    image still shows the feature (for replay; empty unless the hinge is on).

    A non-finite loss takes no step (``parts["loss"]`` says so); a finite one first saves the weights it was
    computed on into ``last_good``, so that a divergence can hand back the last model known to be good.
    With ``anchor > 0`` (:func:`target_anchor`), ``start`` holds the weights training began from (L2-SP, Li et
    al., 2018)."""
    with autocast:
        out = student(z).float()
    loss, parts = unlearning_loss(
        out,
        teach,
        target,
        positive,
        alpha=cfg.alpha,
        percep_weight=cfg.percep_weight,
        recon_percep_weight=cfg.recon_percep_weight,
        ms_ssim_kernel=cfg.ms_ssim_kernel,
        ms_ssim_sigma=cfg.ms_ssim_sigma,
    )
    failed = z[:0]
    if cfg.method == "oracle" and cfg.oracle_weight > 0 and positive.any():
        # where the student still draws the feature, push its own image below the margin; the L1/MS-SSIM
        # anchor to a real feature-free image of the teacher keeps this from drifting off the image manifold
        hinge = oracle_hinge(oracle, out[positive], margin)
        loss = loss + cfg.alpha * cfg.oracle_weight * hinge.sum() / len(z)  # part of the alpha bracket
        parts["oracle"] = hinge.mean().item()
        parts["loss"] = loss.item()
        failed = z[positive][hinge.detach() > 0]
    if anchor > 0 and start is not None:  # L2-SP: stay near the original weights
        drift = torch.stack([(p - p0).pow(2).sum() for p, p0 in zip(start.params, start.copy)]).sum()
        loss = loss + anchor * drift
        parts["anchor"] = drift.item()
        parts["loss"] = loss.item()
    if not math.isfinite(parts["loss"]):
        return parts, z[:0]
    if last_good is not None:
        last_good.save()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return parts, failed


def trainable_parameters(model: nn.Module, names: tuple[str, ...] = ()) -> list[torch.Tensor]:
    """The parameters unlearning fine-tunes: ``model.generator_parameters()``, or those of them whose name
    (``model.named_parameters()``) is one of ``names`` or starts with one followed by a dot."""
    params = list(model.generator_parameters())
    if not names:
        return params
    named = {id(p): n for n, p in model.named_parameters()}
    picked = [p for p in params if any(named[id(p)] == k or named[id(p)].startswith(k + ".") for k in names)]
    if not picked:
        listed = ", ".join(named[id(p)] for p in params)
        raise ValueError(f"trainable={names!r} names none of the generator's parameters: {listed}")
    return picked


class _Snapshot:
    """A copy of some parameters, to go back to (the last weights known to give a finite loss)."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        self.copy = [p.detach().clone() for p in params]
        self.step = 0  # how many optimiser steps the saved weights have taken
        self._saves = 0

    @torch.no_grad()
    def save(self) -> None:
        """Called just before each optimiser step: the k-th save holds the weights after k - 1 steps."""
        torch._foreach_copy_(self.copy, [p.detach() for p in self.params])
        self.step, self._saves = self._saves, self._saves + 1

    @torch.no_grad()
    def restore(self) -> None:
        torch._foreach_copy_([p.detach() for p in self.params], self.copy)


class Adam:
    """Adam (Kingma & Ba, 2015) with the arithmetic of ``torch.optim.Adam``'s default single-tensor path on the
    CPU (no weight decay, no amsgrad): the same weights to the last bit, tested.

    Why not ``torch.optim.Adam`` itself: every ``torch.optim`` optimiser imports ``torch._dynamo`` when it is first
    built, which took 3.0 s of a 48 s command-line run on the 2-core development CPU; the unlearning loop needs
    only ``step`` and ``zero_grad``.
    """

    def __init__(self, params: list[torch.Tensor], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        bias_correction1 = 1 - beta1 ** float(self.steps)
        bias_correction2_sqrt = (1 - beta2 ** float(self.steps)) ** 0.5
        step_size = self.lr / bias_correction1
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params, grads = [self.params[i] for i in live], [self.params[i].grad for i in live]
        m, v = [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live]
        # the single-tensor arithmetic, one foreach call per operation (elementwise, so the same bits)
        torch._foreach_lerp_(m, grads, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, value=-step_size)


def _all_finite(params: list[torch.Tensor]) -> bool:
    # one sync for all: a tensor's largest |value| is NaN or inf exactly when one of its values is
    return bool(torch.isfinite(torch.stack([p.detach().abs().amax() for p in params])).all())


def unlearn(
    model: nn.Module,
    direction: torch.Tensor,
    threshold: float,
    config: UnlearnConfig | None = None,
    *,
    oracle: Oracle | None = None,
    positives: torch.Tensor | None = None,
    callback: Callable[[int, dict], bool | None] | None = None,
    progress_bar: bool | None = None,
) -> tuple[nn.Module, History]:
    """Fine-tune a copy of ``model`` so that it no longer draws the feature; ``model`` is untouched.

    ``direction`` is the unit feature direction ``(latent_dim,)`` and ``threshold`` the projection t
    (see :mod:`feature_unlearning.directions`). The ``"oracle"`` method needs the ``oracle`` that
    defined the feature (a :class:`~feature_unlearning.oracles.Selection` must first become a probe:
    ``selection.fit_probe(images)``). Its oversampled share of each batch is drawn above the
    ``oversample_quantile`` of the projections of ``positives`` ``(P, latent_dim)``, the collected latents
    whose samples showed the feature; without them, it labels 2,000 fresh samples itself
    (:func:`collect_positives`). ``feature.unlearn(model, config)`` passes the feature's own.

    Runs on ``config.device`` (default: ``model``'s device) with its own random generator seeded by
    ``config.seed``; the global random state, ``model`` and ``oracle`` are left as they were.
    ``callback(step, info)`` is called every ``log_every`` steps with the losses, the elapsed seconds
    and the current ``model``; returning ``False`` stops training early (the model so far is returned).
    Returns ``(unlearned_model, history)``; the unlearned model is in eval mode on ``model``'s device.

    Raises :class:`UnlearningDiverged` when the loss or the weights stop being finite (a learning rate far
    too high); the exception carries the last good model, the history and the step.
    """
    from .oracles import Selection
    from .utils import progress

    cfg = config or UnlearnConfig()
    if direction.ndim != 1 or direction.numel() != model.latent_dim:
        raise ValueError(f"direction must have shape ({model.latent_dim},), got {tuple(direction.shape)}")
    if not torch.isfinite(direction).all() or direction.norm() < 1e-6:
        raise ValueError("direction must be a finite, non-zero vector")
    cut = None
    if cfg.method == "oracle":
        if oracle is None:
            raise ValueError("method='oracle' needs the oracle that defines the feature (or use UnlearnConfig.paper())")
        if isinstance(oracle, Selection):
            raise ValueError("a Selection only labels the images it was made on; pass selection.fit_probe(images)")
        if cfg.oversample > 0:
            if positives is None:
                positives = collect_positives(model, oracle, seed=cfg.seed)
            cut = oversample_cut(direction, positives, cfg.oversample_quantile)

    direction = (direction / direction.norm()).float()
    home = next(model.parameters()).device
    device = torch.device(cfg.device) if cfg.device is not None else home
    gen = torch.Generator().manual_seed(cfg.seed)  # its own stream: the global random state is left alone
    direction = direction.to(device)
    teacher = copy.deepcopy(model).to(device).eval().requires_grad_(False)
    student = copy.deepcopy(model).to(device).eval()  # eval: BatchNorm keeps the teacher's statistics
    student.requires_grad_(False)
    params = trainable_parameters(student, cfg.trainable)
    for p in params:
        p.requires_grad_(True)
    opt = Adam(params, lr=cfg.lr, betas=cfg.betas)
    if oracle is not None:
        oracle = oracle.to(device)  # a copy when it has to move: the caller's oracle stays where it is
    margin = target_margin(cfg, oracle)
    anchor = target_anchor(cfg, oracle)
    if cfg.mixed_precision is None:  # the history records what ran
        cfg = replace(cfg, mixed_precision=bfloat16_is_fast(device))
    # built only when asked for: torch.autocast refuses a device type it does not know even when disabled
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.mixed_precision else contextlib.nullcontext()

    last_good = _Snapshot(params)
    start_weights = _Snapshot(params) if anchor > 0 else None
    history = History(config=asdict(cfg), margin=margin if cfg.method == "oracle" else None,  # paper: no margin
                      anchor=anchor)
    failures = torch.empty(0, model.latent_dim)  # latents whose student image still showed the feature
    start = time.perf_counter()
    bar = progress(range(1, cfg.steps + 1), desc=f"unlearn ({cfg.method})",
                   disable=None if progress_bar is None else not progress_bar)
    average = _Snapshot(params) if cfg.ema > 0 else None  # EMA of the weights, put back at the end
    for step in bar:
        if cfg.lr_schedule == "cosine":
            opt.lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / cfg.steps))
        z = draw_latents(cfg, model.latent_dim, direction, cut, failures, gen).to(device)
        with autocast:
            teach, target, positive, resolved = make_targets(teacher, z, direction, threshold, cfg, oracle, margin)
        parts, failed = training_step(student, opt, z, teach, target, positive, cfg, oracle, margin, autocast,
                                      last_good, start_weights, anchor)
        if not math.isfinite(parts["loss"]) or not _all_finite(params):
            raise _diverged(student, last_good, history, step, parts["loss"], cfg, home, start)
        if average is not None:
            with torch.no_grad():
                torch._foreach_lerp_(average.copy, [p.detach() for p in params], 1 - cfg.ema)
        if cfg.replay > 0 and len(failed):
            failures = torch.cat([failures, failed.cpu()])[-cfg.replay_size :]
        if step % cfg.log_every == 0 or step == cfg.steps:
            history.log(step, parts, positive, resolved)
            if callback is not None:
                info = {**parts, "elapsed": time.perf_counter() - start, "model": student, "steps": cfg.steps}
                if callback(step, info) is False:
                    history.stopped_early = True
                    break
    if average is not None:  # the averaged weights are the result (the previews showed the raw ones)
        average.restore()
    history.seconds = time.perf_counter() - start
    student.requires_grad_(False)
    return _handed_back(student, home), history


def _handed_back(student: nn.Module, home: torch.device) -> nn.Module:
    """The student as the caller gets it: frozen, in eval mode, on ``home``."""
    return student.requires_grad_(False).eval().to(home)


def _diverged(student, last_good, history, step, loss, cfg, home, start) -> UnlearningDiverged:
    """Put the last good weights back into ``student`` and say what diverged and what to try."""
    what = f"the loss became {loss}" if not math.isfinite(loss) else "the weights became non-finite (NaN or inf)"
    last_good.restore()
    student.requires_grad_(False)
    history.seconds = time.perf_counter() - start
    history.diverged_at = step
    lower = UnlearnConfig.lr if cfg.lr > UnlearnConfig.lr else cfg.lr / 10
    message = (
        f"unlearning diverged at step {step} of {cfg.steps}: {what}. The learning rate is probably too high "
        f"(lr={cfg.lr:g}): try a lower one, e.g. lr={lower:g} (the default is {UnlearnConfig.lr:g})."
    )
    return UnlearningDiverged(message, model=_handed_back(student, home), history=history, step=step,
                              good_step=last_good.step)
