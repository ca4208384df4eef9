"""What one unlearning run produced, and everything done with it afterwards: compare, card, save, zip, push.

    result = feature.unlearn(model, UnlearnConfig())     # an UnlearnResult
    result.compare(n=2000)                               # before/after numbers, kept for the card
    result.save("mnist-dcgan-without-8")                 # config.json + model.safetensors + README.md
    result.export_zip("out/")                            # the same folder as one zip
    result.push("me/mnist-dcgan-without-8", token=...)   # to the Hugging Face Hub

The CLI, the app (through :class:`~feature_unlearning.session.Workspace`) and the notebooks all use this
one object, so the model card says the same things whichever front end made it. The files are written
by :mod:`feature_unlearning.hub`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from .unlearn import History

if TYPE_CHECKING:
    from .feature import Feature


@dataclass
class UnlearnResult:
    """The original model, its unlearned copy, the training history and the feature that was unlearned.

    ``comparison`` holds the last :meth:`compare` (None before); ``base_model`` names the original in the
    card (default: the name or folder it was loaded from).
    """

    original: nn.Module
    unlearned: nn.Module
    history: History
    feature: Feature
    comparison: dict | None = None
    base_model: str | None = None

    def __post_init__(self) -> None:
        if self.base_model is None:
            self.base_model = str(getattr(self.original, "name_or_path", None) or type(self.original).__name__)

    @property
    def name(self) -> str:
        """A file-system-safe name such as ``mnist-dcgan-without-thick``."""
        base = Path(str(self.base_model).rstrip("/")).name or "model"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{base}-without-{self.feature.name}").strip("-")

    @property
    def stopped_early(self) -> bool:
        return self.history.stopped_early

    def compare(self, *, n: int = 2000, seed: int = 1, **kwargs) -> dict:
        """:func:`~feature_unlearning.metrics.compare` of the original and the unlearned model on ``n`` fresh
        latents by the feature's oracle; kept in ``comparison`` (and so in the card)."""
        from .metrics import compare

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.comparison = compare(self.original, self.unlearned, self.feature.oracle, n=n, seed=seed, **kwargs)
        return self.comparison

    def card(self) -> str:
        """The model card (:func:`~feature_unlearning.hub.unlearned_card`): base model, feature, direction
        statistics, config, the measured numbers (after :meth:`compare`) and the time it took."""
        from .hub import unlearned_card

        config = dict(self.history.config)
        if config.get("margin") is None and self.history.margin is not None:
            config["margin"] = f"{self.history.margin:g} (the oracle's)"  # what the run used, not "None"
        if config.get("anchor", 0) is None:
            config["anchor"] = f"{self.history.anchor:g} (the oracle's)" if self.history.anchor else "0"
        return unlearned_card(
            base_model=self.base_model,
            feature=self.feature.name,
            feature_stats=self.feature.stats,
            config=config,
            results=self.comparison,
            seconds=self.history.seconds,
        )

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the unlearned model with its card into ``folder`` (whole or not at all); returns the folder."""
        from .hub import save_pretrained

        return save_pretrained(self.unlearned, folder, card=self.card(), overwrite=overwrite)

    def export_zip(self, folder: str | Path) -> Path:
        """Pack the saved model into ``folder/<name>.zip``; returns the zip's path."""
        from .hub import export_zip

        return export_zip(self.unlearned, Path(folder) / f"{self.name}.zip", card=self.card())

    def push(self, repo_id: str, token: str | None, *, private: bool = False) -> str:
        """Upload the unlearned model with its card to the Hub repo ``repo_id``; returns the repo URL."""
        from huggingface_hub.errors import HFValidationError

        from .hub import push_to_hub

        repo_id = (repo_id or "").strip()
        try:
            return push_to_hub(self.unlearned, repo_id, token=(token or "").strip(), card=self.card(), private=private)
        except HFValidationError:
            raise ValueError(f"{repo_id!r} is not a Hub repo id; write it as your-name/model-name") from None
