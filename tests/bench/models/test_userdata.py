"""User-supplied weights and image folders: the path by which a torchvision model gets a real top-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.measure.accuracy import top1
from bench.models import registry as models
from bench.models.references import NO_DATA, NO_WEIGHTS, References
from bench.models.registry import resolve_model
from bench.models.userdata import load_weights, open_folder
from bench.run.matrix import expand
from bench.store.database import read_store
from tests.bench.conftest import run_main, tiny_run_args, write_fast_toml

MODEL = "digits_cnn"  # 1x8x8 input: a user folder of tiny grey images is enough


def _write_folder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray((rng.random((12, 12)) * 255).astype("uint8")).save(folder / f"{index}.png")
    return root


def _write_weights(path: Path, name: str = MODEL) -> Path:
    torch.save(resolve_model(name).build().state_dict(), path)
    return path


def test_folder_is_read_in_sorted_class_order_and_resized_to_the_model_input(tmp_path: Path) -> None:
    folder = open_folder(_write_folder(tmp_path / "images"), (1, 8, 8), MODEL)
    batches = list(folder.batches(4))
    assert len(folder) == 6
    assert [tuple(x.shape) for x, _ in batches] == [(4, 1, 8, 8), (2, 1, 8, 8)]
    assert torch.cat([y for _, y in batches]).tolist() == [0, 0, 0, 1, 1, 1]


def test_top1_on_a_folder_counts_correct_predictions(tmp_path: Path) -> None:
    folder = open_folder(_write_folder(tmp_path / "images"), (1, 8, 8), MODEL)

    class AlwaysClassOne(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, 1.0]]).expand(len(x), 2)

    assert top1(AlwaysClassOne(), folder) == pytest.approx(0.5)


def test_weights_load_bit_for_bit_also_from_a_checkpoint_dict(tmp_path: Path) -> None:
    source = resolve_model(MODEL).build()
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(1.0)
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    loaded = load_weights(resolve_model(MODEL).build(), tmp_path / "ckpt.pt", MODEL)
    for key, tensor in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor)


def test_weights_of_another_architecture_are_a_one_line_error(tmp_path: Path) -> None:
    path = _write_weights(tmp_path / "mnist.pt", "mnist_cnn")
    with pytest.raises(
        BenchError, match=r"--weights digits_cnn: .* does not fit digits_cnn: keys .*of another shape"
    ) as error:
        load_weights(resolve_model(MODEL).build(), path, MODEL)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_a_state_dict_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(BenchError, match="cannot read .*notes.txt as a state_dict"):
        load_weights(resolve_model(MODEL).build(), path, MODEL)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "no such folder"),
        (lambda root: root, "has no class sub-folders"),
        (lambda root: (root / "cat").mkdir() or root, "no images"),
    ],
)
def test_bad_image_folders_are_named(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        open_folder(make(tmp_path), (1, 8, 8), MODEL)


def test_config_validates_paths_and_refuses_data_without_real_weights(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "images")
    with pytest.raises(BenchError, match="--weights resnet18: no such file"):
        load_config(None, {"models": ["resnet18"], "weights": {"resnet18": str(tmp_path / "nope.pt")}})
    with pytest.raises(BenchError, match="--data resnet18: needs --weights resnet18=PATH"):
        load_config(None, {"models": ["resnet18"], "data": {"resnet18": str(folder)}})
    with pytest.raises(BenchError, match="model 'vgg16' is not in the run"):
        load_config(None, {"models": ["resnet18"], "weights": {"vgg16": str(folder)}})


def test_weights_and_data_become_part_of_the_cell_ids(tmp_path: Path) -> None:
    weights = _write_weights(tmp_path / "w.pt")
    folder = _write_folder(tmp_path / "images", classes=10, per_class=1)  # one class folder per output
    table = {"models": [MODEL], "compressors": {"none": {}}, "layers": {"models": []}, "engines": ["torchscript"]}
    plain = load_config(None, table)
    given = load_config(None, {**table, "weights": {MODEL: str(weights)}, "data": {MODEL: str(folder)}})
    (plain_cell,), (given_cell,) = expand(plain), expand(given)
    assert set(given_cell.to_json()["assets"]) == {"weights", "data"}
    assert plain_cell.id != given_cell.id


def _tiny_rgb() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )


def test_reference_accuracy_comes_from_the_user_folder_or_is_labelled_na(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A two-class RGB model without a bundled data set, as a torchvision classifier is but with two outputs, so
    # the folder needs two class folders rather than ImageNet's thousand.
    name = "tiny_rgb"
    monkeypatch.setitem(models._REGISTRY, name, models.ModelSpec(name, _tiny_rgb, (3, 16, 16)))
    weights = _write_weights(tmp_path / "w.pt", name)
    rgb = tmp_path / "rgb"
    for label in ("a", "b"):
        (rgb / label).mkdir(parents=True)
        Image.fromarray(np.zeros((30, 30, 3), dtype="uint8")).save(rgb / label / "0.png")
    with_data = load_config(
        None, {"models": [name], "layers": {"models": []}, "weights": {name: str(weights)}, "data": {name: str(rgb)}}
    )
    weights_only = load_config(None, {"models": [name], "layers": {"models": []}, "weights": {name: str(weights)}})
    measured = References(tmp_path / "cache", with_data.assets).get(name)
    assert measured.accuracy is not None and 0.0 <= measured.accuracy <= 1.0
    assert str(rgb) in measured.accuracy_note
    assert References(tmp_path / "cache", weights_only.assets).get(name).accuracy_note == NO_DATA
    assert References(tmp_path / "cache").get("resnet18").accuracy_note == NO_WEIGHTS


def _weights_variants(root: Path) -> dict[str, Path]:
    """Weights files a user may hand over by mistake, each a real file."""
    good = _write_weights(root / "good.pt")
    data = good.read_bytes()
    state = resolve_model(MODEL).build().state_dict()
    files = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    }
    paths = {name: root / f"{name.replace(' ', '-')}.pt" for name in (*files, "nan", "sparse", "not tensors")}
    for name, content in files.items():
        paths[name].write_bytes(content)
    torch.save({key: torch.full_like(value, float("nan")) for key, value in state.items()}, paths["nan"])
    torch.save({key: value.to_sparse() for key, value in state.items()}, paths["sparse"])
    torch.save({"weights": "not a tensor"}, paths["not tensors"])
    return paths


WEIGHT_ERRORS = {
    "empty": r"is empty \(expected a state_dict saved by torch.save\)",
    "truncated": r"cannot read .*truncated.pt as a state_dict: PytorchStreamReader failed reading zip archive",
    "random bytes": r"cannot read .*random-bytes.pt as a state_dict: ",
    "nan": r"holds nan or inf values \(e.g. in 0.weight\)",
    "sparse": r"does not fit digits_cnn: keys 8 quantized or sparse \(e.g. 0.weight\)",
    "not tensors": r"holds no state_dict of tensors",
}


@pytest.mark.parametrize("name", WEIGHT_ERRORS)
def test_bad_weights_files_are_refused_when_the_config_loads(tmp_path: Path, name: str) -> None:
    path = _weights_variants(tmp_path)[name]
    with pytest.raises(BenchError, match=rf"^--weights digits_cnn: .*{WEIGHT_ERRORS[name]}") as info:
        load_config(
            None,
            {"models": [MODEL], "compressors": {"none": {}}, "layers": {"models": []}, "weights": {MODEL: str(path)}},
        )
    assert "\n" not in str(info.value)


def _png(path: Path, truncate: bool = False) -> Path:
    Image.fromarray((np.random.default_rng(1).random((12, 12)) * 255).astype("uint8")).save(path)
    if truncate:  # the header still parses: only decoding finds the file short
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            lambda root: (root / "class3" / "empty.png").write_bytes(b""),
            r"class3/empty.png is empty \(expected an image\)",
        ),
        (
            lambda root: (root / "class3" / "notes.jpg").write_text("not an image"),
            r"class3/notes.jpg is not a readable image: cannot identify image file",
        ),
        (lambda root: [p.unlink() for p in (root / "class7").iterdir()], r"Found no valid file for the classes class7"),
    ],
    ids=["empty image", "text named .jpg", "class without images"],
)
def test_bad_images_are_refused_when_the_config_loads(tmp_path: Path, spoil, message: str) -> None:
    root = _write_folder(tmp_path / "images", classes=10, per_class=1)
    spoil(root)
    overrides = {"models": [MODEL], "compressors": {"none": {}}, "layers": {"models": []}, "data": {MODEL: str(root)}}
    with pytest.raises(BenchError, match=rf"^--data digits_cnn: .*{message}") as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "classes", "outputs"), [(MODEL, 2, 10), ("shufflenet_v2_x0_5", 3, 1000)])
def test_a_class_count_other_than_the_model_outputs_is_refused_naming_both(
    tmp_path: Path, name: str, classes: int, outputs: int
) -> None:
    root = _write_folder(tmp_path / "images", classes=classes, per_class=1)
    overrides = {"models": [name], "compressors": {"none": {}}, "layers": {"models": []}, "data": {name: str(root)}}
    if name != MODEL:
        overrides["weights"] = {name: str(_write_weights(tmp_path / "w.pt", name))}
    with pytest.raises(BenchError) as info:
        load_config(None, overrides)
    assert str(info.value) == (
        f"--data {name}: {root} has {classes} class folders but {name} has {outputs} outputs"
        " (one class folder per output, in sorted order)"
    )


def test_an_image_that_fails_to_decode_fails_its_cell_naming_the_file(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "images", classes=10, per_class=1)
    broken = _png(root / "class4" / "broken.png", truncate=True)
    weights = _write_weights(tmp_path / "w.pt")
    store = tmp_path / "results" / "bench.sqlite"
    argv = tiny_run_args(
        store,
        write_fast_toml(tmp_path),
        "--weights",
        f"{MODEL}={weights}",
        "--data",
        f"{MODEL}={root}",
        compressors=["none"],
    )
    result = run_main(argv)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    with read_store(store) as opened:
        (record,) = opened.records(opened.run().run_id)
    assert record.status == "failed"
    assert record.error == f"ImageDecodeError: cannot decode image {broken}: image file is truncated"
