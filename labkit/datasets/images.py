"""Image data that works offline: Fashion-MNIST from Debian's package, scikit-learn's digits.

``load_fashion_mnist`` reads the IDX files that Debian's ``dataset-fashion-mnist`` installs in
/usr/share/datasets/fashion-mnist (or a folder you give). ``load_image_data`` picks it when
present and falls back to scikit-learn's 8x8 digits, saying which one it used.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from labkit.datasets.base import Dataset, DatasetInfo
from labkit.errors import DatasetError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
_INSTALL = ("install Debian's dataset-fashion-mnist package (`sudo apt-get install dataset-fashion-mnist`; "
            "`make test` does it as root) or pass the folder holding the four IDX files")


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped): magic, dimensions, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path} holds {data.size} values, its header says {dims}")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).exists():
            return folder / name
    raise DatasetError(f"{folder} has no {stem}(.gz): {_INSTALL}")


def load_fashion_mnist(folder: str | os.PathLike | None = None, split: str = "train",
                       limit: int | None = None) -> Dataset:
    """Fashion-MNIST: x uint8 (n, 28, 28), y int64 class indices; ``split`` is "train" or "test"."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', not {split!r}")
    folder = Path(folder) if folder is not None else FASHION_MNIST_DIR
    if not folder.is_dir():
        raise DatasetError(f"Fashion-MNIST not found in {folder}: {_INSTALL}")
    prefix = "train" if split == "train" else "t10k"
    x = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    y = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if len(x) != len(y):
        raise DatasetError(f"{folder}: {len(x)} images but {len(y)} labels")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    info = DatasetInfo(name="fashion_mnist", task="classification", class_names=FASHION_CLASSES,
                       description=f"Fashion-MNIST {split} split, 28x28 grey images of clothing (Zalando, MIT licence).",
                       source=str(folder))
    return Dataset(x, y, info)


def fashion_mnist_available(folder: str | os.PathLike | None = None) -> bool:
    folder = Path(folder) if folder is not None else FASHION_MNIST_DIR
    return (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists()


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: x uint8 (1797, 8, 8) scaled to 0..255, y int64."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)
    info = DatasetInfo(name="digits", task="classification", class_names=tuple(str(i) for i in range(10)),
                       description="scikit-learn's 8x8 handwritten digits (UCI), scaled to 0..255.",
                       source="sklearn.datasets.load_digits")
    return Dataset(x, d.target.astype(np.int64), info)


def load_image_data(train_limit: int | None = None, test_limit: int | None = None) -> tuple[Dataset, Dataset]:
    """(train, test): Fashion-MNIST when installed, else scikit-learn's digits split 80/20.

    ``info.name`` says which one it is, so a lesson can print it.
    """
    if fashion_mnist_available():
        return load_fashion_mnist(split="train", limit=train_limit), load_fashion_mnist(split="test", limit=test_limit)
    return load_digits().split(test_size=0.2, seed=0)
