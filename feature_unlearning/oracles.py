"""Oracles: who says whether an image shows the feature; and the collection of labelled latents.

An oracle looks at images ``(N, C, H, W)`` in [-1, 1] and says how strongly each shows the feature:
``scores(images)`` (higher = more feature; differentiable where the measure allows, so a latent search
can follow its gradient), ``score_all(images)`` (the same over many images, in batches, without
gradients) and ``labels(images)`` (``score >= threshold``). The same oracles label the samples that define
a feature, pick targets during unlearning, and judge the result.

:func:`get_oracle` is the one place that reads a feature's short name (``"thick"``, ``"thick:Q"``,
``"digit:K"``); an oracle's ``name`` is that short name again, and its ``reference`` names the shipped
statistics of real digits without the feature (for the Frechet distance after unlearning).
"""

from __future__ import annotations

import copy
import functools
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
#: The quantile of real stroke widths that ``"thick"`` means (the thickest 10%).
DEFAULT_THICK_QUANTILE = 0.9


@functools.lru_cache(maxsize=1)
def bundled_classifier() -> nn.Module:
    """The bundled ``mnist-classifier`` (CPU, eval, frozen), loaded once per process and shared: the
    ``digit:K`` oracles, the probes and the metrics all read it. Don't move it; an oracle's ``to(device)``
    makes its own copy."""
    from .hub import load_pretrained

    return load_pretrained("mnist-classifier").eval().requires_grad_(False)


class Oracle:
    """Base class: ``scores(images) -> (N,)`` and ``labels(images) -> (N,) bool`` (score >= threshold)."""

    name: str = "feature"
    threshold: float = 0.0
    #: The score's natural unit: an image this far below ``threshold`` is clearly without the feature (the
    #: metrics' "clear" samples, the attack's score unit).
    default_margin: float = 0.0
    #: How far below ``threshold`` an unlearning target must score (``None``: ``default_margin``).
    unlearn_margin: float | None = None
    #: The L2-SP weight toward the original weights when unlearning this feature (``None``: no anchor).
    unlearn_anchor: float | None = None
    #: The shipped real-image statistics without this feature (``metrics.load_reference``), if any.
    reference: str | None = None

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> ``(N,)``, higher = more of the feature (one batch, with gradients)."""
        raise NotImplementedError

    def hinge_scores(self, images: torch.Tensor) -> torch.Tensor:
        """The score unlearning's hinge pushes down on the student's own images (``UnlearnConfig.oracle_weight``):
        :meth:`scores`, unless an oracle knows a cheap way to lower its own measure that removes nothing (the
        student finds such ways: :meth:`StrokeThickness.hinge_scores`). Used nowhere else."""
        return self.scores(images)

    @torch.no_grad()
    def score_all(self, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """:meth:`scores` over many images in batches, without gradients, returned on the CPU."""
        if len(images) == 0:
            return torch.empty(0)
        return torch.cat([self.scores(x).float().cpu() for x in images.split(batch_size)])

    def labels(self, images: torch.Tensor) -> torch.Tensor:
        """Which images show the feature: ``(N,)`` bool on the CPU (score >= threshold)."""
        return self.score_all(images) >= self.threshold

    def share(self, images: torch.Tensor) -> float:
        """Share of ``images`` that show the feature (0 for no images)."""
        return float(self.labels(images).float().mean()) if len(images) else 0.0

    def to(self, device: torch.device | str) -> "Oracle":
        """This oracle on ``device``: itself when nothing has to move, else a moved copy (like ``Tensor.to``,
        the original stays where it is)."""
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


def remove_specks(images: torch.Tensor) -> torch.Tensor:
    """``images`` ``(N, C, H, W)`` in [-1, 1] with specks of up to three pixels set to black: a pixel is kept in
    full when the ink of the 5x5 square around it, itself left out, sums to 3 or more (on a 0-1 scale), dropped when
    it sums to 2 or less (the most that the other two pixels of a 3-pixel speck can give), and scaled in between.
    The pixels of a stroke 2 px wide or more are kept exactly; a 1 px line loses its end pixels. Differentiable."""
    ink = (images + 1.0) / 2.0
    around = F.avg_pool2d(F.pad(ink, (2, 2, 2, 2)), 5, stride=1) * 25.0 - ink
    return 2.0 * ink * (around - 2.0).clamp(0.0, 1.0) - 1.0


def _calibration() -> dict:
    if not CALIBRATION_FILE.exists():
        return {}
    return json.loads(CALIBRATION_FILE.read_text())


class StrokeThickness(Oracle):
    """Thick strokes: mean stroke width (:func:`stroke_width`) at or above ``threshold`` pixels.

    By default the threshold is the ``quantile`` of the stroke widths of real MNIST digits, measured
    once on the training digits and shipped in ``pretrained/calibration.json`` (0.9 = the thickest 10%).
    """

    def __init__(self, threshold: float | None = None, *, quantile: float = DEFAULT_THICK_QUANTILE):
        calibrated = threshold is None
        if calibrated:
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
        if not calibrated:
            self.name = f"thick>={self.threshold:.3g}px"
        elif quantile == DEFAULT_THICK_QUANTILE:
            self.name, self.reference = "thick", "not-thick"  # the shipped statistics use this cut
        else:
            self.name = f"thick:{quantile:g}"
        self.default_margin = 0.1  # pixels of stroke width

    @classmethod
    def calibrate(cls, real_images: torch.Tensor, quantile: float = DEFAULT_THICK_QUANTILE) -> "StrokeThickness":
        """An oracle whose threshold is the ``quantile`` of the stroke widths of ``real_images``."""
        return cls(float(torch.quantile(stroke_width(real_images), quantile)), quantile=quantile)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return stroke_width(images)

    def hinge_scores(self, images: torch.Tensor) -> torch.Tensor:
        """The stroke width with specks of up to three pixels removed (:func:`remove_specks`). A lone dot adds about
        1 to the ink and 4 to the outline, so a few of them lower :func:`stroke_width` by the 0.1 px margin without
        thinning a stroke; pushed by the plain score, the student learned to draw one below the digit (4% of the
        samples of a default DCGAN run), and two-pixel marks further along the direction (benchmarks/README.md)."""
        return stroke_width(remove_specks(images))


class DigitClass(Oracle):
    """Images that a digit classifier assigns to class ``digit``.

    The score is the logit margin ``logit[digit] - max(other logits)``: positive exactly when the
    arg-max is ``digit``, and differentiable. The classifier defaults to the bundled ``mnist-classifier``.
    """

    def __init__(self, digit: int, classifier: nn.Module | None = None, *, threshold: float = 0.0):
        classifier = classifier if classifier is not None else bundled_classifier()
        num_classes = getattr(classifier, "num_classes", 10)
        if not 0 <= int(digit) < num_classes:
            raise ValueError(f"digit must be in 0..{num_classes - 1}, got {digit}")
        self.digit = int(digit)
        self.classifier = classifier.eval().requires_grad_(False)
        self.threshold = float(threshold)
        self.name = f"digit:{self.digit}"
        self.reference = f"not-digit:{self.digit}"  # real digits of the other classes
        self.default_margin = 2.0  # logits: the digit's probability is then below e^-2 of the top class
        # Unlearning aims further below: a target read only narrowly as another digit can still be a hybrid (an 8
        # that is nearly a 9) that another classifier reads as the digit. The wider margin removes more by the
        # independent judges on both bundled models; the L2-SP anchor wins back the SSIM it costs (benchmarks/
        # README.md, "Trade-off trials": margin=4.0, margin=6.0 anchor=0.01).
        self.unlearn_margin = 6.0
        self.unlearn_anchor = 0.01

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.classifier.parameters()).device
        logits = self.classifier(images.to(device))
        others = logits.clone()
        others[:, self.digit] = float("-inf")
        return logits[:, self.digit] - others.max(1).values

    def to(self, device) -> "DigitClass":
        return _moved(self, "classifier", device)


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

    def score_all(self, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        return self.scores(images)  # the mask needs the whole batch at once

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
        from .directions import fit_logistic

        labels = torch.as_tensor(labels, dtype=torch.bool)
        n_pos, n_neg = int(labels.sum()), int((~labels).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"a probe needs positive and negative examples; got {n_pos} positive, {n_neg} negative")
        extractor = extractor if extractor is not None else bundled_classifier()
        feats = _features(extractor, images)
        mean, std = feats.mean(0), feats.std(0).clamp_min(1e-4)
        # the probe's weight decay was set against a loss that weighs each positive n_neg / n_pos times and
        # averages over all N: that is the class-balanced loss times 2 * n_neg / N, hence the rescaling
        w, b = fit_logistic((feats - mean) / std, labels, weight_decay=weight_decay * len(labels) / (2 * n_neg),
                            max_iter=steps)
        w, b = (w / std.double()).float(), (b - (w / std.double() * mean.double()).sum()).float()
        return cls(extractor, w, b, name=name)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.extractor.parameters()).device
        feats = self.extractor.features(images.to(device))
        return feats @ self.weight.to(device) + self.bias.to(device)

    def to(self, device) -> "LinearProbe":
        return _moved(self, "extractor", device)


def _moved(oracle: Oracle, attribute: str, device) -> Oracle:
    """``oracle`` itself if its network ``attribute`` is on ``device``, else a copy holding a moved copy."""
    net = getattr(oracle, attribute)
    if next(net.parameters()).device == torch.device(device):
        return oracle
    moved = copy.copy(oracle)
    setattr(moved, attribute, copy.deepcopy(net).to(device))
    return moved


@torch.no_grad()
def _features(extractor: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(extractor.parameters()).device
    return torch.cat([extractor.features(x.to(device)).cpu() for x in images.split(batch_size)])


#: The short names :func:`get_oracle` reads, as (name, what it means); the app's presets come from here.
PRESETS = (("thick", "thick strokes"),) + tuple((f"digit:{k}", f"digit {k}") for k in range(10))


def get_oracle(feature: str | Oracle, *, classifier: nn.Module | None = None) -> Oracle:
    """An oracle from a short name: ``"thick"``, ``"thick:0.8"`` (a quantile), ``"digit:K"``; oracles pass through.

    ``classifier`` replaces the bundled one for ``digit:K``. The oracle's ``name`` is the short name again.
    """
    if isinstance(feature, Oracle):
        return feature
    name, _, arg = str(feature).strip().partition(":")
    try:
        if name == "thick":
            return StrokeThickness(quantile=float(arg)) if arg else StrokeThickness()
        if name == "digit" and arg.strip().isdigit():
            return DigitClass(int(arg), classifier)
    except ValueError as err:
        raise ValueError(f"feature {feature!r}: {err}") from None
    raise ValueError(f"unknown feature {feature!r}; use 'thick', 'thick:Q' (a quantile such as 0.9) or 'digit:K' (0-9)")


@dataclass
class Collection:
    """Latents, their images and the oracle's verdict, as returned by :func:`collect`.

    ``z`` ``(N, latent_dim)``, ``images`` ``(N, C, H, W)`` in [-1, 1] (None where they were not kept: a finished
    example, :mod:`feature_unlearning.examples`), ``scores`` ``(N,)``, ``labels`` ``(N,)`` bool.
    """

    z: torch.Tensor
    images: torch.Tensor | None
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
    scores = oracle.score_all(images, batch_size=batch_size)
    return Collection(z, images, scores, scores >= oracle.threshold)
