"""Weights and labelled images the user supplies by path: how a torchvision model gets a real top-1.

Nothing is downloaded. Weights are a `state_dict` file (`torch.save`, loaded with `weights_only=True`, so no
arbitrary object is unpickled). Images are a folder with one sub-folder per class (torchvision's `ImageFolder`
layout): class index = position of the folder name in sorted order, which is how ImageNet's synset folders map
to the 1000 outputs of torchvision's classifiers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError

__all__ = [
    "FolderSplit",
    "ImageDecodeError",
    "check_folder",
    "load_weights",
    "file_digest",
    "folder_digest",
    "open_folder",
]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
# torchvision's ImageNet preprocessing: resize to 256/224 of the input side, centre crop, normalize.
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def file_digest(path: Path) -> str:
    """A digest of a file's bytes: cells measured with other weights are other cells."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def folder_digest(path: Path) -> str:
    """A digest of an image folder's listing (relative names and sizes), cheap even for ImageNet's 50k files."""
    sha = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        sha.update(f"{file.relative_to(path)}:{file.stat().st_size}\n".encode())
    return sha.hexdigest()[:16]


def load_weights(model: nn.Module, path: Path, model_name: str) -> nn.Module:
    """Load a state dict (or a checkpoint holding one under "state_dict") into `model`.

    Raises:
        BenchError: the file is not a weights-only checkpoint or does not fit the architecture.
    """
    if path.stat().st_size == 0:
        raise BenchError(f"--weights {model_name}: {path} is empty (expected a state_dict saved by torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user error
        raise BenchError(f"--weights {model_name}: cannot read {path} as a state_dict: {_first_line(error)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"--weights {model_name}: {path} holds no state_dict of tensors")
    own = model.state_dict()
    problems = {
        "missing": [key for key in own if key not in state],
        "unexpected": [key for key in state if key not in own],
        "of another shape": [key for key in own if key in state and state[key].shape != own[key].shape],
        "quantized or sparse": [key for key in own if key in state and _plain(own[key]) and not _plain(state[key])],
    }
    found = [f"{len(keys)} {kind} (e.g. {keys[0]})" for kind, keys in problems.items() if keys]
    if found:
        raise BenchError(f"--weights {model_name}: {path} does not fit {model_name}: keys {', '.join(found)}")
    # NaN or inf weights load, run and give a top-1 of chance: a number that means nothing.
    infinite = next(
        (key for key, tensor in state.items() if tensor.is_floating_point() and not bool(tensor.isfinite().all())), None
    )
    if infinite is not None:
        raise BenchError(f"--weights {model_name}: {path} holds nan or inf values (e.g. in {infinite})")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # whatever else torch refuses to copy; it lists each failure under a heading
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise BenchError(
            f"--weights {model_name}: {path} does not load into {model_name}: {lines[-1].strip()}"
        ) from None
    return model.eval()


def _plain(tensor: torch.Tensor) -> bool:
    """A dense, unquantized tensor: what a float model's parameters are and what can be copied into them."""
    return tensor.layout == torch.strided and not tensor.is_quantized


@dataclass(frozen=True)
class FolderSplit:
    """A labelled image folder, decoded batch by batch (an ImageNet val set does not fit in memory as one tensor)."""

    root: Path
    side: int
    channels: int

    def _dataset(self):
        from torchvision import datasets, transforms

        steps = [transforms.Resize(round(self.side * 256 / 224)), transforms.CenterCrop(self.side)]
        if self.channels == 1:
            steps += [transforms.Grayscale(), transforms.ToTensor()]
        else:
            steps += [transforms.ToTensor(), transforms.Normalize(_MEAN, _STD)]
        mode = "L" if self.channels == 1 else "RGB"
        return datasets.ImageFolder(
            str(self.root), transform=transforms.Compose(steps), loader=lambda p: _open_image(p, mode)
        )

    def __len__(self) -> int:
        return len(self._dataset())

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(self._dataset(), batch_size=batch_size, shuffle=False)
        yield from loader


class ImageDecodeError(ValueError):
    """An image of a user's folder that cannot be decoded, found while evaluating: its cell fails, naming the file."""


def _open_image(path: str, mode: str):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except Exception as error:  # noqa: BLE001 - PIL reports a bad file as OSError, SyntaxError, struct.error, ...
        raise ImageDecodeError(f"cannot decode image {path}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def open_folder(path: Path, input_shape: tuple[int, int, int], model_name: str) -> FolderSplit:
    """Check that `path` is an image folder with class sub-folders and wrap it for evaluation.

    Raises:
        BenchError: missing folder, no class sub-folders, or no images.
    """
    if not path.is_dir():
        raise BenchError(f"--data {model_name}: no such folder: {path}")
    classes = [entry for entry in path.iterdir() if entry.is_dir()]
    if not classes:
        raise BenchError(f"--data {model_name}: {path} has no class sub-folders (expected ROOT/CLASS/IMAGE)")
    if not any(p.suffix.lower() in _IMAGE_SUFFIXES for c in classes for p in c.iterdir()):
        raise BenchError(f"--data {model_name}: no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) under {path}")
    channels, side, _ = input_shape
    return FolderSplit(path, side, channels)


def check_folder(path: Path, input_shape: tuple[int, int, int], model_name: str, model: nn.Module) -> None:
    """Check, before a run, that evaluation can read every image of `path` and that its labels mean something.

    The listing is torchvision's own (`find_classes`, `make_dataset`), so the files checked are those
    `ImageFolder` will read. Each file's header is parsed (`PIL.Image.open` identifies the format and the size
    without decoding a pixel): an empty file or one that is no image costs a stat and a few kilobytes, so an
    ImageNet validation set of 50,000 files is checked in seconds, where decoding it all (or `verify()`, which
    reads every PNG chunk) would take minutes. A file truncated after a valid header is found only when decoded;
    then its cell fails with an `ImageDecodeError` naming it.

    Raises:
        BenchError: the folder is not ROOT/CLASS/IMAGE, a class has no images, an image is empty or not an image,
            or the number of classes is not the model's number of outputs.
    """
    from PIL import Image
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    open_folder(path, input_shape, model_name)
    classes, class_to_idx = find_classes(path)
    outputs = _output_count(model, input_shape)
    if len(classes) != outputs:
        raise BenchError(
            f"--data {model_name}: {path} has {len(classes)} class folders but {model_name} has {outputs} outputs"
            " (one class folder per output, in sorted order)"
        )
    try:
        samples = make_dataset(path, class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as error:
        raise BenchError(f"--data {model_name}: {_first_line(error)}") from None
    for file, _label in samples:
        if os.stat(file).st_size == 0:
            raise BenchError(f"--data {model_name}: {file} is empty (expected an image)")
        try:
            with Image.open(file):
                pass
        except Exception as error:  # noqa: BLE001 - PIL reports a bad header as OSError, SyntaxError, struct.error, ...
            raise BenchError(f"--data {model_name}: {file} is not a readable image: {_first_line(error)}") from None


@torch.inference_mode()
def _output_count(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """The model's number of outputs, from one forward pass: the classifier's head has no common name."""
    return int(model.eval()(torch.zeros(1, *input_shape)).shape[-1])
