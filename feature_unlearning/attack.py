"""A white-box attacker who searches latent space for samples that still show the feature.

As in the paper's robustness evaluation: the attacker holds the generator's weights and an oracle for the
feature (ideally their own classifier, not the one unlearning used), starts from random latents and runs
gradient ascent on the oracle's score of the generated image, with the log-prior -|z|^2/2 keeping z
plausible and every iterate kept inside the ball that holds 99.9% of the prior's mass. The attack
succeeds from a start when its final latent's image shows the feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .oracles import Oracle


@dataclass
class AttackResult:
    """Final latents ``(N, D)``, their images, the oracle's scores ``(N,)`` and which succeeded."""

    z: torch.Tensor
    images: torch.Tensor
    scores: torch.Tensor
    success: torch.Tensor

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())


def prior_radius(latent_dim: int, mass: float = 0.999) -> float:
    """Radius of the ball holding ``mass`` of N(0, I_D) (Wilson-Hilferty approximation of the chi quantile)."""
    from statistics import NormalDist

    q = NormalDist().inv_cdf(mass)
    k = latent_dim
    return math.sqrt(k * (1 - 2 / (9 * k) + q * math.sqrt(2 / (9 * k))) ** 3)


def latent_attack(
    model: nn.Module,
    oracle: Oracle,
    *,
    n: int = 256,
    steps: int = 100,
    lr: float = 0.05,
    prior_weight: float = 0.05,
    seed: int = 0,
    batch_size: int = 256,
) -> AttackResult:
    """Gradient ascent from ``n`` random starts on ``score(model(z)) - prior_weight * |z|^2 / 2``.

    The score is measured in units of ``oracle.default_margin`` (when set) so one ``prior_weight`` fits
    oracles of different scales. Returns the final latents and whether their images show the feature.
    """
    model = model.eval()
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    device = params[0].device if params else torch.device("cpu")
    radius = prior_radius(model.latent_dim)
    unit = getattr(oracle, "default_margin", 0.0) or 1.0
    out_z, out_x, out_s = [], [], []
    try:
        z_all = model.sample_latent(n, seed=seed, device=device)
        for z0 in z_all.split(batch_size):
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                objective = oracle.scores(model(z)) / unit - prior_weight * 0.5 * z.pow(2).sum(1)
                opt.zero_grad(set_to_none=True)
                (-objective.sum()).backward()
                opt.step()
                with torch.no_grad():  # stay where the prior has its mass
                    norm = z.norm(dim=1, keepdim=True)
                    z.mul_(torch.clamp(radius / norm, max=1.0))
            with torch.no_grad():
                x = model(z)
                out_z.append(z.detach().cpu())
                out_x.append(x.cpu())
                out_s.append(oracle.scores(x).float().cpu())
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    scores = torch.cat(out_s)
    return AttackResult(torch.cat(out_z), torch.cat(out_x), scores, scores >= oracle.threshold)
