"""quant.int8 and quant.int8_dynamic: int8 modules really used, outputs close, artifacts that load elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized import dynamic as nnqd

from compressors import get
from compressors.quant_int8 import DynamicInt8Quantization, StaticInt8Quantization, int8_layers, resolve_engine
from tests.compressors.conftest import MODELS, example_input

# torch.ao.quantization announces its move to torchao; the suite pins torch, so the warning is known.
pytestmark = pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")

ENGINE = resolve_engine("auto")


def _batches(shape: tuple[int, ...], count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn((8, *shape[1:]), generator=generator) for _ in range(count)]


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def _stored_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


def _static(model_name: str, **kwargs: object) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """Returns the float model (eval), its int8 conversion (calibrated on 4 real-looking batches) and a new input."""
    factory, shape = MODELS[model_name]
    model = factory().eval()
    config = StaticInt8Quantization(**kwargs)  # type: ignore[arg-type]
    result = config.apply(model, example_input(shape), _batches(shape, 4, seed=5))
    return model, config.finalize(result.model).model, _batches(shape, 1, seed=9)[0]


def test_both_are_registered() -> None:
    assert get("quant.int8") is StaticInt8Quantization
    assert get("quant.int8_dynamic") is DynamicInt8Quantization


def test_static_mnist_runs_int8_convs_and_linears() -> None:
    _, converted, x = _static("mnist_cnn")
    modules = dict(converted.named_modules())
    convs = [module for module in modules.values() if isinstance(module, nnq.Conv2d)]
    linears = [module for module in modules.values() if isinstance(module, nnq.Linear)]
    assert len(convs) == 2
    assert len(linears) == 2
    assert all(conv.weight().dtype == torch.qint8 for conv in convs)
    assert all(linear.weight().dtype == torch.qint8 for linear in linears)
    # Per-channel weights: one scale per output channel.
    assert convs[1].weight().q_per_channel_scales().numel() == 64
    assert not any(isinstance(module, nn.Conv2d | nn.Linear) for module in modules.values())
    with torch.no_grad():
        assert converted(x).dtype == torch.float32


def test_static_resnet_adds_in_int8() -> None:
    _, converted, _ = _static("tiny_resnet")
    targets = [node.target for node in converted.graph.nodes if node.op == "call_function"]
    assert targets.count(torch.ops.quantized.add_relu) == 8, "each basic block's residual add (+ReLU) in int8"
    assert int8_layers(converted) == 21  # 17 convs + 3 downsample convs + fc


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_static_outputs_stay_close_to_float(model_name: str) -> None:
    model, converted, x = _static(model_name)
    with torch.no_grad():
        expected, actual = model(x), converted(x)
    # Measured 0.03-0.09 (worst element / max |y|) over seeds and engines on these random-weight models.
    assert _relative_error(actual, expected) < 0.15


def test_static_state_is_about_four_times_smaller() -> None:
    model, converted, _ = _static("mnist_cnn")
    assert _stored_bytes(model) / _stored_bytes(converted) > 3


def test_static_info_and_executable_label() -> None:
    factory, shape = MODELS["mnist_cnn"]
    config = StaticInt8Quantization(calibration_batches=3)
    result = config.apply(factory(), example_input(shape))
    assert result.info == {
        "engine": ENGINE,
        "calibration": "example input + 2 random normal inputs (no data)",
        "quantized_modules": 4,
    }
    assert result.masks == {}
    executable = config.finalize(result.model)
    assert executable.executed_as == f"int8 kernels ({ENGINE} engine)"
    assert executable.quantized_engine == ENGINE
    assert executable.notes == ""


def test_real_calibration_batches_are_capped_at_the_count() -> None:
    factory, shape = MODELS["mnist_cnn"]
    result = StaticInt8Quantization(calibration_batches=2).apply(factory(), example_input(shape), _batches(shape, 5, 0))
    assert result.info["calibration"] == "2 batches of real inputs"


def test_no_data_calibration_is_seeded() -> None:
    factory, shape = MODELS["mnist_cnn"]
    config = StaticInt8Quantization()
    x = example_input(shape)
    first = config.finalize(config.apply(factory(), x).model).model
    second = config.finalize(config.apply(factory(), x).model).model
    with torch.no_grad():
        assert torch.equal(first(x), second(x))


def test_prepared_model_is_float_and_keeps_the_training_flag() -> None:
    factory, shape = MODELS["tiny_resnet"]
    model, x = factory(), example_input(shape)
    result = StaticInt8Quantization().apply(model, x)
    assert result.model.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(result.model.eval()(x), model(x), atol=1e-5, rtol=1e-5)


def test_fine_tuned_prepared_model_converts_with_its_new_weights() -> None:
    factory, shape = MODELS["mnist_cnn"]
    config = StaticInt8Quantization()
    x = example_input(shape)
    prepared = config.apply(factory(), x).model
    before = config.finalize(prepared).model
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    prepared(x).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        # Observers record in every forward pass; this one sees the activations of the stepped weights, as the
        # evaluation after fine-tuning would. Without it the last step's ranges are never observed.
        expected = prepared.eval()(x)
    after = config.finalize(prepared).model
    with torch.no_grad():
        assert not torch.equal(before(x), after(x))
        assert _relative_error(after(x), expected) < 0.15


@pytest.mark.parametrize("engine", ["qnnpack", "fbgemm"])
def test_other_engines_and_the_global_engine_is_restored(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine not in torch.backends.quantized.supported_engines:
        pytest.skip(f"this torch build has no {engine} engine")
    previous = torch.backends.quantized.engine
    model, converted, x = _static("mnist_cnn", engine=engine)
    assert torch.backends.quantized.engine == previous
    monkeypatch.setattr(torch.backends.quantized, "engine", engine)
    with torch.no_grad():
        assert _relative_error(converted(x), model(x)) < 0.15


def _run_in_fresh_process(artifact: Path, engine: str, x: torch.Tensor, tmp_path: Path) -> torch.Tensor:
    """Loads and runs `artifact` the way the timing worker does: a new interpreter, engine set before loading."""
    torch.save(x, tmp_path / "x.pt")
    code = (
        "import sys, torch\n"
        "folder, artifact, engine = sys.argv[1:]\n"
        "torch.backends.quantized.engine = engine\n"
        "model = torch.jit.load(artifact)\n"
        "with torch.no_grad():\n"
        "    torch.save(model(torch.load(folder + '/x.pt')), folder + '/y.pt')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(artifact), engine], check=True, timeout=300)
    return torch.load(tmp_path / "y.pt")


@pytest.mark.parametrize(
    ("name", "model_name"),
    [("quant.int8", "mnist_cnn"), ("quant.int8", "tiny_resnet"), ("quant.int8_dynamic", "mnist_cnn")],
)
def test_torchscript_artifact_runs_in_a_fresh_process(name: str, model_name: str, tmp_path: Path) -> None:
    factory, shape = MODELS[model_name]
    config = get(name)()
    x = example_input(shape)
    executable = config.finalize(config.apply(factory(), x).model)
    artifact = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(executable.model.eval()), str(artifact))
    with torch.no_grad():
        expected = executable.model(x)
    actual = _run_in_fresh_process(artifact, executable.quantized_engine, x, tmp_path)
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-6)


def test_dynamic_swaps_linears_only() -> None:
    factory, shape = MODELS["mnist_cnn"]
    model, x = factory(), example_input(shape)
    config = DynamicInt8Quantization()
    result = config.apply(model, x)
    assert result.info == {"engine": ENGINE, "quantized_modules": 2, "kept_fp32": []}
    assert all(type(module) is type(original) for module, original in zip(result.model, model, strict=True))
    executable = config.finalize(result.model)
    quantized = executable.model
    assert [type(quantized[i]) for i in (7, 9)] == [nnqd.Linear, nnqd.Linear]
    assert quantized[7].weight().dtype == torch.qint8
    for index in (0, 3):
        assert type(quantized[index]) is nn.Conv2d
        assert torch.equal(quantized[index].weight, model[index].weight)
    assert isinstance(result.model[7], nn.Linear), "finalize must not modify the trainable model"
    assert executable.executed_as == f"int8 dynamic (Linear only, {ENGINE} engine); other layers fp32"
    assert executable.quantized_engine == ENGINE
    with torch.no_grad():
        assert _relative_error(quantized(x), model(x)) < 0.05


def test_dynamic_engine_only_chooses_execution() -> None:
    assert DynamicInt8Quantization(engine="qnnpack").training_key() == DynamicInt8Quantization().training_key()
    assert StaticInt8Quantization(engine="qnnpack").training_key() != StaticInt8Quantization().training_key()


def test_dynamic_refuses_a_model_without_linear() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    message = "no nn.Linear layer to quantize dynamically; quant.int8_dynamic needs at least one"
    with pytest.raises(ValueError) as caught:
        DynamicInt8Quantization().check(model)
    assert str(caught.value) == message
    with pytest.raises(ValueError, match=f"^{message}$"):
        DynamicInt8Quantization().apply(model, torch.randn(1, 1, 8, 8))


_BAD_ENGINE = "engine must be one of auto, x86, fbgemm, qnnpack, onednn; got 'foo'"


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (StaticInt8Quantization, {"engine": "foo"}, _BAD_ENGINE),
        (DynamicInt8Quantization, {"engine": "foo"}, _BAD_ENGINE),
        (StaticInt8Quantization, {"calibration_batches": 0}, "calibration_batches must be an integer in 1..256, got 0"),
        (
            StaticInt8Quantization,
            {"calibration_batches": 10**8},
            "calibration_batches must be an integer in 1..256, got 100000000",
        ),
        (
            StaticInt8Quantization,
            {"calibration_batches": 2.0},
            "calibration_batches must be an integer in 1..256, got 2.0",
        ),
        (
            StaticInt8Quantization,
            {"calibration_batches": True},
            "calibration_batches must be an integer in 1..256, got True",
        ),
    ],
)
def test_invalid_fields_are_refused(cls: type, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        cls(**kwargs)
    assert str(caught.value) == message


def _only_engines(monkeypatch: pytest.MonkeyPatch, engines: list[str]) -> None:
    # supported_engines is a read-only descriptor of torch.backends.quantized's module class.
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", property(lambda _self: engines))


def test_an_engine_this_torch_lacks_is_refused(
    monkeypatch: pytest.MonkeyPatch, mnist: tuple[nn.Module, torch.Tensor]
) -> None:
    _only_engines(monkeypatch, ["qnnpack", "fbgemm"])
    message = "engine 'onednn' is not supported by this torch build; supported: qnnpack, fbgemm"
    model, x = mnist
    for config in (StaticInt8Quantization(engine="onednn"), DynamicInt8Quantization(engine="onednn")):
        with pytest.raises(ValueError) as caught:
            config.apply(model, x)
        assert str(caught.value) == message
        with pytest.raises(ValueError, match="^engine 'onednn' is not supported"):
            config.check(model)


@pytest.mark.parametrize(
    ("machine", "engines", "expected"),
    [
        ("x86_64", ["qnnpack", "onednn", "x86", "fbgemm"], "x86"),
        ("x86_64", ["qnnpack", "fbgemm"], "fbgemm"),
        ("aarch64", ["qnnpack"], "qnnpack"),
        ("arm64", ["qnnpack"], "qnnpack"),
        ("armv7l", ["qnnpack"], "qnnpack"),
    ],
)
def test_auto_engine_follows_the_machine(
    machine: str, engines: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_engines(monkeypatch, engines)
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert resolve_engine("auto") == expected
    assert resolve_engine("qnnpack") == "qnnpack"


@pytest.mark.slow
def test_imagenet_architectures_at_224(imagenet_case: tuple[nn.Module, torch.Tensor], tmp_path: Path) -> None:
    model, x = imagenet_case
    model.eval()
    config = StaticInt8Quantization(calibration_batches=2)
    result = config.apply(model, x)
    executable = config.finalize(result.model)
    assert result.info["quantized_modules"] == int8_layers(executable.model) > 0
    assert executable.notes == ""
    artifact = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(executable.model), str(artifact))
    with torch.no_grad():
        expected = executable.model(x)
    assert expected.shape == (1, 1000)
    torch.testing.assert_close(_run_in_fresh_process(artifact, executable.quantized_engine, x, tmp_path), expected)
    assert _stored_bytes(model) / _stored_bytes(executable.model) > 3


@pytest.mark.parametrize("config_class", [StaticInt8Quantization, DynamicInt8Quantization])
@pytest.mark.parametrize(("arch", "expected"), [("aarch64", "qnnpack"), ("armv7l", "qnnpack"), ("x86_64", "x86")])
def test_auto_engine_resolves_for_the_device_that_runs_the_model(config_class: type, arch: str, expected: str) -> None:
    assert config_class().for_device(arch).engine == expected
    # An engine the user named is kept whatever the device.
    assert config_class(engine="onednn").for_device("aarch64").engine == "onednn"


def test_other_compressors_do_not_depend_on_the_device() -> None:
    config = get("prune.unstructured")(sparsity=0.5)
    assert config.for_device("aarch64") is config
