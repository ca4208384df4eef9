"""Turn published, pickled face-GAN checkpoints into model folders that ``load_pretrained`` reads.

    feature-unlearning convert pgan-celebahq-512 --out models/pgan-celebahq-512
    feature-unlearning convert path/to/checkpoint.pth --out models/mine      # architecture detected

A model folder is ``config.json`` + ``model.safetensors`` + ``README.md``; loading one never unpickles.
**This module is the only place in feature-unlearning that reads a pickle**, and it does so with
``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which rebuilds tensors, containers and
plain values but refuses to import or call anything else. pytorch_GAN_zoo's checkpoints also hold a
pickled ``BaseConfig`` object; it is rebuilt as :class:`PickledConfig`, an inert attribute bag (no code
of that project is imported or run). Convert files you trust: weights_only limits what a pickle can
do, but it is still the least safe step of the workflow, which is why it happens once, here.

Known sources (:data:`SOURCES`) are downloaded at a pinned commit or checked against the SHA-256 prefix
that torch.hub uses; any other file in one of the three layouts converts too (``architecture=None``
detects it from the parameter names).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .models import DCGAN64Generator, PGANGenerator, PGGANGenerator

CONVERTIBLE = ("PGANGenerator", "PGGANGenerator", "DCGAN64Generator")
GAN_ZOO = "https://github.com/facebookresearch/pytorch_GAN_zoo"
CELEBA_TERMS = (
    "The training images (CelebA / CelebA-HQ) are for non-commercial research only "
    "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)."
)


@dataclass(frozen=True)
class Source:
    """Where a published checkpoint lives: a direct URL (checked by SHA-256 prefix) or a Hub file at a commit."""

    name: str  # the registry name of the converted model
    architecture: str
    title: str
    summary: str
    license: str
    url: str | None = None
    sha256_prefix: str | None = None  # torch.hub's convention: the hex digits after the last "-" of the file name
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    code: str = GAN_ZOO

    @property
    def origin(self) -> str:
        if self.url:
            return self.url
        return f"https://huggingface.co/{self.repo_id}/blob/{self.revision}/{self.filename}"


def _gan_zoo(name: str, url: str, side: int, data: str) -> Source:
    return Source(
        name=name,
        architecture="PGANGenerator",
        title=f"Progressive GAN, {data}, {side}x{side} (pytorch_GAN_zoo)",
        summary=f"The torch.hub `PGAN` generator of facebookresearch/pytorch_GAN_zoo trained on {data} "
        f"({side}x{side}, latent 512), converted to safetensors for feature-unlearning (the smoothed "
        "generator `avgG`, which torch.hub's `model.test(getAvG=True)` uses).",
        license="bsd-3-clause",
        url=url,
        sha256_prefix=url.rsplit("-", 1)[1].split(".")[0],
    )


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        _gan_zoo(
            "pgan-celebahq-256",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth",
            256,
            "CelebA-HQ",
        ),
        _gan_zoo(
            "pgan-celebahq-512",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ16_december_s7_i96000-9c72988c.pth",
            512,
            "CelebA-HQ",
        ),
        _gan_zoo(
            "pgan-celeba-128",
            "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaCropped_s5_i83000-2b0acc76.pth",
            128,
            "CelebA (cropped)",
        ),
        Source(
            name="pggan-celebahq-1024",
            architecture="PGGANGenerator",
            title="Progressive GAN, CelebA-HQ, 1024x1024 (Karras et al., via genforce and HugGAN)",
            summary="NVIDIA's official Progressive GAN for CelebA-HQ 1024x1024 (latent 512), converted to "
            "PyTorch by genforce/sefa and uploaded to the Hub as huggan/pggan-celebahq-1024; converted "
            "again to safetensors for feature-unlearning. NVIDIA released the original weights under "
            "CC BY-NC 4.0 (the Hub repo is labelled apache-2.0).",
            license="cc-by-nc-4.0",
            repo_id="huggan/pggan-celebahq-1024",
            filename="pytorch_model.bin",
            revision="278449f8416d38a0233c980774528d32c4eee99c",  # the commit that added pytorch_model.bin
            code="https://github.com/genforce/sefa",
        ),
    )
}


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


def _tensors(state: Any, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where} is not a state dict (a mapping of names to tensors)")
    return {str(k): v for k, v in state.items()}


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
    if isinstance(obj, dict) and ("avgG" in obj or "netG" in obj):
        config = obj.get("config") or config
        if isinstance(config, dict):
            config = _as_config(config)
        state = _tensors(obj["avgG"] if "avgG" in obj else obj["netG"], "the checkpoint's avgG/netG")
    else:
        state = _tensors(obj, "the checkpoint")
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
    if isinstance(obj, dict) and ("generator_smooth" in obj or "generator" in obj):
        obj = obj.get("generator_smooth", obj.get("generator"))
    state = _strip_prefix(_tensors(obj, "the checkpoint"), "module.")
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
    state = _strip_prefix(_tensors(obj, "the checkpoint"), "module.")
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
    """Which of :data:`CONVERTIBLE` a loaded checkpoint holds, from its keys."""
    if isinstance(obj, dict):
        if "avgG" in obj or "netG" in obj:
            return "PGANGenerator"
        if "generator_smooth" in obj or "generator" in obj:
            return "PGGANGenerator"
        keys = {str(k).removeprefix("module.") for k in obj}
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
    if architecture is not None and architecture not in READERS:
        raise ValueError(f"unknown architecture {architecture!r}; convert supports {CONVERTIBLE}")
    obj = read_checkpoint(path)
    return READERS[architecture or detect_architecture(obj)](obj)


# ----------------------------------------------------------------------------------------- sources


def fetch(source: Source, *, cache_dir: str | Path | None = None) -> Path:
    """The local path of ``source``'s checkpoint, downloaded (and hash-checked) unless already cached."""
    if source.repo_id:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(source.repo_id, source.filename, revision=source.revision, cache_dir=cache_dir))
        except LocalEntryNotFoundError:
            raise ValueError(
                f"can't download {source.origin}: not in the local Hugging Face cache and the Hub can't be reached "
                "(offline, or HF_HUB_OFFLINE=1). Download it once, or pass the file's path instead of the name."
            ) from None
        except (EntryNotFoundError, HfHubHTTPError) as err:
            raise ValueError(f"can't download {source.origin}: {str(err).splitlines()[0]}") from None
    folder = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"  # shared with torch.hub
    path = folder / source.url.rsplit("/", 1)[1]
    if path.is_file():
        _check_sha256(path, source.sha256_prefix)
        return path
    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(source.url, str(path), hash_prefix=source.sha256_prefix)
    except OSError as err:  # URLError is an OSError
        raise ValueError(
            f"can't download {source.url} ({err}). Offline? Download it elsewhere and pass the file's path."
        ) from None
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
            f"{path} does not match the published checkpoint (SHA-256 should start with {prefix}); delete it"
        )


def card_for(model: nn.Module, *, source: Source | None, checkpoint: str) -> str:
    """The README.md of a converted model: where the weights come from, their license, how to load them."""
    from .hub import model_card

    c, h, w = model.image_shape
    usage = (
        '```python\nimport feature_unlearning as fu\nmodel = fu.load_pretrained("path/to/this/folder")\n'
        f"images = model.generate(4, seed=0)  # (4, {c}, {h}, {w}) in [-1, 1]\n```"
    )
    origin = source.origin if source else Path(checkpoint).name
    sections = {
        "Usage": usage,
        "Source": f"Converted by `feature-unlearning convert` from `{origin}` "
        f"(architecture `{type(model).__name__}`, config `{model.config}`). "
        f"Parameter names follow {source.code if source else 'the original code'}. {CELEBA_TERMS if source else ''}",
    }
    meta: dict[str, Any] = {"tags": ["feature-unlearning", "gan", "faces"]}
    if source is not None:
        meta["license"] = source.license
        if source.repo_id:
            meta["base_model"] = source.repo_id
    title = source.title if source else f"{type(model).__name__} converted from {Path(checkpoint).name}"
    summary = source.summary if source else "Converted from a pickled checkpoint with `feature-unlearning convert`."
    return model_card(title=title, summary=summary, metadata=meta, sections=sections)


def convert(
    source: str | Path,
    out_dir: str | Path,
    *,
    architecture: str | None = None,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert ``source`` (a name in :data:`SOURCES` or a checkpoint file) into the model folder ``out_dir``.

    Writes ``config.json``, ``model.safetensors`` and ``README.md`` through
    :func:`feature_unlearning.hub.save_pretrained` (which reloads the folder strictly before keeping it).
    Returns the folder; ``feature_unlearning.load_pretrained(folder)`` then loads it without unpickling.
    """
    from .hub import save_pretrained

    known = SOURCES.get(str(source))
    if known is not None:
        if architecture not in (None, known.architecture):
            raise ValueError(f"{known.name} is a {known.architecture}, not a {architecture}")
        path = fetch(known, cache_dir=cache_dir)
        architecture = known.architecture
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"{source!r} is neither a known source ({', '.join(SOURCES)}) nor a checkpoint file")
    model = model_from_checkpoint(path, architecture=architecture)
    card = card_for(model, source=known, checkpoint=str(path))
    return save_pretrained(model, out_dir, card=card, overwrite=overwrite)


# -------------------------------------------------------------------------------------------- CLI


def add_convert_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``convert`` subcommand on an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser(
        "convert",
        help="turn a published pickled checkpoint into config.json + model.safetensors",
        description="Download (known names) or read (a file) a pickled checkpoint with torch.load(weights_only=True) "
        "and write a model folder that load_pretrained reads without unpickling. Known names: " + ", ".join(SOURCES),
    )
    p.add_argument("source", help=f"a known name ({', '.join(SOURCES)}) or a checkpoint file (.pth / .bin / .pt)")
    p.add_argument("--out", type=Path, required=True, help="the model folder to write")
    p.add_argument("--arch", choices=CONVERTIBLE, default=None, help="architecture of a file (default: detect)")
    p.add_argument(
        "--cache-dir", type=Path, default=None, help="where downloads go (default: torch.hub's / the HF cache)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=cmd_convert)
    return p


def cmd_convert(args: argparse.Namespace) -> int:
    out = convert(args.source, args.out, architecture=args.arch, cache_dir=args.cache_dir, overwrite=args.overwrite)
    print(f"converted {args.source} to {out}; load it with feature_unlearning.load_pretrained({str(out)!r})")
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
