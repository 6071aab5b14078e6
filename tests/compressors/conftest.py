"""Tiny models shared by the compressor tests."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from compressors._exits import MultiExit

# torch warns once per process that CSR tensors are built without invariant checks; the CSR modules do that
# on purpose (the indices come from to_csr), so tests that run them ignore it.
IGNORE_UNCHECKED_CSR = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")


def mnist_cnn() -> nn.Module:
    """The MNIST CNN of the reference runs (conv-pool-conv-pool-fc-fc), seeded."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def tiny_resnet() -> nn.Module:
    """torchvision resnet18 (residual adds, BatchNorm), seeded; run at 64x64 to stay fast."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10)


MODELS = {
    "mnist_cnn": (mnist_cnn, (1, 1, 28, 28)),
    "tiny_resnet": (tiny_resnet, (1, 3, 64, 64)),
}


def example_input(shape: tuple[int, ...]) -> torch.Tensor:
    """A seeded random input of `shape`."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def mnist() -> tuple[nn.Module, torch.Tensor]:
    """The MNIST CNN and a 1x1x28x28 input."""
    factory, shape = MODELS["mnist_cnn"]
    return factory(), example_input(shape)


@pytest.fixture(params=["resnet18", "mobilenet_v2", "vgg16"])
def imagenet_case(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor]:
    """A seeded torchvision ImageNet architecture and a 1x3x224x224 input, for the slow full-size tests."""
    torch.manual_seed(0)
    return getattr(torchvision.models, request.param)(), example_input((1, 3, 224, 224))


EXIT_CLASSES = 3


def tiny_exit_model() -> nn.Module:
    """conv (1 -> 2 channels, 1x1) - maxpool (stage 1) - linear: a 1x4x4 input, 3 classes."""
    return nn.Sequential(nn.Conv2d(1, 2, 1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, EXIT_CLASSES))


def sure_of_bright_inputs(net: MultiExit) -> MultiExit:
    """Sets the weights by hand: the head's class-0 logit grows with the input's brightness, so a bright input
    makes the first head sure (softmax ~ 1) and a dark one leaves it uniform (1/3)."""
    conv, head = net.segments[0][0], net.heads[0]
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        head[2].weight.fill_(1.0)
        head[2].bias.zero_()
        head[4].weight.zero_()
        head[4].weight[0].fill_(1.0)
        head[4].bias.zero_()
    return net
