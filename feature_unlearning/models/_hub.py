"""The Hugging Face Hub mixin shared by every model class of the package.

``save_pretrained`` writes ``config.json`` (the ``__init__`` arguments plus an ``architecture`` key that
:func:`feature_unlearning.load_pretrained` uses to pick the class) and ``model.safetensors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import PyTorchModelHubMixin

REPO_URL = "https://github.com/feature-unlearning/feature-unlearning"
PAPER_URL = "https://arxiv.org/abs/2303.05699"

#: Every class that :func:`feature_unlearning.load_pretrained` can build, by ``config["architecture"]``.
ARCHITECTURES: dict[str, type] = {}


class HubModel(
    PyTorchModelHubMixin,
    library_name="feature-unlearning",
    repo_url=REPO_URL,
    paper_url=PAPER_URL,
    tags=["feature-unlearning", "pytorch"],
):
    """Mixin: safetensors + config.json with an ``architecture`` key, and a class registry."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ARCHITECTURES[cls.__name__] = cls

    def save_pretrained(self, save_directory: str | Path, *, config: dict | None = None, **kwargs: Any):
        config = dict(config if config is not None else (self._hub_mixin_config or {}))
        config["architecture"] = type(self).__name__
        return super().save_pretrained(save_directory, config=config, **kwargs)

    @property
    def config(self) -> dict:
        """The ``__init__`` arguments this model was built with (what ``config.json`` stores)."""
        return {k: v for k, v in dict(self._hub_mixin_config or {}).items() if k != "architecture"}
