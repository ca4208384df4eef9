"""Turn published, pickled face-GAN checkpoints into model folders that ``load_pretrained`` reads.

    feature-unlearning convert pgan-celebahq-512            # into the cache that load_pretrained(name) reads
    feature-unlearning convert pgan-celebahq-512 --out models/pgan-celebahq-512
    feature-unlearning convert path/to/checkpoint.pth --out models/mine      # architecture detected

A model folder is ``config.json`` + ``model.safetensors`` + ``README.md``; loading one never unpickles.
**This module is the only place in feature-unlearning that reads a pickle**, and it does so with
``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which rebuilds tensors, containers and
plain values but refuses to import or call anything else. pytorch_GAN_zoo's checkpoints also hold a
pickled ``BaseConfig`` object; it is rebuilt as :class:`PickledConfig`, an inert attribute bag (no code
of that project is imported or run). Convert files you trust: weights_only limits what a pickle can
do, but it is still the least safe step of the workflow, which is why it happens once, here.

Known sources (the ``source`` of a registry entry, :func:`sources`) are the file of an installed PyPI
package, a Hub file at a pinned commit, or a URL checked against the SHA-256 prefix that torch.hub uses;
``load_pretrained(name)`` converts them once into the user cache (:func:`converted`). Any other file in
one of the three layouts converts too (``architecture=None`` detects it from the parameter names), bare
or wrapped (``{"netG_state_dict": ...}``, ``{"netG": ...}``, ``{"state_dict": ...}``, see :func:`unwrap`).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .hub import REGISTRY, WEIGHTS_NAME, ModelEntry, Source, cache_root
from .models import DCGAN64Generator, PGANGenerator, PGGANGenerator

CONVERTIBLE = ("PGANGenerator", "PGGANGenerator", "DCGAN64Generator")
#: Where a wrapped checkpoint keeps the generator's state dict, in the order they are looked for:
#: pytorch_GAN_zoo's smoothed generator, genforce's, the PyTorch DCGAN tutorial's checkpoint dict, a
#: plain ``{"netG": ...}``, Lightning's / a generic ``{"state_dict": ...}``, genforce's unsmoothed one.
WRAPPER_KEYS = ("avgG", "generator_smooth", "netG_state_dict", "netG", "state_dict", "generator")


def sources() -> dict[str, ModelEntry]:
    """The registry entries whose weights are published as a pickle (each entry's ``source``: one place)."""
    return {name: e for name, e in REGISTRY.items() if e.source is not None}


# ---------------------------------------------------------------------------------- reading a pickle


class PickledConfig:
    """Stand-in for pytorch_GAN_zoo's ``models.utils.config.BaseConfig``: plain attributes, no behaviour."""

    def get(self, key: str, default: Any = None) -> Any:
        return vars(self).get(key, default)


_STAND_INS = [(PickledConfig, "models.utils.config.BaseConfig")]


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with pytorch_GAN_zoo's config class stood in.

    The one call in the package that unpickles (see the module docstring). ``ValueError`` when the file
    is missing or holds something the restricted unpickler refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {path}")
    with path.open("rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):  # torch.save's zip format, or a legacy pickle
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (neither torch.save's zip format nor a pickle)")
    if not hasattr(torch.serialization, "safe_globals"):
        raise ValueError(
            f"converting needs a newer PyTorch than {torch.__version__} (torch.serialization.safe_globals)"
        )
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = ""
        try:
            unsafe = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):  # legacy format: the message below suffices
            pass
        raise ValueError(
            f"{path} holds objects that the restricted unpickler (weights_only=True) will not build"
            + (f" ({unsafe})" if unsafe else "")
            + ". feature-unlearning converts only checkpoints that contain tensors, plain values and known "
            f"config objects. Details: {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint (truncated or another format?): {err}") from None


def unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], str | None]:
    """The generator state dict inside a loaded checkpoint, and the key it was found under (``None``: the
    checkpoint is a bare state dict). Looks for :data:`WRAPPER_KEYS` in that order."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}, None
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return {str(k): v for k, v in inner.items()}, key
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise ValueError(
            f"the checkpoint is a dict ({keys}) with no generator state dict under any of {WRAPPER_KEYS}; "
            "load it yourself and torch.save the generator's state_dict()"
        )
    raise ValueError(f"the checkpoint holds a {type(obj).__name__}, not a state dict (a mapping of names to tensors)")


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _load(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"the {what} weights do not fit {type(model).__name__}{model.config}: {err}") from None
    return model.eval()


# ------------------------------------------------------------------------------ one function per layout


def pgan_from_checkpoint(obj: Any) -> PGANGenerator:
    """A :class:`PGANGenerator` from a pytorch_GAN_zoo checkpoint (``{'config', 'netG', 'netD', 'avgG'}``).

    Uses ``avgG`` (the moving-average generator that torch.hub samples from) when present, else
    ``netG``; a bare generator state dict works too. The architecture is read off the tensor shapes; the
    pickled config supplies pixel norm, leak, equalized lr and the loss (tanh output for 'DCGAN'/'MSE').
    """
    config = PickledConfig()
    if isinstance(obj, dict) and isinstance(obj.get("config"), (PickledConfig, dict)):
        config = obj["config"]
        if isinstance(config, dict):
            config = _as_config(config)
    state, _ = unwrap(obj)
    state = _modernise_gan_zoo_keys(_strip_prefix(state, "module."))
    if "formatLayer.module.weight" not in state:
        raise ValueError("not a pytorch_GAN_zoo PGAN generator: no formatLayer weights")
    if float(config.get("alpha", 0) or 0) > 0:
        raise ValueError(
            f"this checkpoint is mid-transition between two resolutions (alpha={config.get('alpha')}); "
            "convert a checkpoint saved at the end of a scale"
        )
    if int(config.get("categoryVectorDim", 0) or 0) > 0:
        raise ValueError("this is a conditional (AC-GAN) PGAN; only unconditional generators are supported")
    fmt = state["formatLayer.module.weight"]
    n_scales = 1 + len({k.split(".")[1] for k in state if k.startswith("scaleLayers.")})
    model = PGANGenerator(
        latent_dim=fmt.shape[1],
        depth_scale0=fmt.shape[0] // 16,
        depth_other_scales=[state[f"scaleLayers.{i}.0.module.weight"].shape[0] for i in range(n_scales - 1)],
        channels=state["toRGBLayers.0.module.weight"].shape[0],
        leaky_relu_leak=float(config.get("leakyReluLeak", 0.2)),
        normalization=bool(config.get("perChannelNormalization", True)),
        equalized_lr=bool(config.get("equalizedlR", True)),
        tanh_output=config.get("lossCriterion", "WGANGP") in ("DCGAN", "MSE"),
    )
    return _load(model, state, "PGAN")


def _as_config(d: dict) -> PickledConfig:
    c = PickledConfig()
    vars(c).update(d)
    return c


def _modernise_gan_zoo_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old pytorch_GAN_zoo files name ``formatLayer.weight`` what is now ``formatLayer.module.weight``
    (its own ``loadStateDictCompatible`` does the same renaming)."""
    out = {}
    for k, v in state.items():
        stem, _, leaf = k.rpartition(".")
        if leaf in ("weight", "bias") and not stem.endswith(".module") and stem != "module":
            k = f"{stem}.module.{leaf}"
        out[k] = v
    return out


def pggan_from_checkpoint(obj: Any) -> PGGANGenerator:
    """A :class:`PGGANGenerator` from a genforce-layout state dict (bare, or under ``generator_smooth`` /
    ``generator`` as genforce saves it). Resolution, latent size and widths are read off the shapes."""
    state = _strip_prefix(unwrap(obj)[0], "module.")
    if "layer0.weight" not in state:
        raise ValueError("not a genforce PGGAN generator: no layer0.weight")
    state.setdefault("lod", torch.zeros(()))
    if float(state["lod"]) != 0:
        raise ValueError(
            f"this checkpoint's level of detail is {float(state['lod'])}; only lod = 0 (full resolution) is supported"
        )
    blocks = 1 + max(int(k[len("output") :].split(".")[0]) for k in state if k.startswith("output"))
    resolution = 4 * 2 ** (blocks - 1)
    first = state["layer0.weight"]
    last = state[f"layer{2 * blocks - 1}.weight"]
    model = PGGANGenerator(
        resolution=resolution,
        latent_dim=first.shape[1],
        channels=state["output0.weight"].shape[0],
        fmaps_base=last.shape[0] * resolution,  # nf(res) = min(fmaps_base // res, fmaps_max)
        fmaps_max=first.shape[0],
    )
    return _load(model, state, "PGGAN (a fused-scale checkpoint is not supported)")


def dcgan64_from_checkpoint(obj: Any) -> DCGAN64Generator:
    """A :class:`DCGAN64Generator` from a HugGAN ``pytorch_model.bin`` or a PyTorch-tutorial ``netG``
    state dict (``main.*`` is renamed ``model.*``; a ``module.`` prefix from DataParallel is dropped)."""
    state = _strip_prefix(unwrap(obj)[0], "module.")
    state = {("model." + k[len("main.") :] if k.startswith("main.") else k): v for k, v in state.items()}
    if "model.0.weight" not in state or "model.12.weight" not in state:
        raise ValueError("not a DCGAN-64 generator: expected model.0.weight ... model.12.weight (or main.*)")
    first = state["model.0.weight"]
    model = DCGAN64Generator(
        latent_dim=first.shape[0], channels=state["model.12.weight"].shape[1], hidden_size=first.shape[1] // 8
    )
    return _load(model, state, "DCGAN-64")


READERS: dict[str, Callable[[Any], nn.Module]] = {
    "PGANGenerator": pgan_from_checkpoint,
    "PGGANGenerator": pggan_from_checkpoint,
    "DCGAN64Generator": dcgan64_from_checkpoint,
}


def detect_architecture(obj: Any) -> str:
    """Which of :data:`CONVERTIBLE` a loaded checkpoint holds, from the keys of its state dict."""
    state, _ = unwrap(obj)
    keys = {str(k).removeprefix("module.") for k in state}
    if any(k.startswith("formatLayer.") for k in keys):
        return "PGANGenerator"
    if "layer0.weight" in keys:
        return "PGGANGenerator"
    if "model.0.weight" in keys or "main.0.weight" in keys:
        return "DCGAN64Generator"
    raise ValueError(
        f"can't tell which architecture this checkpoint holds; pass architecture= one of {CONVERTIBLE} "
        "(or wrap your own generator with feature_unlearning.models.GeneratorAdapter)"
    )


def model_from_checkpoint(path: str | Path, *, architecture: str | None = None) -> nn.Module:
    """Read a pickled checkpoint (see :func:`read_checkpoint`) and return our model with its weights."""
    return read_model(path, architecture=architecture)[0]


def read_model(path: str | Path, *, architecture: str | None = None) -> tuple[nn.Module, str | None]:
    """:func:`model_from_checkpoint`, and the key of the checkpoint the state dict was under (:func:`unwrap`)."""
    if architecture is not None and architecture not in READERS:
        raise ValueError(f"unknown architecture {architecture!r}; convert supports {CONVERTIBLE}")
    obj = read_checkpoint(path)
    key = unwrap(obj)[1] if isinstance(obj, dict) else None
    return READERS[architecture or detect_architecture(obj)](obj), key


# ----------------------------------------------------------------------------------------- sources


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _run_once_online(entry: ModelEntry) -> str:
    size = f" (downloads {entry.source.size})" if entry.source.size else ""
    return (
        f"Once online, run `feature-unlearning convert {entry.name}`{size}: it converts the weights once into "
        f"{cache_root()}, and load_pretrained({entry.name!r}) works offline from then on."
    )


def fetch(entry: ModelEntry | Source, *, cache_dir: str | Path | None = None, token: str | bool | None = None) -> Path:
    """The local path of a registry entry's published checkpoint: the installed package's file, or a
    download (cached; Hub files at the pinned commit, URLs checked by SHA-256 prefix)."""
    source = entry.source if isinstance(entry, ModelEntry) else entry
    name = entry.name if isinstance(entry, ModelEntry) else source.title
    if source.package:
        path = _package_file(source, name)
    elif source.repo_id:
        path = _fetch_hub(entry, source, cache_dir=cache_dir, token=token)
    else:
        path = _fetch_url(entry, source, cache_dir=cache_dir)
    _check_sha256(path, source.sha256_prefix)
    return path


def _package_file(source: Source, name: str) -> Path:
    import importlib.util

    module = source.package_file.split("/", 1)[0]
    spec = importlib.util.find_spec(module)  # finds the package without importing (running) it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"{name} needs the PyPI package {source.package}: pip install {source.package} "
            "(or pip install 'feature-unlearning[app]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))).parent / source.package_file
    if not path.is_file():
        raise ValueError(f"the installed {source.package} has no {source.package_file}; reinstall it")
    return path


def _fetch_hub(entry, source: Source, *, cache_dir, token) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    from .hub import _in_hf_cache, hub_unreachable

    hint = _run_once_online(entry) if isinstance(entry, ModelEntry) else "Download it once, or convert a local file."
    if not _in_hf_cache(source.repo_id, source.filename, source.revision, cache_dir):
        why = hub_unreachable()
        if why:
            raise ValueError(f"can't download {source.origin}: it is not in the local Hugging Face cache and the Hub "
                             f"can't be reached ({why}). {hint}")
    try:
        return Path(
            hf_hub_download(
                source.repo_id, source.filename, revision=source.revision, cache_dir=cache_dir, token=token
            )
        )
    except LocalEntryNotFoundError:
        raise ValueError(
            f"can't download {source.origin}: not in the local Hugging Face cache and the Hub can't be reached "
            f"(offline, or HF_HUB_OFFLINE=1). {hint}"
        ) from None
    except (EntryNotFoundError, HfHubHTTPError) as err:
        raise ValueError(f"can't download {source.origin}: {str(err).splitlines()[0]}") from None


def _fetch_url(entry, source: Source, *, cache_dir) -> Path:
    folder = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"  # shared with torch.hub
    path = folder / source.url.rsplit("/", 1)[1]
    if path.is_file():
        return path
    hint = "Download it elsewhere and pass the file's path."
    if isinstance(entry, ModelEntry):
        hint = _run_once_online(entry)
    if _offline():
        raise ValueError(f"can't download {source.url}: offline (HF_HUB_OFFLINE=1). {hint}")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(source.url, str(path), hash_prefix=source.sha256_prefix, progress=False)
    except OSError as err:  # URLError is an OSError
        raise ValueError(f"can't download {source.url} ({err}). Offline? {hint}") from None
    except RuntimeError as err:  # torch.hub's hash mismatch
        raise ValueError(f"{source.url}: {err}") from None
    return path


def _check_sha256(path: Path, prefix: str | None) -> None:
    if not prefix:
        return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(prefix):
        raise ValueError(
            f"{path} is not the pinned checkpoint (its SHA-256 should start with {prefix}); "
            "delete it (a download) or install the pinned version (a package)"
        )


def card_for(model: nn.Module, *, entry: ModelEntry | None, checkpoint: str, key: str | None = None) -> str:
    """The README.md of a converted model: where the weights come from, their licence and data terms, how
    to load them."""
    from .hub import base_terms, model_card

    source = entry.source if entry is not None else None
    c, h, w = model.image_shape
    load_as = f'"{entry.name}"' if entry is not None else '"path/to/this/folder"'
    usage = (
        f"```python\nimport feature_unlearning as fu\nmodel = fu.load_pretrained({load_as})\n"
        f"images = model.generate(4, seed=0)  # (4, {c}, {h}, {w}) in [-1, 1]\n```"
    )
    origin = source.origin if source else Path(checkpoint).name
    if source is not None and source.package:
        origin += f" {_package_version(source.package)}"
    where = f"the key `{key}` of the checkpoint" if key else "the checkpoint (a bare state dict)"
    sections = {
        "Usage": usage,
        "Source": f"Converted by `feature-unlearning convert` from `{origin}`: the state dict under {where} "
        f"(architecture `{type(model).__name__}`, config `{model.config}`). "
        f"Parameter names follow {source.code if source else 'the original code'}.",
    }
    meta: dict[str, Any] = {"tags": ["feature-unlearning", "gan", "faces"]}
    if entry is not None:
        licence, terms = base_terms(entry.name)
        meta.update(licence)
        sections["License"] = terms
        if entry.base_model:
            meta["base_model"] = entry.base_model
    title = source.title if source else f"{type(model).__name__} converted from {Path(checkpoint).name}"
    summary = source.summary if source else "Converted from a pickled checkpoint with `feature-unlearning convert`."
    return model_card(title=title, summary=summary, metadata=meta, sections=sections)


def _package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def convert(
    source: str | Path,
    out_dir: str | Path | None = None,
    *,
    architecture: str | None = None,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Convert ``source`` (a registry name with a published pickle, see :func:`sources`, or a checkpoint
    file) into the model folder ``out_dir``; a name without ``out_dir`` goes to its folder in the cache
    (what ``load_pretrained(name)`` reads).

    Writes ``config.json``, ``model.safetensors`` and ``README.md`` through
    :func:`feature_unlearning.hub.save_pretrained` (which reloads the folder strictly before keeping it);
    the card names the checkpoint key the weights were read from. Returns the folder;
    ``feature_unlearning.load_pretrained(folder)`` then loads it without unpickling.
    """
    kwargs = dict(architecture=architecture, cache_dir=cache_dir, overwrite=overwrite, token=token)
    return _convert(source, out_dir, **kwargs)[0]


def _convert(source, out_dir, *, architecture=None, cache_dir=None, overwrite=False, token=None):
    from .hub import save_pretrained

    entry = sources().get(str(source))
    if entry is not None:
        if architecture not in (None, entry.source.architecture):
            raise ValueError(f"{entry.name} is a {entry.source.architecture}, not a {architecture}")
        if out_dir is None:
            return converted(entry, cache_dir=cache_dir, token=token, overwrite=overwrite, with_key=True)
        path = fetch(entry, cache_dir=cache_dir, token=token)
        architecture = entry.source.architecture
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"{source!r} is neither a known source ({', '.join(sources())}) nor a checkpoint file")
        if out_dir is None:
            raise ValueError("converting a file needs an output folder (--out DIR)")
    model, key = read_model(path, architecture=architecture)
    card = card_for(model, entry=entry, checkpoint=str(path), key=key)
    return save_pretrained(model, out_dir, card=card, overwrite=overwrite), key


def converted(
    entry: ModelEntry | str,
    *,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    overwrite: bool = False,
    with_key: bool = False,
):
    """The cached model folder of a registry entry with a :class:`~feature_unlearning.hub.Source`:
    ``cache_root()/models/NAME/PIN``. The first call gets the checkpoint (:func:`fetch`), converts it and
    writes the folder atomically; later calls return it at once. ``overwrite=True`` converts again."""
    entry = REGISTRY[entry] if isinstance(entry, str) else entry
    if entry.source is None:
        raise ValueError(f"{entry.name} has no published checkpoint to convert")
    folder = entry.converted_path
    if (folder / WEIGHTS_NAME).is_file() and not overwrite:
        return (folder, None) if with_key else folder
    path = fetch(entry, cache_dir=cache_dir, token=token)
    model, key = read_model(path, architecture=entry.source.architecture)
    card = card_for(model, entry=entry, checkpoint=str(path), key=key)
    from .hub import save_pretrained

    try:
        save_pretrained(model, folder, card=card, overwrite=overwrite)
    except FileExistsError:  # another process converted it meanwhile
        if not (folder / WEIGHTS_NAME).is_file():
            raise
    where = f"under the key {key!r}" if key else "(a bare state dict)"
    print(f"feature-unlearning: converted {entry.name} once from {path} {where} into {folder}", file=sys.stderr)
    return (folder, key) if with_key else folder


# -------------------------------------------------------------------------------------------- CLI


def add_convert_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``convert`` subcommand on an argparse ``subparsers`` object; returns its parser."""
    names = ", ".join(sources())
    p = subparsers.add_parser(
        "convert",
        help="turn a published pickled checkpoint into config.json + model.safetensors",
        description="Get (known names) or read (a file) a pickled checkpoint with torch.load(weights_only=True) "
        "and write a model folder that load_pretrained reads without unpickling. A known name without --out is "
        f"converted into the cache that load_pretrained(name) reads ({cache_root()}). Known names: {names}",
    )
    p.add_argument("source", help=f"a known name ({names}) or a checkpoint file (.pth / .bin / .pt / .tar)")
    p.add_argument("--out", type=Path, default=None, help="the model folder to write (default for a name: the cache)")
    p.add_argument("--arch", choices=CONVERTIBLE, default=None, help="architecture of a file (default: detect)")
    p.add_argument(
        "--cache-dir", type=Path, default=None, help="where downloads go (default: torch.hub's / the HF cache)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder (or the cached copy)")
    p.set_defaults(func=cmd_convert)
    return p


def cmd_convert(args: argparse.Namespace) -> int:
    entry = sources().get(args.source)
    cached = entry is not None and (entry.converted_path / WEIGHTS_NAME).is_file()
    if cached and args.out is None and not args.overwrite:
        print(f"{args.source} is converted already ({entry.converted_path}); load it with "
              f"feature_unlearning.load_pretrained({args.source!r}), or pass --overwrite to convert it again")
        return 0
    out, key = _convert(
        args.source, args.out, architecture=args.arch, cache_dir=args.cache_dir, overwrite=args.overwrite
    )
    print(f"read the state dict {f'under the key {key!r}' if key else '(a bare state dict)'}")
    load_as = args.source if args.out is None else str(out)
    print(f"converted {args.source} to {out}; load it with feature_unlearning.load_pretrained({load_as!r})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m feature_unlearning.convert SOURCE --out DIR`` (the same as ``feature-unlearning convert``)."""
    parser = argparse.ArgumentParser(prog="feature-unlearning")
    sub = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(sub)
    args = parser.parse_args(["convert", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except (ValueError, FileExistsError) as err:
        print(f"feature-unlearning convert: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
