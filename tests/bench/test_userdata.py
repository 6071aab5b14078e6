"""User-supplied weights and image folders: the path by which a torchvision model gets a real top-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config import load_config
from bench.errors import BenchError
from bench.matrix import expand
from bench.measure.accuracy import top1
from bench.models import resolve_model
from bench.references import NO_DATA, NO_WEIGHTS, References
from bench.userdata import load_weights, open_folder

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
    with pytest.raises(BenchError, match=r"--weights digits_cnn: .* does not fit digits_cnn: keys .*of another shape") as error:
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
    folder = _write_folder(tmp_path / "images")
    plain = load_config(None, {"models": [MODEL], "compressors": {"none": {}}, "layers": {"models": []}})
    given = load_config(None, {"models": [MODEL], "compressors": {"none": {}}, "layers": {"models": []},
                               "weights": {MODEL: str(weights)}, "data": {MODEL: str(folder)}})  # fmt: skip
    (plain_cell,), (given_cell,) = expand(plain), expand(given)
    assert set(given_cell.to_json()["assets"]) == {"weights", "data"}
    assert plain_cell.id != given_cell.id


def test_reference_accuracy_comes_from_the_user_folder_or_is_labelled_na(tmp_path: Path) -> None:
    weights = _write_weights(tmp_path / "w.pt", "shufflenet_v2_x0_5")
    rgb = tmp_path / "rgb"
    for label in ("a", "b"):
        (rgb / label).mkdir(parents=True)
        Image.fromarray(np.zeros((30, 30, 3), dtype="uint8")).save(rgb / label / "0.png")
    name = "shufflenet_v2_x0_5"
    with_data = load_config(None, {"models": [name], "weights": {name: str(weights)}, "data": {name: str(rgb)}})
    weights_only = load_config(None, {"models": [name], "weights": {name: str(weights)}})
    measured = References(tmp_path / "cache", tmp_path / "art", with_data.assets).get(name)
    assert measured.accuracy is not None and 0.0 <= measured.accuracy <= 1.0
    assert str(rgb) in measured.accuracy_note
    assert References(tmp_path / "cache", tmp_path / "art", weights_only.assets).get(name).accuracy_note == NO_DATA
    assert References(tmp_path / "cache", tmp_path / "art").get("resnet18").accuracy_note == NO_WEIGHTS
