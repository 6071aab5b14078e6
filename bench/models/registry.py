"""Reference models, by name.

ImageNet-scale torchvision architectures are measured for size and latency with their real shapes; their
accuracy needs weights and data the user supplies, so without them it is reported as "n/a (no weights)". The
small CNNs are trained by the suite itself on a bundled data set (see `bench.models.training`), which gives a real
top-1 on a real held-out set, offline.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from bench.errors import unknown_name

__all__ = ["TrainRecipe", "ModelSpec", "register_model", "model_names", "resolve_model", "list_models"]


@dataclass(frozen=True)
class TrainRecipe:
    """How the suite trains a reference model; part of the cache key of the trained weights."""

    epochs: int
    batch_size: int
    lr: float
    seed: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """A buildable architecture and what the suite knows about it.

    Attributes:
        name: registry name, as it appears in configs, records and reports.
        build: returns a freshly initialised model (seeded, so sizes and encodings are reproducible).
        input_shape: one sample's shape (C, H, W); the batch is an axis of the matrix.
        dataset: bundled data set the suite trains it on, or None when accuracy needs user weights.
        recipe: training recipe when `dataset` is set.
        source: "suite" for the registry, "torchvision" for a name resolved from torchvision.
    """

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]
    dataset: str | None = None
    recipe: TrainRecipe | None = None
    source: str = "suite"


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    input_shape: tuple[int, int, int],
    dataset: str | None = None,
    recipe: TrainRecipe | None = None,
) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a builder under `name`; registering a name twice is a programming error."""

    def decorator(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is already registered")
        _REGISTRY[name] = ModelSpec(name, build, input_shape, dataset, recipe)
        return build

    return decorator


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return torchvision.models.get_model(name, weights=None)

    return build


for _name in ("resnet18", "mobilenet_v2", "vgg16"):
    register_model(_name, input_shape=(3, 224, 224))(_torchvision(_name))


@register_model(
    "mnist_cnn", input_shape=(1, 28, 28), dataset="mnist", recipe=TrainRecipe(epochs=1, batch_size=64, lr=1e-3)
)
def mnist_cnn() -> nn.Module:
    """Two 3x3 conv blocks and two linear layers: ~99% top-1 on MNIST after one epoch."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


@register_model(
    "digits_cnn", input_shape=(1, 8, 8), dataset="digits", recipe=TrainRecipe(epochs=15, batch_size=32, lr=2e-3)
)
def digits_cnn() -> nn.Module:
    """A seconds-to-train CNN on scikit-learn's 8x8 digits: the accuracy path at test speed."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )  # fmt: skip


_RESNET18_WIDTH = 32


def _resnet18_layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """Two of torchvision's BasicBlocks, the first projecting the shortcut where shape changes (as resnet18 does)."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


@register_model(
    "mnist_resnet18", input_shape=(1, 28, 28), dataset="mnist", recipe=TrainRecipe(epochs=1, batch_size=64, lr=1e-3)
)
def mnist_resnet18() -> nn.Module:
    """resnet18's topology (torchvision's ResNet: 7x7 stem, max-pool, four stages of two BasicBlocks, pooled linear
    head) at half width (32-64-128-256 channels), one input channel, 10 classes: a residual network with stages an
    early exit can follow, trained on MNIST. Half width because full width (64-512) took 0.56 s per training step
    at batch 64 on a shared 2-core CPU (9 minutes an epoch), half width 0.16 s (2.5 minutes)."""
    torch.manual_seed(0)
    width = _RESNET18_WIDTH
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.layer1 = _resnet18_layer(width, width, 1)
    model.layer2 = _resnet18_layer(width, 2 * width, 2)
    model.layer3 = _resnet18_layer(2 * width, 4 * width, 2)
    model.layer4 = _resnet18_layer(4 * width, 8 * width, 2)
    model.fc = nn.Linear(8 * width, 10)
    for module in model.modules():  # torchvision's own initialization, for the replaced layers too
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)
    return model


def _torchvision_classifiers() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def model_names() -> list[str]:
    """Names of the registered reference models."""
    return sorted(_REGISTRY)


def list_models(pattern: str = "*") -> list[ModelSpec]:
    """Registered models whose name matches the fnmatch `pattern`."""
    return [_REGISTRY[name] for name in model_names() if fnmatch.fnmatch(name, pattern)]


def resolve_model(name: str) -> ModelSpec:
    """Look a model up in the registry, then among torchvision's classification architectures.

    Raises:
        BenchError: the name is neither registered nor a torchvision classification model.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _torchvision_classifiers():
        side = 299 if name == "inception_v3" else 224
        return ModelSpec(name, _torchvision(name), (3, side, side), source="torchvision")
    raise unknown_name("model", name, _REGISTRY, also="or any torchvision classification model name")
