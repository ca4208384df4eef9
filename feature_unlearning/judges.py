"""Independent judges: a digit classifier and a stroke measure that share nothing with the oracles.

Unlearning optimises against its oracles (``mnist-classifier`` for ``digit:K``, the soft area/outline
stroke width :func:`feature_unlearning.oracles.stroke_width` for ``thick``), so those cannot grade it:
an image that merely fools them counts as removed. These judges are independent of both:

* :func:`digit_judge` -- ``mnist-judge-resnet``, a small residual network (:class:`~feature_unlearning.models.DigitResNet`:
  BatchNorm, residual blocks, global pooling) trained with SGD, label smoothing and elastic + affine
  augmentation on 3,000 MNIST digits that the oracle never saw (the ``judge`` split of
  :mod:`feature_unlearning.data`); the oracle is a plain CNN trained with AdamW on 10,000 others.
* :func:`skeleton_stroke_width` -- ink area / skeleton length, from a hard-thresholded image and a
  Zhang-Suen thinning (numpy); the oracle divides a soft ink area by the summed gradient magnitude.
  Its "thick" cut is the 90th percentile of the same 3,000 judge-split digits (``judge_calibration.json``).

    from feature_unlearning import judges
    report = judges.removal_report(images_before, images_after, "digit:8")
    grid = judges.survivors(images_after, "digit:8")      # the samples the judge still calls an 8
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .oracles import DigitClass, Oracle

PRETRAINED = Path(__file__).parent / "pretrained"
JUDGE_NAME = "mnist-judge-resnet"
#: Quantiles of :func:`skeleton_stroke_width` on real digits (written by ``python -m benchmarks.train_bundled``).
CALIBRATION_FILE = PRETRAINED / "judge_calibration.json"
CONFIDENCE = 0.9  # the strict reading of a digit judge: softmax confidence above this


@functools.lru_cache(maxsize=1)
def digit_judge() -> nn.Module:
    """The bundled ``mnist-judge-resnet`` in eval mode (loaded once; do not modify it)."""
    from .hub import load_pretrained

    if not (PRETRAINED / JUDGE_NAME).is_dir():
        raise FileNotFoundError(f"{PRETRAINED / JUDGE_NAME} is missing; train it with python -m benchmarks.train_bundled --only judge")
    return load_pretrained(JUDGE_NAME).requires_grad_(False)


# ---------------------------------------------------------------------------------------------- strokes
def _neighbours(p: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours P2..P9 of every pixel of a zero-padded batch ``(N, H+2, W+2)``, clockwise from north."""
    return [p[:, :-2, 1:-1], p[:, :-2, 2:], p[:, 1:-1, 2:], p[:, 2:, 2:],
            p[:, 2:, 1:-1], p[:, 2:, :-2], p[:, 1:-1, :-2], p[:, :-2, :-2]]


def zhang_suen(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeletons of binary images ``(N, H, W)`` by Zhang & Suen's thinning (CACM 1984).

    Both sub-iterations run on the whole batch at once; stops when no pixel changes."""
    img = np.pad(np.asarray(mask, dtype=bool), ((0, 0), (1, 1), (1, 1)))
    while True:
        changed = False
        for first in (True, False):
            n = [q.astype(np.uint8) for q in _neighbours(img)]
            b = sum(n)
            ring = n + n[:1]
            a = sum(((ring[k] == 0) & (ring[k + 1] == 1)).astype(np.uint8) for k in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if first:
                c1, c2 = p2 * p4 * p6, p4 * p6 * p8
            else:
                c1, c2 = p2 * p4 * p8, p2 * p6 * p8
            delete = img[:, 1:-1, 1:-1] & (b >= 2) & (b <= 6) & (a == 1) & (c1 == 0) & (c2 == 0)
            if delete.any():
                img[:, 1:-1, 1:-1] &= ~delete
                changed = True
        if not changed:
            return img[:, 1:-1, 1:-1]


def skeleton_stroke_width(images: torch.Tensor, *, level: float = 0.5) -> torch.Tensor:
    """Stroke width in pixels of each image ``(N, 1, H, W)`` in [-1, 1] -> ``(N,)``: ink area / skeleton length.

    Ink is every pixel brighter than ``level`` (intensity in [0, 1], a hard cut); the skeleton is its
    Zhang-Suen thinning, whose length counts a diagonal step as sqrt(2) (half of it to each end pixel)
    and a straight one as 1, corrected for the half width that thinning removes at each free end. An
    image without ink has width 0. Not differentiable (a judge, not a loss).
    """
    if len(images) == 0:
        return torch.zeros(0)
    x = ((images.detach().float().cpu().mean(1) + 1.0) / 2.0).numpy()
    ink = x > level
    skel = zhang_suen(ink)
    p = np.pad(skel, ((0, 0), (1, 1), (1, 1))).astype(np.float32)
    n = _neighbours(p)
    straight = (n[0] + n[2] + n[4] + n[6])[:, :, :] * skel
    diagonal = (n[1] + n[3] + n[5] + n[7]) * skel
    # each link is seen from both ends: half its length per end; an isolated skeleton pixel counts as 1
    length = (0.5 * straight + 0.5 * np.sqrt(2.0) * diagonal).reshape(len(x), -1).sum(1)
    length = np.maximum(length, skel.reshape(len(x), -1).sum(1).clip(max=1))
    area = ink.reshape(len(x), -1).sum(1).astype(np.float64)
    # thinning eats about w/2 of a stroke at each free end, so a stroke of width w with skeleton length l
    # and e end points has area ~ w * (l + e * w / 2): solve (e/2) w^2 + l w - area = 0 for w (e = 0: area / l)
    ends = ((sum(n) == 1) & skel).reshape(len(x), -1).sum(1).astype(np.float64)
    safe_l = np.maximum(length, 1e-9)
    quadratic = (-safe_l + np.sqrt(safe_l**2 + 2.0 * ends * area)) / np.maximum(ends, 1e-9)
    width = np.where(length > 0, np.where(ends > 0, quadratic, area / safe_l), 0.0)
    return torch.from_numpy(width.astype(np.float32))


def _calibration() -> dict:
    return json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.exists() else {}


class SkeletonThickness(Oracle):
    """Thick by the judge's own measure: :func:`skeleton_stroke_width` at or above the ``quantile`` of real
    digits (0.9: the thickest 10%, the meaning of the ``thick`` oracle, measured another way)."""

    def __init__(self, threshold: float | None = None, *, quantile: float = 0.9):
        if threshold is None:
            table = _calibration().get("skeleton_width_quantiles", {})
            key = f"{quantile:.2f}"
            if key not in table:
                raise ValueError(f"no calibrated skeleton width for quantile {quantile}; calibrated: {sorted(table)}")
            threshold = float(table[key])
        self.threshold = float(threshold)
        self.quantile = quantile
        self.name = "judge:thick"

    @classmethod
    def calibrate(cls, real_images: torch.Tensor, quantile: float = 0.9) -> "SkeletonThickness":
        return cls(float(torch.quantile(skeleton_stroke_width(real_images), quantile)), quantile=quantile)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return skeleton_stroke_width(images)


# ---------------------------------------------------------------------------------------------- reports
def _parse(feature: str) -> int | None:
    if feature in ("thick", "thick-strokes"):
        return None
    if feature.startswith("digit:"):
        return int(feature.split(":", 1)[1])
    raise ValueError(f"the judges know 'thick' and 'digit:K', not {feature!r}")


def judge_oracles(feature: str) -> dict[str, Oracle]:
    """The judges of ``feature``, by name: ``{"resnet": ...}`` for ``digit:K``, ``{"skeleton": ...}`` for thick."""
    digit = _parse(feature)
    if digit is None:
        return {"skeleton": SkeletonThickness()}
    oracle = DigitClass(digit, digit_judge())
    oracle.name = f"judge:digit:{digit}"
    return {"resnet": oracle}


@torch.no_grad()
def positives(images: torch.Tensor, feature: str, batch_size: int = 1000) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per judge: (positive at the plain reading, positive at the strict reading), each ``(N,)`` bool.

    Digits: arg-max == K, and softmax(K) > 0.9. Thickness: width >= the 90th percentile of real digits,
    and >= their 95th percentile."""
    digit = _parse(feature)
    images = images.detach().float().cpu()
    if digit is None:
        w = skeleton_stroke_width(images)
        return {"skeleton": (w >= SkeletonThickness(quantile=0.9).threshold, w >= SkeletonThickness(quantile=0.95).threshold)}
    clf = digit_judge()
    probs = torch.cat([clf(x).softmax(1) for x in images.split(batch_size)]) if len(images) else torch.zeros(0, 10)
    return {"resnet": (probs.argmax(1) == digit, probs[:, digit] > CONFIDENCE)}


def removal_report(images_before: torch.Tensor, images_after: torch.Tensor, feature: str) -> dict[str, dict[str, float]]:
    """How much of ``feature`` the independent judges see before and after, per judge.

    Returns ``{judge: {"before", "after", "removed", "before_strict", "after_strict", "removed_strict"}}``:
    shares of the images with the feature and ``removed = 1 - after / before`` (NaN when ``before`` is 0).
    The plain reading is arg-max (digits) or the 90th-percentile width (thick); the strict one is confidence
    > 0.9 or the 95th-percentile width. Pass the same latents' images before and after for a paired figure.
    """
    before, after = positives(images_before, feature), positives(images_after, feature)
    out = {}
    for name in before:
        row = {}
        for i, suffix in enumerate(("", "_strict")):
            b = float(before[name][i].float().mean()) if len(images_before) else float("nan")
            a = float(after[name][i].float().mean()) if len(images_after) else float("nan")
            row["before" + suffix], row["after" + suffix] = b, a
            row["removed" + suffix] = 1.0 - a / b if b > 0 else float("nan")
        out[name] = row
    return out


def survivors(images: torch.Tensor, feature: str, *, n: int = 64, strict: bool = False) -> torch.Tensor:
    """Up to ``n`` of ``images`` that the judge still sees ``feature`` in (strict reading if ``strict``),
    in their original order; ``viz.image_grid(judges.survivors(x, "digit:8"))`` shows them."""
    (plain, strict_pos), = positives(images, feature).values()
    keep = strict_pos if strict else plain
    return images[keep.to(images.device)][:n]
