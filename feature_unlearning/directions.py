"""The target direction of a feature in latent space, the threshold, translation and traversal.

The paper (Moon, Cho & Kim, AAAI 2024, Sec. 3): z_e = mean(z_pos) - mean(z_neg) as a unit vector,
proj(z) = z . z_e, threshold t = mean projection of all collected latents, and the translated latent
z_hat = z - (proj(z) - t) * z_e, the same sample moved back to the threshold. Everything here is a pure
function of tensors.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .models.base import render

DIRECTION_METHODS = ("mean_diff", "logistic")
THRESHOLD_RULES = ("mean", "midpoint", "balanced")
#: Where a traversal shows a sample by default: z + a * d for these a (0 = the sample itself).
ALPHAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
MIN_PER_CLASS = 2


def _check_sets(z_pos: torch.Tensor, z_neg: torch.Tensor) -> None:
    if z_pos.ndim != 2 or z_neg.ndim != 2 or z_pos.shape[1] != z_neg.shape[1]:
        raise ValueError(f"z_pos and z_neg must be (N, latent_dim) with one latent_dim; got {tuple(z_pos.shape)}, {tuple(z_neg.shape)}")
    if len(z_pos) == 0:
        raise ValueError("no positive samples: mark (or let the oracle find) some images that show the feature")
    if len(z_neg) == 0:
        raise ValueError("no negative samples: every image was marked as showing the feature; leave some unmarked")
    if len(z_pos) < MIN_PER_CLASS or len(z_neg) < MIN_PER_CLASS:
        raise ValueError(
            f"too few samples to estimate a direction: {len(z_pos)} positive and {len(z_neg)} negative; "
            f"need at least {MIN_PER_CLASS} of each (a few dozen positives give a stable direction)"
        )


def feature_direction(
    z_pos: torch.Tensor,
    z_neg: torch.Tensor,
    method: str = "mean_diff",
    *,
    weight_decay: float = 1e-3,
) -> torch.Tensor:
    """Unit vector ``(latent_dim,)`` pointing from latents without the feature towards latents with it.

    ``"mean_diff"``: the paper's mean(z_pos) - mean(z_neg). ``"logistic"``: the normal of an L2-regularised,
    class-balanced logistic regression separating the two sets (as InterFaceGAN uses a linear SVM's
    normal, Shen et al., CVPR 2020); it discounts latent directions along which the two sets merely differ
    in spread.
    """
    _check_sets(z_pos, z_neg)
    z_pos, z_neg = z_pos.double(), z_neg.double()
    if method == "mean_diff":
        d = z_pos.mean(0) - z_neg.mean(0)
    elif method == "logistic":
        d = _logistic_normal(z_pos, z_neg, weight_decay)
    else:
        raise ValueError(f"unknown direction method {method!r}; choose one of {DIRECTION_METHODS}")
    norm = d.norm()
    if not torch.isfinite(norm) or norm < 1e-12:
        raise ValueError("the positive and negative latents have the same mean: no direction to follow")
    return (d / norm).float()


def _logistic_normal(z_pos: torch.Tensor, z_neg: torch.Tensor, weight_decay: float) -> torch.Tensor:
    x = torch.cat([z_pos, z_neg])
    y = torch.cat([torch.ones(len(z_pos)), torch.zeros(len(z_neg))])
    w, _ = fit_logistic(x, y, weight_decay=weight_decay, init=z_pos.mean(0) - z_neg.mean(0))  # from the paper's d
    return w


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weight_decay: float,
    max_iter: int = 200,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced, L2-regularised logistic regression by L-BFGS in float64.

    ``x`` ``(N, D)``, ``y`` ``(N,)`` (0/1 or bool). Minimises mean BCE over the positives / 2 + mean BCE over
    the negatives / 2 + ``weight_decay`` * |w|^2, from ``init`` (default zeros). Returns ``(w (D,), b (1,))``
    in float64. The feature directions and the click probes both use it.
    """
    x, y = x.double(), torch.as_tensor(y).double()
    n_pos, n_neg = int((y > 0).sum()), int((y <= 0).sum())
    weight = torch.where(y > 0, 0.5 / n_pos, 0.5 / n_neg).double()  # balance the classes
    start = init.double() if init is not None else torch.zeros(x.shape[1], dtype=torch.float64)
    w = start.clone().requires_grad_(True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (weight * F.binary_cross_entropy_with_logits(x @ w + b, y, reduction="none")).sum()
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def project(z: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """proj(z) = z . d for latents ``(N, D)`` -> ``(N,)``."""
    return z @ direction.to(z)


def threshold(z_pos: torch.Tensor, z_neg: torch.Tensor, direction: torch.Tensor, rule: str = "mean") -> float:
    """The projection value t above which a latent "has the feature".

    ``"mean"``: the paper's mean projection over all collected latents. ``"midpoint"``: halfway between
    the two classes' mean projections. ``"balanced"``: the cut that equalises the share of positives above
    and of negatives below it (the equal-error point), robust to a rare feature.
    """
    _check_sets(z_pos, z_neg)
    p, n = project(z_pos, direction), project(z_neg, direction)
    if rule == "mean":
        return float(torch.cat([p, n]).mean())
    if rule == "midpoint":
        return float((p.mean() + n.mean()) / 2)
    if rule == "balanced":
        cuts = torch.cat([p, n]).sort().values
        tpr = (p[None, :] >= cuts[:, None]).float().mean(1)
        tnr = (n[None, :] < cuts[:, None]).float().mean(1)
        return float(cuts[(tpr - tnr).abs().argmin()])
    raise ValueError(f"unknown threshold rule {rule!r}; choose one of {THRESHOLD_RULES}")


def translate(z: torch.Tensor, direction: torch.Tensor, t: float, *, margin: float = 0.0) -> torch.Tensor:
    """z_hat = z - (proj(z) - t + margin) * d for latents at or above the threshold; others unchanged.

    With ``margin=0`` (the paper) a translated latent lands exactly on the threshold.
    """
    d = direction.to(z)
    p = project(z, d)
    shift = torch.where(p >= t, p - t + margin, torch.zeros_like(p))
    return z - shift[:, None] * d


def traverse(
    model: torch.nn.Module,
    z: torch.Tensor,
    direction: torch.Tensor,
    alphas: Sequence[float] = ALPHAS,
) -> torch.Tensor:
    """Render z + a * d for each a: latents ``(N, D)`` -> images ``(N, len(alphas), C, H, W)``.

    Row i shows sample i moved along the direction; the column with a = 0 is the sample itself.
    """
    a = torch.as_tensor(list(alphas), dtype=z.dtype)
    zs = z[:, None, :] + a[None, :, None] * direction.to(z)[None, None, :]
    images = render(model, zs.reshape(-1, z.shape[1]))
    return images.reshape(len(z), len(a), *images.shape[1:])
