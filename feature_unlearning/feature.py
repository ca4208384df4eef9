"""A feature pinned down in a model's latent space, and the whole flow from it in a few calls.

    feature = Feature.from_oracle(model, "digit:8", n=4000, seed=0)    # oracle, samples, direction, threshold
    result = feature.unlearn(model, UnlearnConfig())                    # an UnlearnResult
    result.compare(n=10_000, seed=1)                                    # before/after numbers
    result.save("mnist-dcgan-without-8")                                # model + card

The CLI, the app (through :mod:`~feature_unlearning.session`), the notebooks and the benchmarks all go
through :class:`Feature`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from . import directions
from .oracles import Collection, Oracle, Selection, collect, get_oracle
from .unlearn import UnlearnConfig, unlearn


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
    note: str = ""  # one line on how the feature was made, for the user (e.g. a fallback)

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

    @property
    def name(self) -> str:
        """The feature's short name (its oracle's): ``"thick"``, ``"digit:8"``, ``"selection"``, ..."""
        return self.oracle.name

    @classmethod
    def from_oracle(
        cls,
        model: nn.Module,
        oracle: Oracle | str,
        *,
        n: int = 4000,
        seed: int = 0,
        method: str = "mean_diff",
        rule: str = "mean",
    ) -> "Feature":
        """Sample ``n`` latents, label their images with ``oracle`` (an :class:`~feature_unlearning.oracles.Oracle`
        or a short name for :func:`~feature_unlearning.oracles.get_oracle`), estimate the direction and threshold."""
        oracle = get_oracle(oracle)
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

        The direction comes from the clicked latents; a :class:`~feature_unlearning.oracles.LinearProbe`
        trained on the clicks becomes the oracle that labels fresh samples during unlearning.
        """
        sel, collection = _clicked(z, images, selected, name)
        probe = sel.fit_probe(images, feature_extractor)
        return cls.from_collection(probe, collection, method=method, rule=rule)

    @classmethod
    def from_clicks(
        cls,
        model: nn.Module,
        z: torch.Tensor,
        images: torch.Tensor,
        selected: Sequence[int],
        *,
        method: str = "mean_diff",
        rule: str = "mean",
        name: str = "selection",
    ) -> "Feature":
        """:meth:`from_selection` with the image feature extractor the registry names for ``model``
        (:func:`~feature_unlearning.hub.extractor_for`). Where a model has none (or it can't be loaded),
        the clicked latents still give the direction, but the oracle stays the :class:`Selection`, which
        scores no other image: :attr:`image_oracle` is then False and :meth:`default_config` is the paper's
        rule. :attr:`note` says which happened, in one line.
        """
        from .hub import entry_for, extractor_for, load_pretrained

        extractor_name, why = extractor_for(model), "the registry names none"
        if extractor_name is not None:
            try:
                extractor = load_pretrained(extractor_name)
            except ValueError as err:
                why = f"{extractor_name} can't be loaded: {err}"
            else:
                feature = cls.from_selection(
                    z, images, selected, feature_extractor=extractor, method=method, rule=rule, name=name
                )
                feature.note = f"a probe on {extractor_name} features scores every image"
                entry = entry_for(model)
                recipe = entry.clicks_direction if entry is not None else None
                if recipe:  # the direction of many fresh samples the probe labels (see ModelEntry.clicks_direction)
                    clicked = feature
                    feature = cls.from_oracle(model, clicked.oracle, n=recipe["n"], seed=recipe["seed"],
                                              method=method, rule=recipe.get("rule", rule))
                    feature.stats["n_clicked"], feature.stats["n_clicked_positive"] = (
                        clicked.stats["n_samples"], clicked.stats["n_positive"])
                    feature.note = (f"a probe on {extractor_name} features, learnt from the clicks, scores every image; "
                                    f"the direction comes from {recipe['n']} fresh samples it labelled")
                return feature
        sel, collection = _clicked(z, images, selected, name)
        feature = cls.from_collection(sel, collection, method=method, rule=rule)
        feature.note = (
            f"no image feature extractor for this model ({why}): the clicks give the direction only, and "
            "unlearning uses the paper's rule (UnlearnConfig.paper())"
        )
        return feature

    @classmethod
    def from_shown(
        cls,
        model: nn.Module,
        *,
        seed: int,
        n: int,
        indices: Sequence[int],
        method: str = "mean_diff",
        rule: str = "mean",
        name: str = "selection",
    ) -> "Feature":
        """:meth:`from_clicks` on the samples a user was shown: ``model.sample_latent(n, seed=seed)``, of which
        ``indices`` show the feature (the CLI's selection file ``{"seed": S, "n": N, "indices": [...]}``)."""
        from .models.base import render

        z = model.sample_latent(int(n), seed=int(seed), device="cpu")
        return cls.from_clicks(model, z, render(model, z).cpu(), [int(i) for i in indices], method=method,
                               rule=rule, name=name)

    @property
    def image_oracle(self) -> bool:
        """Whether the oracle scores any image (False for a bare :class:`Selection`: then only the paper's rule applies)."""
        return not isinstance(self.oracle, Selection)

    def default_config(self, *, model: str | nn.Module | None = None, **overrides) -> UnlearnConfig:
        """The default :class:`UnlearnConfig` (oracle-guided), or the paper's rule where the oracle scores no image.

        ``model`` (a registry name or a loaded model) adds that model's own defaults
        (:func:`~feature_unlearning.hub.unlearn_defaults`, e.g. the faces') under ``overrides``; they were measured
        with an image oracle, so the paper's rule keeps its own."""
        if self.image_oracle:
            from .hub import unlearn_defaults

            return UnlearnConfig(**{**(unlearn_defaults(model) if model is not None else {}), **overrides})
        return UnlearnConfig.paper(**{k: v for k, v in overrides.items() if k != "method"})

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
        base_model: str | None = None,
    ):
        """:func:`~feature_unlearning.unlearn.unlearn` with this feature's direction, threshold, oracle and
        collected positives. Returns an :class:`~feature_unlearning.result.UnlearnResult` (``base_model``
        names ``model`` in its card; default: the name it was loaded by)."""
        from .result import UnlearnResult

        cfg = config or UnlearnConfig()
        unlearned, history = unlearn(
            model,
            self.direction,
            self.threshold,
            cfg,
            oracle=self.oracle,
            positives=self.collection.z_pos,
            callback=callback,
            progress_bar=progress_bar,
        )
        return UnlearnResult(model, unlearned, history, self, base_model=base_model)


def _clicked(z: torch.Tensor, images: torch.Tensor, selected: Sequence[int], name: str) -> tuple[Selection, Collection]:
    """The clicked samples as a :class:`Selection` and the labelled :class:`Collection` the direction comes from."""
    sel = Selection(selected, name=name)
    labels = sel.mask(len(images))
    collection = Collection(z.cpu(), images.cpu(), labels.float(), labels)
    directions._check_sets(collection.z_pos, collection.z_neg)
    return sel, collection
