"""Offline image data: Debian's Fashion-MNIST (installed by `make test`) and the digits fallback."""

import gzip

import numpy as np
import pytest

from labkit.datasets import fashion_mnist_available, load_digits, load_fashion_mnist, load_image_data
from labkit.errors import DatasetError


def test_fashion_mnist_is_installed_and_reads():
    assert fashion_mnist_available(), "make test installs dataset-fashion-mnist; without it lessons fall back to digits"
    train = load_fashion_mnist(split="train", limit=500)
    test = load_fashion_mnist(split="test")
    assert train.x.shape == (500, 28, 28) and train.x.dtype == np.uint8
    assert test.x.shape == (10000, 28, 28) and len(test.y) == 10000
    assert set(np.unique(test.y)) == set(range(10))  # all ten classes, 1000 each in the test split
    assert np.bincount(test.y).tolist() == [1000] * 10
    assert train.info.class_names[9] == "Ankle boot"


def test_idx_reader_on_a_file_it_writes(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in imgs.shape)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + imgs.tobytes()))
    labels = np.array([3, 7], np.uint8)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + labels.tobytes())
    ds = load_fashion_mnist(tmp_path)
    assert np.array_equal(ds.x, imgs) and ds.y.tolist() == [3, 7]


def test_broken_and_missing_files_are_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03garbage")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DatasetError, match="not an IDX file"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(DatasetError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_digits_fallback():
    d = load_digits()
    assert d.x.shape == (1797, 8, 8) and d.x.max() == 255
    train, test = load_image_data(train_limit=100, test_limit=50)
    assert train.info.name == "fashion_mnist" and len(train) == 100 and len(test) == 50
