"""Finished examples: unlearned models made once, with their feature and numbers, that open in a second.

    from feature_unlearning import examples
    examples.status()                                 # which examples exist and whether each is ready here
    ex = examples.load("mnist-dcgan-without-thick")   # model, feature, unlearned result, measured comparison
    examples.build("digiface-dcgan64-without-glasses")  # make one (minutes on a CPU), into the cache

    feature-unlearning examples                        # the same from the shell: list
    feature-unlearning examples --build all            # make the ones that are missing here

An example is exactly what the app's default run makes (the feature found the app's way, the feature's default
:class:`~feature_unlearning.unlearn.UnlearnConfig`, compared on the app's 2,000 fresh latents), saved as a model
folder (``config.json``, ``model.safetensors``, the card) plus ``example.json`` (the recipe, the training
history, the comparison, where and how long it ran) and ``feature.safetensors`` (the direction and the labelled
latents it came from). The digit examples ship inside the package; the face example is derived from the
DigiFace generator, whose terms allow non-commercial research only, so it is built into the user's cache
(:func:`feature_unlearning.hub.cache_root`) and never committed. Each example records the SHA-256 of the base
model's weights: one made from other weights than those installed is refused as stale, with the command to
rebuild it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .hub import PRETRAINED_DIR, cache_root, load_folder, load_pretrained
from .utils import atomic_directory, machine_info

EXAMPLE_FILE = "example.json"
FEATURE_FILE = "feature.safetensors"
BUNDLED_DIR = PRETRAINED_DIR / "examples"
COLLECT_N, COLLECT_SEED = 4000, 10_000  # as the app: Workspace.find_feature(n=4000) with seed 0 + 10,000
COMPARE_N, COMPARE_SEED = 2000, 1  # as the app's Compare

#: The glasses clicks: three pages of 32 faces of ``sample_latent(96, seed=7)``, marked by eye (the same file as
#: ``tests/data/digiface_clicks_glasses.json``, which benchmarks/faces.py measures).
GLASSES_CLICKS = {"seed": 7, "n": 96, "indices": [9, 15, 23, 30, 33, 41, 51, 52, 64, 65, 90]}

@dataclass(frozen=True)
class Example:
    """One finished example: ``model`` (a registry name) without ``feature``."""

    name: str
    title: str  # what a user sees, e.g. "Digits without thick strokes"
    model: str
    feature: str | dict  # an oracle's short name ("thick", "digit:8") or shown samples {"seed", "n", "indices"}
    feature_name: str  # what the feature is called (the card's "without ...")
    config: dict = field(default_factory=dict)  # UnlearnConfig fields beyond the model's defaults (hub.unlearn_defaults)
    bundled: bool = True  # ships in the package (else: built into the user's cache)
    minutes: float = 1.0  # about how long a build takes on 2 CPU cores (what the app and the CLI quote)

    @property
    def folder(self) -> Path:
        return (BUNDLED_DIR if self.bundled else cache_root() / "examples") / self.name

    def build_command(self) -> str:
        return f"feature-unlearning examples --build {self.name}"


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example("mnist-dcgan-without-thick", "Digits without thick strokes", "mnist-dcgan", "thick", "thick"),
        Example("mnist-dcgan-without-8", "Digits without the 8", "mnist-dcgan", "digit:8", "digit:8"),
        Example("digiface-dcgan64-without-glasses", "Faces without glasses", "digiface-dcgan64", GLASSES_CLICKS,
                "glasses", bundled=False, minutes=6.0),
    )
}


@dataclass
class LoadedExample:
    """A finished example, opened: the base model, the feature, the run's result (its ``comparison`` is the one
    measured when the example was built) and ``info`` (the rest of ``example.json``)."""

    example: Example
    model: nn.Module
    feature: object  # feature_unlearning.feature.Feature
    result: object  # feature_unlearning.result.UnlearnResult
    preview_z: torch.Tensor
    preview_marked: list[int]
    info: dict


def get(name: str) -> Example:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise ValueError(f"no example {name!r}; there are {', '.join(EXAMPLES)}") from None


def weights_sha256(model_name: str) -> str:
    """SHA-256 of the weights file that ``load_pretrained(model_name)`` reads (without loading it)."""
    from .hub import REGISTRY

    entry = REGISTRY[model_name]
    if entry.bundled and entry.bundled_path.is_dir():
        folder = entry.bundled_path
    else:
        from .convert import converted

        folder = converted(entry)
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def status() -> list[tuple[Example, str]]:
    """Each example and one word on it here: ``"ready"``, ``"missing"`` (build it) or ``"stale"`` (made from other
    base weights than those installed: rebuild it) or ``"unavailable"`` (its base model can't be loaded here)."""
    out = []
    for ex in EXAMPLES.values():
        out.append((ex, _state(ex)[0]))
    return out


def _state(ex: Example) -> tuple[str, dict | None]:
    path = ex.folder / EXAMPLE_FILE
    if not path.is_file():
        return "missing", None
    info = json.loads(path.read_text(encoding="utf-8"))
    try:
        sha = weights_sha256(ex.model)
    except ValueError:
        return "unavailable", info
    return ("ready" if info.get("base_sha256") == sha else "stale"), info


def _feature(ex: Example, model: nn.Module):
    from .feature import Feature

    if isinstance(ex.feature, dict):
        return Feature.from_shown(model, seed=ex.feature["seed"], n=ex.feature["n"], indices=ex.feature["indices"],
                                  name=ex.feature_name)
    return Feature.from_oracle(model, ex.feature, n=COLLECT_N, seed=COLLECT_SEED)


def build(name: str, *, log=print) -> Path:
    """Make the example ``name`` the way the app's default run would, and write it (whole or not at all) into
    its folder, replacing an older one. Returns the folder."""
    from .session import Workspace

    ex = get(name)
    _check_writable(ex)  # before minutes of work, not after
    started = time.perf_counter()
    model = load_pretrained(ex.model)
    feature = _feature(ex, model)
    config = feature.default_config(model=ex.model, **ex.config)  # as Workspace.config()
    log(f"{ex.name}: unlearning {ex.feature_name} from {ex.model}, {config.steps} steps of {config.batch_size}")
    result = feature.unlearn(model, config, base_model=ex.model, progress_bar=True)
    preview_z, preview_marked = Workspace._pick_preview(feature)
    from .session import compare_result

    report = compare_result(result, n=COMPARE_N, seed=COMPARE_SEED)  # as the app's Compare
    info = {
        "example": ex.name,
        "title": ex.title,
        "base_model": ex.model,
        "base_sha256": weights_sha256(ex.model),
        "feature": ex.feature,
        "feature_stats": feature.stats,
        "feature_note": feature.note,
        "threshold": feature.threshold,
        "config": dataclasses.asdict(config),
        "history": result.history.asdict(),
        "comparison": report,
        "preview_marked": preview_marked,
        "made": {"date": datetime.date.today().isoformat(), "machine": machine_info(),
                 "unlearn_seconds": result.history.seconds, "total_seconds": time.perf_counter() - started,
                 "command": ex.build_command()},
    }
    from safetensors.torch import save_file

    with atomic_directory(ex.folder, overwrite=True) as tmp:
        result.unlearned.save_pretrained(tmp)
        (tmp / "README.md").write_text(result.card(), encoding="utf-8")
        c = feature.collection
        save_file({"direction": feature.direction.contiguous(), "z": c.z.contiguous(), "scores": c.scores.float().contiguous(),
                   "labels": c.labels.to(torch.uint8).contiguous(), "preview_z": preview_z.contiguous()},
                  str(tmp / FEATURE_FILE))
        (tmp / EXAMPLE_FILE).write_text(json.dumps(info, indent=1, default=_jsonable), encoding="utf-8")
        load_folder(tmp)  # never leave a folder that would not load back
    log(f"{ex.name}: wrote {ex.folder} ({time.perf_counter() - started:.0f} s)")
    return ex.folder


def _check_writable(ex: Example) -> None:
    parent = ex.folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the nearest folder that exists is where the new ones will be made
    if not os.access(parent, os.W_OK):
        where = "the installed package" if ex.bundled else "the cache"
        raise PermissionError(
            f"cannot write the example {ex.name!r} into {ex.folder}: {parent} is not writable ({where}; "
            "for a bundled example use an editable install of the source: pip install -e .)")


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _click_probe(ex: Example, model: nn.Module):
    """The probe the example's clicks trained (on the model's image feature extractor), without relabelling."""
    from .feature import Feature
    from .hub import extractor_for
    from .models.base import render

    spec = ex.feature
    z = model.sample_latent(int(spec["n"]), seed=int(spec["seed"]), device="cpu")
    extractor = load_pretrained(extractor_for(model))
    return Feature.from_selection(z, render(model, z).cpu(), spec["indices"], feature_extractor=extractor,
                                  name=ex.feature_name).oracle


def load(name: str) -> LoadedExample:
    """Open the example ``name``: no training, no sampling beyond its own latents. ``ValueError`` says what
    to run when it is missing here or was made from other base weights."""
    from safetensors.torch import load_file

    from .oracles import Collection, get_oracle
    from .result import UnlearnResult
    from .unlearn import History

    ex = get(name)
    state, info = _state(ex)
    if state == "missing":
        raise ValueError(f"the example {ex.name} is not made on this machine yet: run `{ex.build_command()}` once "
                         f"(about {ex.minutes:g} min on 2 CPU cores)")
    if state == "stale":
        raise ValueError(f"the example {ex.name} was made from other {ex.model} weights than those installed: "
                         f"run `{ex.build_command()}` to remake it")
    if state == "unavailable":
        raise ValueError(f"the example {ex.name} needs {ex.model}, which can't be loaded here")
    model = load_pretrained(ex.model)
    unlearned = load_folder(ex.folder)
    unlearned.name_or_path = ex.name
    tensors = load_file(str(ex.folder / FEATURE_FILE))
    from .feature import Feature

    if isinstance(ex.feature, dict):  # the probe, fitted on the clicks again (deterministic, about a second)
        oracle = _click_probe(ex, model)
    else:
        oracle = get_oracle(ex.feature)
    collection = Collection(tensors["z"], None, tensors["scores"], tensors["labels"].bool())  # images not kept
    feature = Feature(oracle, collection, tensors["direction"], float(info["threshold"]),
                      rule=info["feature_stats"].get("rule", "mean"), stats=info["feature_stats"],
                      note=info.get("feature_note", ""))
    history = History(**info["history"])
    result = UnlearnResult(model, unlearned, history, feature, comparison=info["comparison"], base_model=ex.model)
    return LoadedExample(ex, model, feature, result, tensors["preview_z"], list(info["preview_marked"]), info)
