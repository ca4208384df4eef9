"""Feature oracles and the collection of labelled latents.

An oracle looks at images ``(N, C, H, W)`` in [-1, 1] and says how strongly each shows the feature:
``scores(images)`` (higher = more feature; differentiable where the measure allows, so a latent search
can follow its gradient) and ``labels(images)`` (``scores >= threshold``). The same oracles label the
samples that define a feature, pick targets during unlearning, and judge the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .models.base import render

#: Calibration measured on real digits by ``benchmarks/train_bundled.py`` (the stroke-width quantiles).
CALIBRATION_FILE = Path(__file__).parent / "pretrained" / "calibration.json"


class Oracle:
    """Base class: ``scores(images) -> (N,)`` and ``labels(images) -> (N,) bool`` (score >= threshold)."""

    name: str = "feature"
    threshold: float = 0.0
    #: How far below ``threshold`` an unlearning target must score to count as clearly feature-free.
    default_margin: float = 0.0

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def labels(self, images: torch.Tensor) -> torch.Tensor:
        return self.scores(images) >= self.threshold

    def to(self, device: torch.device | str) -> "Oracle":
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, threshold={self.threshold:.4g})"


def stroke_width(images: torch.Tensor, *, sharpness: float = 10.0) -> torch.Tensor:
    """Mean stroke width in pixels of each image ``(N, 1, H, W)`` in [-1, 1] -> ``(N,)``.

    A stroke of width w and length L has ink area w*L and outline length about 2*L, so
    w = 2 * area / outline. The ink is first softly binarised at half intensity (a steep sigmoid), so a
    blurry decoder's grey halo does not count as stroke; the area is the summed ink and the outline the
    summed gradient magnitude, which for a sharp edge adds up to its length. Differentiable.
    """
    ink = (images.float().mean(1, keepdim=True) + 1.0) / 2.0
    lo, hi = torch.sigmoid(torch.tensor(-0.5 * sharpness)), torch.sigmoid(torch.tensor(0.5 * sharpness))
    ink = (torch.sigmoid(sharpness * (ink - 0.5)) - lo) / (hi - lo)
    ink = F.pad(ink, (1, 1, 1, 1))
    dx = ink[..., :-1, 1:] - ink[..., :-1, :-1]  # forward differences: a 1 px line has two edges
    dy = ink[..., 1:, :-1] - ink[..., :-1, :-1]
    outline = torch.sqrt(dx**2 + dy**2 + 1e-8).flatten(1).sum(1)
    area = ink.flatten(1).sum(1)
    return 2.0 * area / outline.clamp_min(1.0)


def _calibration() -> dict:
    if not CALIBRATION_FILE.exists():
        return {}
    return json.loads(CALIBRATION_FILE.read_text())


class StrokeThickness(Oracle):
    """Thick strokes: mean stroke width (:func:`stroke_width`) at or above ``threshold`` pixels.

    By default the threshold is the ``quantile`` of the stroke widths of real MNIST digits, measured
    once on the training digits and shipped in ``pretrained/calibration.json`` (0.9 = the thickest 10%).
    """

    def __init__(self, threshold: float | None = None, *, quantile: float = 0.9):
        if threshold is None:
            table = _calibration().get("stroke_width_quantiles", {})
            key = f"{quantile:.2f}"
            if key not in table:
                raise ValueError(
                    f"no calibrated stroke width for quantile {quantile}; calibrated: {sorted(table)}. "
                    "Pass threshold= (pixels) or calibrate with StrokeThickness.calibrate(real_images, quantile)"
                )
            threshold = float(table[key])
        self.threshold = float(threshold)
        self.quantile = quantile
        self.name = "thick"
        self.default_margin = 0.1  # pixels of stroke width

    @classmethod
    def calibrate(cls, real_images: torch.Tensor, quantile: float = 0.9) -> "StrokeThickness":
        """An oracle whose threshold is the ``quantile`` of the stroke widths of ``real_images``."""
        return cls(float(torch.quantile(stroke_width(real_images), quantile)), quantile=quantile)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return stroke_width(images)


class DigitClass(Oracle):
    """Images that a digit classifier assigns to class ``digit``.

    The score is the logit margin ``logit[digit] - max(other logits)``: positive exactly when the
    arg-max is ``digit``, and differentiable. The classifier defaults to the bundled ``mnist-classifier``.
    """

    def __init__(self, digit: int, classifier: nn.Module | None = None, *, threshold: float = 0.0):
        if classifier is None:
            from .hub import load_pretrained

            classifier = load_pretrained("mnist-classifier")
        num_classes = getattr(classifier, "num_classes", 10)
        if not 0 <= int(digit) < num_classes:
            raise ValueError(f"digit must be in 0..{num_classes - 1}, got {digit}")
        self.digit = int(digit)
        self.classifier = classifier.eval().requires_grad_(False)
        self.threshold = float(threshold)
        self.name = f"digit:{self.digit}"
        self.default_margin = 2.0  # logits: the digit's probability is then below e^-2 of the top class

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.classifier.parameters()).device
        logits = self.classifier(images.to(device))
        others = logits.clone()
        others[:, self.digit] = float("-inf")
        return logits[:, self.digit] - others.max(1).values

    def to(self, device) -> "DigitClass":
        self.classifier.to(device)
        return self


class Selection(Oracle):
    """What a user clicked: the images at ``indices`` of the batch they were shown are positive.

    A selection labels only that batch (``labels(images)`` needs the same number of images); to score
    new images, :meth:`fit_probe` learns a :class:`LinearProbe` from it.
    """

    def __init__(self, indices: Iterable[int], *, name: str = "selection"):
        self.indices = sorted({int(i) for i in indices})
        self.threshold = 0.5
        self.name = name

    def mask(self, n: int) -> torch.Tensor:
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise ValueError(f"selected indices {bad} are outside the {n} images shown (0..{n - 1})")
        m = torch.zeros(n, dtype=torch.bool)
        m[self.indices] = True
        return m

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return self.mask(len(images)).float()

    def fit_probe(self, images: torch.Tensor, feature_extractor: nn.Module | None = None, **kwargs) -> "LinearProbe":
        """A :class:`LinearProbe` trained to tell the selected images from the others."""
        return LinearProbe.fit(images, self.mask(len(images)), feature_extractor, name=self.name, **kwargs)


class LinearProbe(Oracle):
    """Logistic regression on a feature extractor's features (default: the bundled classifier's).

    Turns a handful of clicked examples into an oracle that scores any image; the score is the logit.
    """

    def __init__(self, extractor: nn.Module, weight: torch.Tensor, bias: torch.Tensor, *, name: str = "probe"):
        self.extractor = extractor.eval().requires_grad_(False)
        self.weight, self.bias = weight, bias
        self.threshold = 0.0
        self.name = name
        self.default_margin = 1.0  # logit of the probe

    @classmethod
    def fit(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        extractor: nn.Module | None = None,
        *,
        weight_decay: float = 1e-2,
        steps: int = 300,
        name: str = "probe",
    ) -> "LinearProbe":
        labels = torch.as_tensor(labels, dtype=torch.bool)
        n_pos, n_neg = int(labels.sum()), int((~labels).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"a probe needs positive and negative examples; got {n_pos} positive, {n_neg} negative")
        if extractor is None:
            from .hub import load_pretrained

            extractor = load_pretrained("mnist-classifier")
        feats = _features(extractor, images)
        mean, std = feats.mean(0), feats.std(0).clamp_min(1e-4)
        x = (feats - mean) / std
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        pos_weight = torch.tensor(n_neg / n_pos)  # balance the classes: a few clicks vs many others
        opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(x @ w + b, labels.float(), pos_weight=pos_weight)
            loss = loss + weight_decay * w.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        w, b = w.detach() / std, b.detach() - (w.detach() / std * mean).sum()
        return cls(extractor, w, b, name=name)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.extractor.parameters()).device
        feats = self.extractor.features(images.to(device))
        return feats @ self.weight.to(device) + self.bias.to(device)

    def to(self, device) -> "LinearProbe":
        self.extractor.to(device)
        return self


@torch.no_grad()
def _features(extractor: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(extractor.parameters()).device
    return torch.cat([extractor.features(x.to(device)).cpu() for x in images.split(batch_size)])


@torch.no_grad()
def score_images(oracle: Oracle, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """``oracle.scores`` over many images in batches, without gradients, on the CPU."""
    if isinstance(oracle, Selection):
        return oracle.scores(images)
    return torch.cat([oracle.scores(x).float().cpu() for x in images.split(batch_size)]) if len(images) else torch.empty(0)


def get_oracle(feature: str | Oracle, *, classifier: nn.Module | None = None) -> Oracle:
    """An oracle from a short name: ``"thick"``, ``"thick:0.8"`` (a quantile), ``"digit:K"``; oracles pass through."""
    if isinstance(feature, Oracle):
        return feature
    name, _, arg = str(feature).partition(":")
    if name == "thick":
        return StrokeThickness(quantile=float(arg)) if arg else StrokeThickness()
    if name == "digit" and arg.strip().isdigit():
        return DigitClass(int(arg), classifier)
    raise ValueError(f"unknown feature {feature!r}; use 'thick', 'thick:Q' (a quantile such as 0.9) or 'digit:K' (0-9)")


@dataclass
class Collection:
    """Latents, their images and the oracle's verdict, as returned by :func:`collect`.

    ``z`` ``(N, latent_dim)``, ``images`` ``(N, C, H, W)`` in [-1, 1], ``scores`` ``(N,)``, ``labels`` ``(N,)`` bool.
    """

    z: torch.Tensor
    images: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor

    @property
    def z_pos(self) -> torch.Tensor:
        return self.z[self.labels]

    @property
    def z_neg(self) -> torch.Tensor:
        return self.z[~self.labels]

    @property
    def share(self) -> float:
        """Share of the collected samples that show the feature."""
        return float(self.labels.float().mean()) if len(self.labels) else 0.0

    def __len__(self) -> int:
        return len(self.z)

    def extend(self, other: "Collection") -> "Collection":
        return Collection(*(torch.cat([a, b]) for a, b in zip(self.astuple(), other.astuple())))

    def astuple(self) -> Sequence[torch.Tensor]:
        return self.z, self.images, self.scores, self.labels


@torch.no_grad()
def collect(
    model: nn.Module,
    oracle: Oracle,
    n: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
) -> Collection:
    """Sample ``n`` latents from the prior, render them with ``model`` and label them with ``oracle``.

    This is the paper's "randomly generated images that contain the target feature" (and those that
    don't). The result lives on the CPU.
    """
    z = model.sample_latent(n, seed=seed, generator=generator, device="cpu")
    images = render(model, z, batch_size=batch_size).cpu()
    scores = score_images(oracle, images, batch_size=batch_size)
    return Collection(z, images, scores, scores >= oracle.threshold)
