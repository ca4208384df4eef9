"""The whole flow in a few calls, shared by the CLI, the app, the notebooks and the benchmarks.

    feature = Feature.from_oracle(model, get_oracle("digit:8"), n=4000, seed=0)
    unlearned, history = feature.unlearn(model, UnlearnConfig())
    report = compare(model, unlearned, feature.oracle, n=10_000, seed=1)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from . import directions
from .features import Collection, Oracle, Selection, collect, score_images
from .models.base import render
from .unlearn import History, UnlearnConfig, unlearn


@dataclass
class Feature:
    """A feature pinned down in a model's latent space: who labels it, the samples, direction and threshold."""

    oracle: Oracle  # scores any image (a Selection has already become a LinearProbe)
    collection: Collection  # the labelled samples the direction was estimated from
    direction: torch.Tensor  # unit vector (latent_dim,)
    threshold: float  # projection t
    method: str = "mean_diff"
    rule: str = "mean"
    stats: dict = field(default_factory=dict)

    @classmethod
    def from_collection(
        cls, oracle: Oracle, collection: Collection, *, method: str = "mean_diff", rule: str = "mean"
    ) -> "Feature":
        d = directions.feature_direction(collection.z_pos, collection.z_neg, method)
        t = directions.threshold(collection.z_pos, collection.z_neg, d, rule)
        p = directions.project(collection.z, d)
        pos = collection.labels
        stats = {
            "n_samples": len(collection),
            "n_positive": int(pos.sum()),
            "positive_share": collection.share,
            "method": method,
            "rule": rule,
            "threshold": t,
            "mean_projection_positive": float(p[pos].mean()),
            "mean_projection_negative": float(p[~pos].mean()),
            # how well the linear rule alone recovers the labels
            "linear_rule_recall": float((p[pos] >= t).float().mean()),
            "linear_rule_false_positive_rate": float((p[~pos] >= t).float().mean()),
        }
        return cls(oracle, collection, d, t, method, rule, stats)

    @classmethod
    def from_oracle(
        cls,
        model: nn.Module,
        oracle: Oracle,
        *,
        n: int = 4000,
        seed: int = 0,
        method: str = "mean_diff",
        rule: str = "mean",
    ) -> "Feature":
        """Sample ``n`` latents, label their images with ``oracle``, estimate the direction and threshold."""
        return cls.from_collection(oracle, collect(model, oracle, n, seed=seed), method=method, rule=rule)

    @classmethod
    def from_selection(
        cls,
        z: torch.Tensor,
        images: torch.Tensor,
        selected: Sequence[int],
        *,
        feature_extractor: nn.Module | None = None,
        method: str = "mean_diff",
        rule: str = "mean",
        name: str = "selection",
    ) -> "Feature":
        """A feature from clicks: ``selected`` indices of the shown ``images`` (rendered from ``z``) show it.

        The direction comes from the clicked latents; a :class:`~feature_unlearning.features.LinearProbe`
        trained on the clicks becomes the oracle that labels fresh samples during unlearning.
        """
        sel = Selection(selected, name=name)
        labels = sel.mask(len(images))
        collection = Collection(z.cpu(), images.cpu(), labels.float(), labels)
        directions._check_sets(collection.z_pos, collection.z_neg)
        probe = sel.fit_probe(images, feature_extractor)
        return cls.from_collection(probe, collection, method=method, rule=rule)

    def projections(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections of the positive and of the negative collected latents (for the histogram)."""
        p = directions.project(self.collection.z, self.direction)
        return p[self.collection.labels], p[~self.collection.labels]

    def unlearn(
        self,
        model: nn.Module,
        config: UnlearnConfig | None = None,
        *,
        callback: Callable[[int, dict], bool | None] | None = None,
        progress_bar: bool | None = None,
    ) -> tuple[nn.Module, History]:
        """:func:`~feature_unlearning.unlearn.unlearn` with this feature's direction, threshold and oracle."""
        cfg = config or UnlearnConfig()
        cut = None
        if cfg.method == "oracle" and self.stats.get("n_positive", 0) >= 2:
            pos, _ = self.projections()
            cut = float(torch.quantile(pos, cfg.oversample_quantile))
        return unlearn(
            model,
            self.direction,
            self.threshold,
            cfg,
            oracle=self.oracle,
            oversample_cut=cut,
            callback=callback,
            progress_bar=progress_bar,
        )


@torch.no_grad()
def compare(
    original: nn.Module,
    unlearned: nn.Module,
    oracle: Oracle,
    *,
    n: int = 10_000,
    seed: int = 1,
    reference: str | None = "auto",
    classifier: nn.Module | None = None,
) -> dict:
    """Before/after numbers on the same ``n`` fresh latents.

    ``share_before``/``share_after`` (the oracle's verdict), ``removed`` (1 - after/before),
    ``fd_before`` (original vs all real digits), ``fd_after`` (unlearned vs real digits without the
    feature, when a shipped reference for this oracle exists), ``fd_ratio`` and ``preservation`` (SSIM and
    L1 on the latents whose original image does not show the feature). ``reference=None`` skips the
    Frechet distances (for models that are not 28x28 digits).
    """
    from . import metrics

    start = time.perf_counter()
    z = original.sample_latent(n, seed=seed, device="cpu")
    before, after = render(original, z).cpu(), render(unlearned, z).cpu()
    scores_before = score_images(oracle, before)
    pos_before = scores_before >= oracle.threshold
    pos_after = score_images(oracle, after) >= oracle.threshold
    clear = scores_before < oracle.threshold - getattr(oracle, "default_margin", 0.0)
    share_before, share_after = float(pos_before.float().mean()), float(pos_after.float().mean())
    out = {
        "n": n,
        "share_before": share_before,
        "share_after": share_after,
        "removed": 1 - share_after / share_before if share_before > 0 else float("nan"),
        "preservation": metrics.preservation(before[~pos_before], after[~pos_before]),
        # the same on samples clearly without the feature (below the oracle's margin), which unlearning targets
        # never move; the rest of the negatives are borderline and are pushed further from the feature
        "preservation_clear": metrics.preservation(before[clear], after[clear]),
    }
    if reference is not None and before.shape[1:] == (1, 28, 28):
        ref_after = f"not-{oracle.name}" if reference == "auto" else reference
        try:
            metrics.load_reference(ref_after)
        except ValueError:
            ref_after = "all"
        out["fd_before"] = metrics.frechet_distance(before, "all", classifier=classifier)
        out["fd_after"] = metrics.frechet_distance(after, ref_after, classifier=classifier)
        out["fd_after_reference"] = ref_after
        out["fd_ratio"] = out["fd_after"] / out["fd_before"]
    out["seconds"] = time.perf_counter() - start
    return out
