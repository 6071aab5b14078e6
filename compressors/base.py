"""The three types every compressor speaks: its config, its trainable result and its executable form.

A compressor is a frozen config dataclass bound to one transform (the torchao pattern): the config is what the
run file, the CLI and the stored record name, so it must validate itself once and round-trip through JSON.

Nothing here imports torch at run time (torch types are annotations only): the config classes and their
presentation are read by commands that never transform a model, and torch costs seconds to import.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from compressors.presentation import Presentation

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "Compressed", "CompressorConfig", "CompressorLimit", "Executable", "Fit", "Training", "TrainingFacts", "TrainLoss",
    "WeightCode",
]  # fmt: skip


class CompressorLimit(Exception):
    """A model this compressor cannot handle: a known limit of the method or of the library behind it, not a fault.

    Raised by `apply` or `finalize` where the limit shows only on the real graph (a reshape torch-pruning
    cannot follow, a model torch.fx cannot trace), so the cell is reported as not applicable, with the reason,
    rather than as a failure; `check` stays for what is wrong in the user's input.

    Attributes:
        action: What could not be done, as a verb: "prune", "quantize".
        reason: Why, in one line, naming the library where the limit is its.
    """

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(reason)
        self.action = action
        self.reason = reason


@dataclass
class WeightCode:
    """How one quantized weight is stored: integer codes plus the float tables that decode them.

    The suite measures storage by actually encoding these (bit-packed, Huffman-coded), so a compressor that
    claims k bits must hand over codes that really fit in k bits.

    Attributes:
        codes: Integer tensor of the weight's shape, every value in [0, 2**bits).
        bits: Bits per code.
        tables: Float tensors needed to decode (per-channel scales and zero points, or a codebook).
    """

    codes: torch.Tensor
    bits: int
    tables: dict[str, torch.Tensor]


@dataclass
class Compressed:
    """What `CompressorConfig.apply` returns: a model that can still be fine-tuned.

    Attributes:
        model: Plain dense `nn.Module`s (zeros where pruned), with no hooks or parametrizations, so any
            training loop and any exporter handle it unchanged.
        masks: Parameter name (as in `model.named_parameters()`) -> bool tensor, True = kept. Fine-tuning
            multiplies the weights by it after each step so pruned entries stay zero. Empty when the
            compressor has no mask.
        info: JSON-native facts the compressor knows about its result (achieved sparsity, kept channels,
            ratios), stored with the record so the report can show what was really done.
        codes: Parameter name -> its quantized storage, for compressors that quantize weights; empty otherwise.
        stages: The result of each stage, for compressors made of stages (a chain), so each step's size can be
            measured; empty otherwise.
    """

    model: nn.Module
    masks: dict[str, torch.Tensor]
    info: dict[str, Any]
    codes: dict[str, WeightCode] = dataclasses.field(default_factory=dict)
    stages: list[Compressed] = dataclasses.field(default_factory=list)


@dataclass
class Executable:
    """What `CompressorConfig.finalize` returns: the form that is timed and evaluated.

    Attributes:
        model: The module that runs; it must be scriptable with `torch.jit.script` because the timing worker
            loads TorchScript files without this package.
        executed_as: Short human label of what really executes (e.g. "sparse CSR (torch.sparse.mm)"), so a
            result never looks faster or smaller than what it runs.
        notes: Caveats about the execution, e.g. layers that had to stay dense.
        quantized_engine: The `torch.backends.quantized.engine` the model's int8 kernels need, or None.
    """

    model: nn.Module
    executed_as: str
    notes: str = ""
    quantized_engine: str | None = None


# Written with forward references so that defining the alias needs no torch.
TrainLoss = Callable[["nn.Module", "torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""`loss(model, images, labels)`: the scalar loss of one mini-batch, for a compressor whose training is not plain
cross-entropy on the model's output (exit heads, several widths)."""


class Fit(Protocol):
    """The suite's training loop, lent to a compressor that trains."""

    def __call__(
        self,
        model: nn.Module,
        steps: int,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        loss: TrainLoss | None = None,
        seed: int | None = None,
    ) -> None:
        """Train `model` in place for `steps` mini-batches of the model's training split (Adam), then eval mode.

        Args:
            masks: Parameter name -> bool tensor of kept entries, reapplied after every step so pruned weights
                stay zero.
            loss: The mini-batch loss; cross-entropy of `model(images)` when None.
            seed: Seeds the data order; the cell's seed (`Training.seed`) when None.
        """


@dataclass(frozen=True)
class TrainingFacts:
    """What is known before anything trains, for a compressor that trains to refuse a cell it cannot do.

    Attributes:
        steps: The cell's training budget in mini-batches (the run's `finetune_steps`).
        reference_steps: How many mini-batches the suite's training of the reference takes; None when the suite
            does not train the model (user weights, or no bundled data).
        initial_weights: Whether the reference's weights before training are stored (models the suite trains).
    """

    steps: int
    reference_steps: int | None
    initial_weights: bool


@dataclass(frozen=True)
class Training:
    """What the suite lends a compressor that trains (`CompressorConfig.trains`): a loop over the model's real
    training split, the cell's budget and seed, and the reference's own starting points.

    Attributes:
        steps: The cell's whole training budget in mini-batches, for the compressor to spend as its method says.
        seed: The cell's training seed: data order, and anything the compressor draws at random.
        fit: The training loop.
        evaluate: Top-1 of a model on the held-out split, for figures a compressor reports along its way.
        initial_state: The reference's weights before its training (seeded, stored with the cached model), or
            None when the suite did not train it.
        rewound_state: `rewound_state(k)`: the reference's weights after k steps of its own training, replayed
            from `initial_state` with the reference's recipe; None where `initial_state` is None.
        reference_steps: How many mini-batches the reference's training took, or None.
    """

    steps: int
    seed: int
    fit: Fit
    evaluate: Callable[[nn.Module], float]
    initial_state: Mapping[str, torch.Tensor] | None
    rewound_state: Callable[[int], dict[str, torch.Tensor]] | None
    reference_steps: int | None


@dataclass(frozen=True)
class CompressorConfig(abc.ABC):
    """Base of every compressor config: frozen, validated in `__post_init__`, JSON round-trip.

    Subclasses are frozen dataclasses whose fields are JSON-native scalars, registered with
    `compressors.registry.register`, which sets `name`.
    """

    name: ClassVar[str]
    # Fields that only choose how `finalize` executes the result, not what `apply` and fine-tuning produce:
    # configs differing only in these share one compressed (and recovered) model.
    execution_fields: ClassVar[tuple[str, ...]] = ()
    # The post-training int8 scheme this config stands for ("static": weights and activations, calibrated;
    # "dynamic": weights only), so an engine with a quantizer of its own (ONNX Runtime) applies its equivalent to
    # the float model instead of running torch's int8 modules; None for every other compressor.
    int8_scheme: ClassVar[str | None] = None
    # Whether the compressor trains as it compresses (iterative pruning, exit heads, slimmable widths): the suite
    # calls `apply_trained` with the cell's whole training budget, and runs no recovery after it.
    trains: ClassVar[bool] = False
    # Whether what the executable computes, and so its latency, depends on the input (an early exit): the suite
    # times it over a stream of real inputs at batch 1 instead of one random tensor.
    input_dependent: ClassVar[bool] = False
    # How the compressor is named, grouped and drawn in reports (`compressors.presentation`); a compressor that
    # declares none is shown by its registered name in the family "other".
    presentation: ClassVar[Presentation] = Presentation()

    @property
    def recoverable(self) -> bool:
        """Whether fine-tuning `Compressed.model` can recover accuracy.

        False where there is nothing to recover (the baseline) or training would invalidate what `apply` fixed
        (the calibrated ranges of post-training int8). Subclasses set a class attribute, or compute it (a chain).
        """
        return True

    @abc.abstractmethod
    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Compresses a copy of `model`.

        Args:
            model: The dense model. It is never mutated: implementations deep-copy it first, because the
                caller keeps using it as the baseline.
            example_input: An input of the shape the model is run with, for compressors that trace the graph
                or count MACs.
            calibration: Batches of real inputs (training data where the model has it), for
                compressors that observe activations (static quantization, APoZ); empty when none exist.

        Returns:
            The trainable compressed model with its masks and facts.
        """

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """Compresses a copy of `model`, training with what the suite lends; only called where `trains` is True.

        Args:
            model: The trained dense reference, never mutated.
            example_input: As for `apply`.
            calibration: As for `apply`.
            training: The training loop, budget, seed and the reference's starting points.
        """
        raise NotImplementedError(f"{self.name} does not train; the suite calls apply")

    def check_training(self, facts: TrainingFacts) -> None:
        """Raises ValueError (one line) if this config cannot train under `facts`; called at config time for every
        model the run trains. The default accepts everything (compressors that do not train)."""
        return None

    def check(self, model: nn.Module) -> None:
        """Raises ValueError (one line: what is wrong, what is accepted) if this config cannot apply to `model`.

        Called at config time for every model of a run, so a rank larger than a layer allows or a swap with no
        eligible layer is a user error before anything is measured. The default accepts every model.
        """
        return None

    def measured(self, model: nn.Module) -> nn.Module:
        """The part of `Compressed.model` whose parameters, bytes and MACs a cell of this config reports.

        The whole model by default: execution fields usually choose only how the same weights run (dense or CSR, an
        int8 engine). A compressor whose execution field picks a sub-network of the shared model (one width of a
        slimmable network) returns that sub-network as a plain float model, so each cell reports what it runs.
        """
        return model

    def finalize(self, model: nn.Module) -> Executable:
        """Turns a (possibly fine-tuned) compressed model into the form that is executed.

        The default executes the model as it is; compressors with a special kernel override this.

        Args:
            model: `Compressed.model`, possibly fine-tuned since.

        Returns:
            The executable model and a label of what executes.
        """
        return Executable(model, executed_as="dense", notes="")

    def for_device(self, arch: str) -> Self:
        """This config as it applies to a device of architecture `arch` (`platform.machine()` there).

        Settings that mean "whatever suits the device" resolve here, since the host compresses for a device
        that may be another machine; the default has none and returns the config itself.
        """
        return self

    def training_key(self) -> str:
        """Identifies what `apply` (and recovery after it) produces: the name and the non-execution fields."""
        shown = {key: value for key, value in self.to_dict().items() if key not in self.execution_fields}
        return f"{self.name} {sorted(shown.items())}"

    def to_dict(self) -> dict[str, Any]:
        """Returns the config's fields as a JSON-native `{field: value}` dict (the name is not included)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Builds a config from `to_dict` output or a config file section, validating every value.

        Args:
            data: `{field: value}`; missing fields take their defaults.

        Returns:
            The validated config.

        Raises:
            ValueError: On a key that is not a field (a typo would otherwise silently run the default) or an
                invalid value.
        """
        accepted = [field.name for field in dataclasses.fields(cls)]
        for key in data:
            if key not in accepted:
                raise ValueError(
                    f"unknown parameter {key!r} for {cls.name}; accepted: {', '.join(accepted) or '(none)'}"
                )
        return cls(**data)
