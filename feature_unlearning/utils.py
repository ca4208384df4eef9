"""Small helpers shared by the library: seeding, progress bars, whole-or-nothing file writes."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import torch

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's and torch's global generators and return a fresh CPU ``torch.Generator``."""
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> str:
    """``"cuda"`` when a GPU is there, else ``"cpu"``: what the front ends (CLI, app) run on by default.
    The library itself never picks a device: it runs where the caller's model is."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, disable: bool | None = None) -> Iterable[T]:
    """A tqdm progress bar, off when ``FEATURE_UNLEARNING_PROGRESS=0`` or ``disable=True``."""
    if disable is None:
        disable = os.environ.get("FEATURE_UNLEARNING_PROGRESS", "1") == "0"
    if disable:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename.

    If the block raises, ``target`` is left exactly as it was and the temporary folder is removed. An
    existing non-empty ``target`` raises ``FileExistsError`` unless ``overwrite=True``.
    """
    target = Path(target).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; choose a new folder or pass overwrite=True")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should look like a normal folder
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def machine_info() -> str:
    """One line naming this machine: CPU model and cores (or the GPU), torch version and threads."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return "; ".join(parts)
