"""The registry of known models, ``load_pretrained`` and saving with a model card.

One code path loads every model: a folder holding ``config.json`` (the ``__init__`` arguments plus an
``architecture`` key) and ``model.safetensors``. A registry name resolves to the copy bundled inside the
package, a Hub repo id to the folder that ``huggingface_hub`` downloads (or finds in its cache; it honours
``HF_HUB_OFFLINE``), a local path to itself. Loading is strict and never unpickles.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .models import ARCHITECTURES
from .utils import atomic_directory

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
HUB_ORG = "feature-unlearning"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt", ".tar")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelEntry:
    """A known model: where it is published and whether a copy ships inside the package."""

    name: str
    repo_id: str
    description: str
    kind: str = "generator"  # or "classifier"
    revision: str | None = None  # a pinned commit; None = the bundled copy is the reference
    bundled: bool = True

    @property
    def bundled_path(self) -> Path:
        return PRETRAINED_DIR / self.name


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            name="mnist-dcgan",
            repo_id=f"{HUB_ORG}/mnist-dcgan",
            description="DCGAN generator for 28x28 MNIST digits (latent 32)",
        ),
        ModelEntry(
            name="mnist-vae",
            repo_id=f"{HUB_ORG}/mnist-vae",
            description="Convolutional VAE for 28x28 MNIST digits (latent 8); forward(z) is the decoder",
        ),
        ModelEntry(
            name="mnist-classifier",
            repo_id=f"{HUB_ORG}/mnist-classifier",
            description="CNN digit classifier: the digit:K oracle and the feature space of the metrics",
            kind="classifier",
        ),
        ModelEntry(
            name="mnist-judge",
            repo_id=f"{HUB_ORG}/mnist-judge",
            description="An independently trained digit classifier (other architecture and seed) used only to judge",
            kind="classifier",
        ),
        # Faces. Their published weights are pickles, which load_pretrained never reads: `feature-unlearning
        # convert NAME --out DIR` downloads them (pinned in feature_unlearning.convert.SOURCES), writes
        # safetensors + config.json, and load_pretrained(DIR) loads that. See docs/faces.md.
        ModelEntry(
            name="pggan-celebahq-1024",
            repo_id="huggan/pggan-celebahq-1024",
            revision="278449f8416d38a0233c980774528d32c4eee99c",  # the commit that added pytorch_model.bin
            description="Progressive GAN, CelebA-HQ faces 1024x1024 (NVIDIA's, via genforce; latent 512). "
            "Pickled on the Hub: `feature-unlearning convert pggan-celebahq-1024 --out DIR`, then load DIR",
            bundled=False,
        ),
        # The pytorch_GAN_zoo checkpoints are on dl.fbaipublicfiles.com (torch.hub), not on the Hub; these
        # repo ids are where their converted copies are to be published. None is uploaded yet, hence no
        # revision: until then convert them locally (the download is checked against torch.hub's SHA-256).
        ModelEntry(
            name="pgan-celebahq-512",
            repo_id=f"{HUB_ORG}/pgan-celebahq-512",
            description="Progressive GAN, CelebA-HQ faces 512x512 (pytorch_GAN_zoo torch.hub; latent 512). "
            "Not uploaded yet: `feature-unlearning convert pgan-celebahq-512 --out DIR`, then load DIR",
            bundled=False,
        ),
        ModelEntry(
            name="pgan-celebahq-256",
            repo_id=f"{HUB_ORG}/pgan-celebahq-256",
            description="Progressive GAN, CelebA-HQ faces 256x256 (pytorch_GAN_zoo torch.hub; latent 512). "
            "Not uploaded yet: `feature-unlearning convert pgan-celebahq-256 --out DIR`, then load DIR",
            bundled=False,
        ),
        ModelEntry(
            name="pgan-celeba-128",
            repo_id=f"{HUB_ORG}/pgan-celeba-128",
            description="Progressive GAN, CelebA cropped faces 128x128 (pytorch_GAN_zoo torch.hub; latent 512). "
            "Not uploaded yet: `feature-unlearning convert pgan-celeba-128 --out DIR`, then load DIR",
            bundled=False,
        ),
    )
}


def register(entry: ModelEntry) -> None:
    """Add a model to the registry (for example a Hub repo that ``load_pretrained`` should know by name)."""
    REGISTRY[entry.name] = entry


def list_models(kind: str | None = None) -> list[str]:
    """Registry names, optionally only those of one ``kind`` ("generator" or "classifier")."""
    return [name for name, e in REGISTRY.items() if kind is None or e.kind == kind]


def load_pretrained(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    device: torch.device | str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    architecture: str | None = None,
) -> nn.Module:
    """Load a model in eval mode, float32, on ``device`` (default CPU).

    ``name_or_path`` is a registry name (``list_models()``), a local folder, or a Hugging Face Hub repo
    id (``"org/name"``, optionally at ``revision``). ``architecture`` names the class when the config
    has no ``architecture`` key. Raises ``ValueError`` saying what exists or what is wrong.
    """
    key = str(name_or_path)
    entry = REGISTRY.get(key)
    if entry is not None:
        if entry.bundled and entry.bundled_path.is_dir() and revision in (None, entry.revision):
            folder = entry.bundled_path
        else:
            folder = _download(entry.repo_id, revision or entry.revision, cache_dir=cache_dir, token=token)
    elif Path(key).expanduser().is_dir():
        folder = Path(key).expanduser()
    elif _REPO_ID.match(key) and not Path(key).expanduser().exists():
        folder = _download(key, revision, cache_dir=cache_dir, token=token)
    else:
        raise ValueError(
            f"unknown model {key!r}: it is not a registry name ({', '.join(REGISTRY)}), not an existing "
            "folder, and not a Hugging Face Hub repo id of the form 'org/name'"
        )
    model = load_folder(folder, architecture=architecture)
    model.name_or_path = key
    return model.to(device) if device is not None else model


def _download(repo_id: str, revision: str | None, *, cache_dir, token) -> Path:
    """Fetch ``config.json`` and ``model.safetensors`` (and the card, if any) of a Hub repo; return their folder."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"{repo_id}@{revision}" if revision else repo_id
    paths = {}
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            paths[filename] = hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=cache_dir, token=token
            )
        except RepositoryNotFoundError:
            raise ValueError(f"no Hub repo {repo_id!r} (or it is private and no token was given)") from None
        except RevisionNotFoundError:
            raise ValueError(f"Hub repo {repo_id!r} has no revision {revision!r}") from None
        except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: catch it first
            raise ValueError(
                f"can't load {at}: {filename} is not in the local Hugging Face cache and the Hub can't be "
                "reached (offline, or HF_HUB_OFFLINE=1). Connect once to download it, or pass a local folder."
            ) from None
        except EntryNotFoundError:
            hint = (
                " (pickled weights are not loaded: convert them first with `feature-unlearning convert`)"
                if filename == WEIGHTS_NAME
                else ""
            )
            raise ValueError(f"Hub repo {at} has no {filename}{hint}") from None
    folder = Path(paths[WEIGHTS_NAME]).parent
    if Path(paths[CONFIG_NAME]).parent != folder:
        raise ValueError(f"Hub repo {at}: config.json and model.safetensors resolved to different snapshots")
    return folder


def read_config(folder: str | Path) -> dict:
    """The parsed ``config.json`` of a model folder (``ValueError`` if missing or not JSON)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{folder} has no {CONFIG_NAME}; a model folder holds config.json and model.safetensors")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, found {type(config).__name__}")
    return config


def build_from_config(config: dict, *, architecture: str | None = None) -> nn.Module:
    """Instantiate (randomly initialised) the architecture that ``config`` describes."""
    config = dict(config)
    arch = architecture or config.pop("architecture", None)
    config.pop("architecture", None)
    if arch is None:
        raise ValueError(f"the config has no 'architecture' key; pass architecture= one of {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES.get(arch)
    if cls is None:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(config) - set(params))
    if unknown:
        raise ValueError(f"config keys {unknown} are not arguments of {arch}; it takes {sorted(set(params) - {'self'})}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"can't build {arch} from config {config}: {err}") from None


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (``ValueError`` if it is missing, truncated or not safetensors)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        pickles = sorted(p.name for p in path.parent.iterdir() if p.suffix in PICKLE_SUFFIXES) if path.parent.is_dir() else []
        if pickles:
            raise ValueError(
                f"{path.parent} has pickled weights ({', '.join(pickles)}) but no {WEIGHTS_NAME}. feature-unlearning "
                "never unpickles model files; convert them with `feature-unlearning convert`."
            )
        raise ValueError(f"{path.parent} has no {WEIGHTS_NAME}")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError) for bad files
        raise ValueError(f"{path} is not a readable safetensors file (truncated or another format?): {err}") from None


def load_folder(folder: str | Path, *, architecture: str | None = None) -> nn.Module:
    """Build the model that ``folder/config.json`` describes and load ``folder/model.safetensors`` strictly."""
    folder = Path(folder)
    model = build_from_config(read_config(folder), architecture=architecture)
    state = load_state(folder / WEIGHTS_NAME)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{folder}: config.json does not match the weights in {WEIGHTS_NAME}: {err}") from None
    model.eval()
    return model


def save_pretrained(model: nn.Module, directory: str | Path, *, card: str | None = None, overwrite: bool = False) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` (``card``) into ``directory``.

    The folder is written whole or not at all (a temporary folder renamed into place). An existing
    non-empty folder is an error unless ``overwrite=True``; a bundled model's folder never is overwritten.
    """
    directory = Path(directory).expanduser().resolve()
    if directory == PRETRAINED_DIR.resolve() or PRETRAINED_DIR.resolve() in directory.parents:
        raise ValueError(f"{directory} is inside the package's bundled models; save elsewhere")
    if not hasattr(model, "save_pretrained"):
        raise TypeError(f"{type(model).__name__} is not a hub model (subclass feature_unlearning.models.HubModel)")
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        if card is not None:
            (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        load_folder(tmp)  # refuse to publish a folder that would not load back
    return directory


def model_card(*, title: str, summary: str, metadata: dict[str, Any], sections: dict[str, str]) -> str:
    """A model card: YAML metadata (license, datasets, tags, base_model, ...) then Markdown sections."""
    from huggingface_hub import ModelCardData

    meta = {"library_name": "feature-unlearning", **metadata}
    header = ModelCardData(**meta).to_yaml()
    body = "\n\n".join(f"## {name}\n\n{text.strip()}" for name, text in sections.items())
    return f"---\n{header}\n---\n\n# {title}\n\n{summary.strip()}\n\n{body}\n"


def push_to_hub(
    model: nn.Module, repo_id: str, *, token: str, card: str | None = None, private: bool = False
) -> str:
    """Save ``model`` (with ``card``) and upload it to the Hub repo ``repo_id``; returns the repo URL."""
    import tempfile

    from huggingface_hub import HfApi

    if not token:
        raise ValueError("pushing to the Hub needs a token with write access (https://huggingface.co/settings/tokens)")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(model, Path(tmp) / "model", card=card)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload with feature-unlearning")
    return str(url)


def unlearned_card(
    *,
    base_model: str,
    feature: str,
    feature_stats: dict,
    config: dict,
    results: dict | None = None,
    seconds: float | None = None,
) -> str:
    """The model card of an unlearned model: its base, the feature, the direction, the config and the
    before/after numbers measured on it."""
    import platform

    from .utils import machine_info

    stats = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in feature_stats.items())
    cfg = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in config.items())
    sections = {
        "Usage": f"```python\nimport feature_unlearning as fu\nmodel = fu.load_pretrained(\"path/to/this/folder\")\n"
        "images = model.generate(16, seed=0)\n```",
        "Feature": f"Unlearned feature: `{feature}`.\n\n| direction statistic | value |\n|---|---|\n{stats}",
        "Unlearning config": f"| setting | value |\n|---|---|\n{cfg}",
    }
    if results:
        rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in _flatten(results).items())
        sections["Measured before / after"] = f"| measure | value |\n|---|---|\n{rows}"
    if seconds is not None:
        sections["Cost"] = f"Unlearning took {seconds:.1f} s on {machine_info()} (Python {platform.python_version()})."
    base_meta = REGISTRY[base_model].repo_id if base_model in REGISTRY else base_model
    base_meta = base_meta if _REPO_ID.match(base_meta) else None
    meta = {"license": "cc-by-sa-3.0", "tags": ["feature-unlearning", "machine-unlearning"]}
    if base_meta:
        meta["base_model"] = base_meta
    return model_card(
        title=f"{Path(base_model).name} without `{feature}`",
        summary=f"`{base_model}` fine-tuned with feature-unlearning (Moon, Cho & Kim, AAAI 2024) so that it "
        f"no longer generates `{feature}`, while its other samples stay as they were.",
        metadata=meta,
        sections=sections,
    )


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"`{v}`" if isinstance(v, (tuple, list)) else str(v)


def export_zip(model: nn.Module, path: str | Path, *, card: str | None = None) -> Path:
    """Save ``model`` (config, safetensors, card) and pack the folder into the zip file ``path``."""
    import shutil
    import tempfile

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(model, Path(tmp) / path.stem, card=card)
        archive = shutil.make_archive(str(Path(tmp) / path.stem), "zip", root_dir=folder.parent, base_dir=folder.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        shutil.copyfile(archive, partial)
        partial.replace(path)
    return path
