"""The registry of known models, ``load_pretrained`` and saving with a model card.

One code path loads every model: a folder holding ``config.json`` (the ``__init__`` arguments plus an
``architecture`` key) and ``model.safetensors``. A registry name resolves to the copy bundled inside the
package, to a folder converted once into the user cache from a published pickled checkpoint (the entry's
:class:`Source`: a PyPI package file, a Hub file at a commit, or a URL checked by SHA-256; see
:mod:`feature_unlearning.convert`), or to the folder that ``huggingface_hub`` downloads; a Hub repo id to
that download (or its cache; it honours ``HF_HUB_OFFLINE``), a local path to itself. Loading is strict and
never unpickles.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from dataclasses import dataclass, field
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
GAN_ZOO = "https://github.com/facebookresearch/pytorch_GAN_zoo"

MNIST_TERMS = "Trained on MNIST (LeCun, Cortes & Burges), available under CC BY-SA 3.0."
CELEBA_TERMS = (
    "The training images (CelebA / CelebA-HQ) are for non-commercial research only "
    "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)."
)
DIGIFACE_TERMS = (
    "Trained on Microsoft's DigiFace-1M (synthetic faces, https://github.com/microsoft/DigiFace1M), whose terms "
    "limit its use to non-commercial research: use this model, and models derived from it, for non-commercial "
    "research only. (The PyPI package gan-face-generate that ships the weights is MIT-licensed.)"
)


def cache_root() -> Path:
    """Where converted models are kept: ``$FEATURE_UNLEARNING_CACHE``, else ``$XDG_CACHE_HOME/feature-unlearning``,
    else ``~/.cache/feature-unlearning``."""
    if os.environ.get("FEATURE_UNLEARNING_CACHE"):
        return Path(os.environ["FEATURE_UNLEARNING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "feature-unlearning"


@dataclass(frozen=True)
class Source:
    """Where a model's published, pickled checkpoint lives; :mod:`~feature_unlearning.convert` turns it
    once into a model folder in :func:`cache_root`. Exactly one of: a file of an installed PyPI package
    (``package`` + ``package_file``), a Hub file at a commit (``repo_id`` + ``filename`` + ``revision``), or a
    URL (``url``). ``sha256_prefix`` pins a URL's or a package file's content (torch.hub's convention)."""

    architecture: str
    title: str
    summary: str
    code: str  # whose parameter names the checkpoint uses
    url: str | None = None
    sha256_prefix: str | None = None
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    package: str | None = None  # the PyPI distribution (what to pip install)
    package_file: str | None = None  # the file inside site-packages, e.g. "gan_face_generate/weights.tar"
    size: str = ""  # what a user downloads, for messages ("92 MB")

    @property
    def origin(self) -> str:
        if self.package:
            return f"{self.package_file} of the PyPI package {self.package}"
        if self.url:
            return self.url
        return f"https://huggingface.co/{self.repo_id}/blob/{self.revision}/{self.filename}"

    @property
    def pin(self) -> str:
        """A short, content-pinning name for the converted copy's cache folder."""
        return (self.revision or self.sha256_prefix or "unpinned")[:12]


@dataclass(frozen=True)
class ModelEntry:
    """A known model: where it comes from (bundled, converted from a :class:`Source`, or a Hub folder), its
    licence and data terms, and which image feature extractor a click probe should use for it."""

    name: str
    repo_id: str | None  # a Hub repo holding config.json + model.safetensors (None: none published)
    description: str
    kind: str = "generator"  # "classifier" or "encoder"
    revision: str | None = None  # a pinned commit of repo_id; None = the bundled copy is the reference
    bundled: bool = True
    source: Source | None = None  # a published pickle that load_pretrained converts once into the cache
    license: str | None = "cc-by-sa-3.0"  # Hub licence id of the weights (card metadata)
    license_name: str | None = None  # with license "other": a short id of the terms
    license_link: str | None = None  # with license "other": where the terms are
    terms: str = MNIST_TERMS  # the licence / data terms in words, copied to the cards of derived models
    datasets: tuple[str, ...] = ("mnist",)
    extractor: str | None = None  # registry name of the image feature extractor for click probes (None: none)
    # how a feature from clicks is best unlearned from this model (measured in benchmarks/faces.py for the faces):
    clicks_direction: dict | None = None  # {"n", "seed", "rule"}: the direction of n fresh samples the click probe
    #                                       labels (None: the clicked latents' own direction)
    unlearn_defaults: dict = field(default_factory=dict)  # UnlearnConfig fields that differ from the defaults

    @property
    def bundled_path(self) -> Path:
        return PRETRAINED_DIR / self.name

    @property
    def converted_path(self) -> Path | None:
        """The folder in the user cache that holds this entry's converted copy (None without a source)."""
        return cache_root() / "models" / self.name / self.source.pin if self.source else None

    @property
    def base_model(self) -> str | None:
        """The Hub repo the weights come from, for a card's ``base_model`` (None if not on the Hub)."""
        return self.repo_id or (self.source.repo_id if self.source else None)

    def where(self) -> str:
        """Where ``load_pretrained`` gets it from, in a few words."""
        if self.bundled and self.bundled_path.is_dir():
            return "bundled"
        if self.source is not None:
            conv = self.converted_path
            if conv is not None and (conv / WEIGHTS_NAME).is_file():
                return "converted (cached)"
            if self.source.package:
                return f"pip {self.source.package}"
            return f"hub {self.source.repo_id}" if self.source.repo_id else "torch.hub URL"
        return f"hub {self.repo_id}@{self.revision or 'main'}"


def _gan_zoo(name: str, url: str, side: int, data: str) -> ModelEntry:
    return ModelEntry(
        name=name,
        repo_id=None,
        description=f"Progressive GAN, {data} faces {side}x{side} (pytorch_GAN_zoo torch.hub; latent 512). "
        "Downloaded and converted once into the cache on first load",
        bundled=False,
        source=Source(
            architecture="PGANGenerator",
            title=f"Progressive GAN, {data}, {side}x{side} (pytorch_GAN_zoo)",
            summary=f"The torch.hub `PGAN` generator of facebookresearch/pytorch_GAN_zoo trained on {data} "
            f"({side}x{side}, latent 512), converted to safetensors for feature-unlearning (the smoothed "
            "generator `avgG`, which torch.hub's `model.test(getAvG=True)` uses).",
            code=GAN_ZOO,
            url=url,
            sha256_prefix=url.rsplit("-", 1)[1].split(".")[0],
        ),
        license="bsd-3-clause",
        terms=f"The code and weights of pytorch_GAN_zoo are BSD-3-Clause. {CELEBA_TERMS}",
        datasets=("celeba",),
    )


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            name="mnist-dcgan",
            repo_id=f"{HUB_ORG}/mnist-dcgan",
            description="DCGAN generator for 28x28 MNIST digits (latent 32)",
            extractor="mnist-classifier",
        ),
        ModelEntry(
            name="mnist-vae",
            repo_id=f"{HUB_ORG}/mnist-vae",
            description="Convolutional VAE for 28x28 MNIST digits (latent 8); forward(z) is the decoder",
            extractor="mnist-classifier",
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
            description="A second digit classifier of the oracle's family, data and recipe (other size and seed); "
            "superseded as a judge by mnist-judge-resnet",
            kind="classifier",
        ),
        ModelEntry(
            name="mnist-judge-resnet",
            repo_id=f"{HUB_ORG}/mnist-judge-resnet",
            description="The independent digit judge (feature_unlearning.judges): a small ResNet trained with "
            "augmentation on digits the oracle never saw; unlearning never optimises against it",
            kind="classifier",
        ),
        # Faces. Their published weights are pickles, which load_pretrained never reads: the first load by
        # name converts the file (feature_unlearning.convert, torch.load(weights_only=True)) into a folder in
        # cache_root() and every later load reads that folder. See docs/faces.md.
        ModelEntry(
            name="digiface-dcgan64",
            repo_id=None,
            description="DCGAN generator of 64x64 colour faces (latent 100) trained on Microsoft's DigiFace-1M, "
            "whose terms allow non-commercial research use only; weights from the PyPI package gan-face-generate "
            "(pip install gan-face-generate), converted once into the cache",
            bundled=False,
            source=Source(
                architecture="DCGAN64Generator",
                title="DCGAN-64 faces, DigiFace-1M (gan-face-generate)",
                summary="A DCGAN generator (PyTorch DCGAN tutorial layout, latent 100, 64x64 RGB, tanh) trained on "
                "Microsoft's synthetic DigiFace-1M faces by Chien Liu and shipped in the PyPI package "
                "`gan-face-generate` 1.1.1 (MIT); converted to safetensors for feature-unlearning.",
                code="https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html",
                package="gan-face-generate",
                package_file="gan_face_generate/weights.tar",
                sha256_prefix="0c3b90b138cf",  # gan-face-generate 1.1.1
            ),
            license="other",
            license_name="digiface-1m-non-commercial-research",
            license_link="https://github.com/microsoft/DigiFace1M",
            terms=DIGIFACE_TERMS,
            datasets=("digiface-1m",),
            extractor="digiface-encoder",
            # the glasses trials of benchmarks/faces.py: the clicks' own direction often keeps the glasses in its
            # targets; only the first two blocks (4 and 8 px) are fine-tuned, as well as all, in half the time (trial
            # N); batches of 64 at twice the rate, cosine, learn the edit further per second than 16 (trial AA: the
            # GPU sweep benchmarks/faces_sweep.py, then counted by eye); bfloat16 where it is native (a GPU, a CPU with
            # AVX512-BF16 or AMX): the same faces by eye, 1.56x faster on such a CPU (trial AC)
            clicks_direction=dict(n=5000, seed=11, rule="balanced"),
            unlearn_defaults=dict(steps=500, batch_size=64, lr=3e-4, lr_schedule="cosine", alpha=2.0,
                                  oversample=0.5, linear_positives=True,
                                  trainable=("model.0", "model.1", "model.3", "model.4"),
                                  oracle_weight=0.0, replay=0.0, search_offsets=(1.5, 2.5, 3.5), log_every=10,
                                  mixed_precision=None),
        ),
        ModelEntry(
            name="digiface-encoder",
            repo_id=f"{HUB_ORG}/digiface-encoder",
            description="Image encoder trained on digiface-dcgan64's own (z, G(z)) pairs: the feature space of "
            "click probes on faces",
            kind="encoder",
            license="other",
            license_name="digiface-1m-non-commercial-research",
            license_link="https://github.com/microsoft/DigiFace1M",
            terms=DIGIFACE_TERMS,
            datasets=("digiface-1m",),
        ),
        ModelEntry(
            name="pggan-celebahq-1024",
            repo_id=None,
            description="Progressive GAN, CelebA-HQ faces 1024x1024 (NVIDIA's, via genforce; latent 512). "
            "Downloaded (92 MB) and converted once into the cache on first load",
            bundled=False,
            source=Source(
                architecture="PGGANGenerator",
                title="Progressive GAN, CelebA-HQ, 1024x1024 (Karras et al., via genforce and HugGAN)",
                summary="NVIDIA's official Progressive GAN for CelebA-HQ 1024x1024 (latent 512), converted to "
                "PyTorch by genforce/sefa and uploaded to the Hub as huggan/pggan-celebahq-1024; converted "
                "again to safetensors for feature-unlearning. NVIDIA released the original weights under "
                "CC BY-NC 4.0 (the Hub repo is labelled apache-2.0).",
                code="https://github.com/genforce/sefa",
                repo_id="huggan/pggan-celebahq-1024",
                filename="pytorch_model.bin",
                revision="278449f8416d38a0233c980774528d32c4eee99c",  # the commit that added pytorch_model.bin
                size="92 MB",
            ),
            license="cc-by-nc-4.0",
            terms=f"NVIDIA released the weights under CC BY-NC 4.0 (non-commercial). {CELEBA_TERMS}",
            datasets=("celeba-hq",),
        ),
        _gan_zoo(
            "pgan-celebahq-512",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ16_december_s7_i96000-9c72988c.pth",
            512,
            "CelebA-HQ",
        ),
        _gan_zoo(
            "pgan-celebahq-256",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth",
            256,
            "CelebA-HQ",
        ),
        _gan_zoo(
            "pgan-celeba-128",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaCropped_s5_i83000-2b0acc76.pth",
            128,
            "CelebA (cropped)",
        ),
    )
}


def register(entry: ModelEntry) -> None:
    """Add a model to the registry (for example a Hub repo that ``load_pretrained`` should know by name)."""
    REGISTRY[entry.name] = entry


def list_models(kind: str | None = None) -> list[str]:
    """Registry names, optionally only those of one ``kind`` ("generator", "classifier" or "encoder")."""
    return [name for name, e in REGISTRY.items() if kind is None or e.kind == kind]


def entry_for(name_or_model: str | Path | nn.Module) -> ModelEntry | None:
    """The registry entry of a name, or of a model that ``load_pretrained`` returned (None: not in the registry)."""
    key = getattr(name_or_model, "name_or_path", None) if isinstance(name_or_model, nn.Module) else name_or_model
    return REGISTRY.get(str(key))


def unlearn_defaults(name_or_model: str | Path | nn.Module) -> dict:
    """The :class:`~feature_unlearning.unlearn.UnlearnConfig` fields that differ from the defaults for this
    model (``{}`` for the digits and for any model not in the registry)."""
    entry = entry_for(name_or_model)
    return dict(entry.unlearn_defaults) if entry is not None else {}


def extractor_for(name_or_model: str | Path | nn.Module) -> str | None:
    """The registry name of the image feature extractor that a click probe should use for a model.

    ``name_or_model`` is a registry name, a path or a model that ``load_pretrained`` returned (its
    ``name_or_path``). Registry entries name theirs (``None`` for models without one, e.g. the CelebA face
    GANs); a model not in the registry whose images are 28x28 greyscale gets ``"mnist-classifier"``.
    """
    if isinstance(name_or_model, nn.Module):
        entry = REGISTRY.get(str(getattr(name_or_model, "name_or_path", "")))
        if entry is not None:
            return entry.extractor
        return "mnist-classifier" if tuple(getattr(name_or_model, "image_shape", ())) == (1, 28, 28) else None
    entry = REGISTRY.get(str(name_or_model))
    return entry.extractor if entry is not None else None


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
    id (``"org/name"``, optionally at ``revision``). A name whose weights are published as a pickle
    (the face GANs) is converted once into :func:`cache_root` and read from there afterwards;
    ``cache_dir`` is where its download goes (default: the Hugging Face / torch.hub cache).
    ``architecture`` names the class when the config has no ``architecture`` key. Raises ``ValueError`` saying what exists or what is wrong.
    """
    key = str(name_or_path)
    entry = REGISTRY.get(key)
    if entry is not None:
        if entry.bundled and entry.bundled_path.is_dir() and revision in (None, entry.revision):
            folder = entry.bundled_path
        elif entry.source is not None and revision is None:
            from .convert import converted

            folder = converted(entry, cache_dir=cache_dir, token=token)
        elif entry.repo_id is None:
            raise ValueError(f"{key} has no Hub repo to load a revision from; load it without revision=")
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


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face Hub can't be reached now (``None`` when it can, or when that can't be told).

    ``huggingface_hub`` retries a failed connection five times with back-off (about 25 s) before it
    falls back to its cache; one quick connection attempt first makes a missing network a fast, clear
    error. ``HF_HUB_OFFLINE=1`` answers at once; behind an HTTP(S) proxy the check is left to the client.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError as err:
        return f"{url.hostname}: {err.strerror or err}"
    return None


def _in_hf_cache(repo_id: str, filename: str, revision: str | None, cache_dir) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision), str)


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
    if not all(_in_hf_cache(repo_id, f, revision, cache_dir) for f in (CONFIG_NAME, WEIGHTS_NAME)):
        why = hub_unreachable()
        if why and why != "HF_HUB_OFFLINE=1":  # offline mode: huggingface_hub answers from its cache at once
            raise ValueError(
                f"can't load {at}: it is not in the local Hugging Face cache and the Hub can't be reached ({why}). "
                "Connect once to download it, or pass a local folder."
            )
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
    licence, terms = base_terms(base_model)
    sections["License"] = terms
    entry = REGISTRY.get(base_model)
    base_meta = entry.base_model if entry is not None else base_model
    base_meta = base_meta if base_meta and _REPO_ID.match(base_meta) else None
    meta = {**licence, "tags": ["feature-unlearning", "machine-unlearning"]}
    if base_meta:
        meta["base_model"] = base_meta
    return model_card(
        title=f"{Path(base_model).name} without `{feature}`",
        summary=f"`{base_model}` fine-tuned with feature-unlearning (Moon, Cho & Kim, AAAI 2024) so that it "
        f"no longer generates `{feature}`, while its other samples stay as they were.",
        metadata=meta,
        sections=sections,
    )


def base_terms(base_model: str | Path) -> tuple[dict, str]:
    """The licence metadata (``license``, ``license_link``, ``datasets``) and the licence / data terms in
    words that a model derived from ``base_model`` inherits.

    A registry name gives its entry's; a folder gives what its model card (``README.md``) says (its YAML
    ``license``/``license_name``/``license_link``/``datasets`` and its "License" section); anything else gives
    no metadata and a sentence pointing at the base model.
    """
    entry = REGISTRY.get(str(base_model))
    if entry is not None:
        meta = {"license": entry.license, "datasets": list(entry.datasets)}
        meta["license_name"], meta["license_link"] = entry.license_name, entry.license_link
        return {k: v for k, v in meta.items() if v}, entry.terms
    card = Path(str(base_model)).expanduser() / CARD_NAME
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        meta: dict[str, Any] = {}
        front = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
        if front:
            import yaml  # a dependency of huggingface_hub

            try:
                data = yaml.safe_load(front.group(1)) or {}
            except yaml.YAMLError:
                data = {}
            if isinstance(data, dict):
                meta = {k: data[k] for k in ("license", "license_name", "license_link", "datasets") if data.get(k)}
        section = re.search(r"^## License\n\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
        if section:
            return meta, section.group(1).strip()
        if meta.get("license"):
            return meta, f"As the base model's (`{meta['license']}`); see its model card."
    return {}, (
        f"The licence and data terms of the base model `{base_model}` apply; feature-unlearning does not know them."
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
