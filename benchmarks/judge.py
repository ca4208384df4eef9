"""An independent judge for the benchmarks: its own digit classifier and its own stroke-width measure.

Unlearning optimises against the bundled ``mnist-classifier`` and :func:`feature_unlearning.features.stroke_width`.
A result that only fools those would look perfect to them, so every benchmark also reports what this judge
says: ``mnist-judge`` (another architecture, trained with another seed, never used in training) and a
distance-transform stroke width (scipy), with its thick cut calibrated on real digits by itself.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from feature_unlearning.features import DigitClass, Oracle


def edt_stroke_width(images: torch.Tensor) -> torch.Tensor:
    """Stroke width from the Euclidean distance transform of the ink (pixels > half intensity):
    4 x the mean distance of ink pixels to the background (a stroke of width w has mean distance ~w/4)."""
    ink = (images.detach().float().cpu().mean(1) > 0.0).numpy()
    out = np.zeros(len(ink), dtype=np.float32)
    for i, mask in enumerate(ink):
        if mask.any():
            out[i] = 4.0 * ndimage.distance_transform_edt(mask)[mask].mean()
    return torch.from_numpy(out)


class JudgeThickness(Oracle):
    """Thick by the judge's measure: at or above the ``quantile`` of real digits' EDT widths."""

    def __init__(self, real_images: torch.Tensor, quantile: float = 0.9):
        self.threshold = float(torch.quantile(edt_stroke_width(real_images), quantile))
        self.name = "judge:thick"

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return edt_stroke_width(images)


def judge_oracle(feature: str, real_images: torch.Tensor) -> Oracle:
    """The judge's counterpart of a feature name ('thick' or 'digit:K')."""
    import feature_unlearning as fu

    if feature.startswith("thick"):
        return JudgeThickness(real_images)
    digit = int(feature.split(":")[1])
    oracle = DigitClass(digit, fu.load_pretrained("mnist-judge"))
    oracle.name = f"judge:digit:{digit}"
    return oracle
