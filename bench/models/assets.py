"""The weights files and image folders a user gives per model (`--weights`, `--data`), checked before a run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import require
from bench.models.registry import resolve_model
from bench.models.userdata import check_folder, file_digest, folder_digest, load_weights

__all__ = ["ModelAssets", "model_assets"]


@dataclass(frozen=True)
class ModelAssets:
    """Weights and labelled images a user gave for one model, with digests that make them part of cell ids."""

    weights: Path | None = None
    data: Path | None = None
    weights_digest: str | None = None
    data_digest: str | None = None

    def digests(self) -> dict[str, str]:
        found = {"weights": self.weights_digest, "data": self.data_digest}
        return {key: value for key, value in found.items() if value is not None}


def model_assets(
    models: tuple[str, ...], weights: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, ModelAssets]:
    """Validate the user's weights files and image folders now, so a bad one stops the run before it starts.

    Weights are loaded (weights-only) into the model and must fit its keys and shapes; a folder's image headers
    are read and its class count must be the model's number of outputs. Both are then digested.
    """
    for flag, table in (("weights", weights), ("data", data)):
        for model, path in table.items():
            require(model in models, f"--{flag}: model '{model}' is not in the run (models: {', '.join(models)})")
            require(isinstance(path, (str, Path)), f"--{flag} {model}: expected a path, got {path!r}")
    assets = {}
    for model in sorted(set(weights) | set(data)):
        spec = resolve_model(model)
        weights_path = Path(weights[model]) if model in weights else None
        data_path = Path(data[model]) if model in data else None
        network = spec.build()
        if weights_path is not None:
            require(weights_path.exists(), f"--weights {model}: no such file: {weights_path}")
            require(
                weights_path.is_file(),
                f"--weights {model}: {weights_path} is not a regular file, expected a state_dict file",
            )
            network = load_weights(network, weights_path, model)
        if data_path is not None:
            require(
                weights_path is not None or spec.dataset is not None,
                f"--data {model}: needs --weights {model}=PATH too (no accuracy is reported for random weights)",
            )
            check_folder(data_path, spec.input_shape, model, network)
        assets[model] = ModelAssets(
            weights=weights_path,
            data=data_path,
            weights_digest=file_digest(weights_path) if weights_path else None,
            data_digest=folder_digest(data_path) if data_path else None,
        )
    return assets
