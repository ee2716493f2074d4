"""A model's baseline from reference data: its inputs read from a file, its outputs from running the model.

The data file is a CSV of the model's one input's columns (a header row is skipped) or JSON lines, each an OIP
request body (``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}``). The baseline is written as
``baseline.json`` next to the model's artifact unless another path is given.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from functions.adapters.onnx_model import NUMPY_DTYPES, OnnxModel
from functions.config.drift_contract import BASELINE_FILE
from functions.config.model_types import ModelConfig
from functions.domain.drift import Baseline, build_baseline

REPO_ROOT = Path(__file__).resolve().parents[2]


class BaselineError(ValueError):
    """The reference data or the model cannot make a baseline; the message names the file or the field."""


def baseline_path(model: ModelConfig, repo_root: Path = REPO_ROOT) -> Path:
    """``<artifact dir>/baseline.json``: shipped with the model, where the drift job's stack picks it up."""
    if model.artifact is None:
        raise BaselineError(f"model {model.name!r} has no artifact to keep a baseline next to: pass --out")
    return (repo_root / model.artifact).parent / BASELINE_FILE


def read_csv(model: ModelConfig, path: Path) -> dict[str, np.ndarray]:
    if len(model.inputs) != 1:
        names = [spec.name for spec in model.inputs]
        raise BaselineError(f"{path}: a CSV holds one input's columns but model {model.name!r} has inputs {names}")
    spec = model.inputs[0]
    width = math.prod(spec.shape[1:])
    rows: list[list[float]] = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                values = [float(cell) for cell in row]
            except ValueError:
                if number == 1:
                    continue  # a header
                raise BaselineError(f"{path}:{number}: not a number in {row}") from None
            if len(values) != width:
                raise BaselineError(f"{path}:{number}: {len(values)} columns, input {spec.name!r} has {width}")
            rows.append(values)
    if not rows:
        raise BaselineError(f"{path}: no rows")
    shape = (len(rows), *spec.shape[1:])
    return {spec.name: np.asarray(rows, dtype=NUMPY_DTYPES[spec.datatype]).reshape(shape)}


def read_json_lines(model: ModelConfig, path: Path) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {spec.name: [] for spec in model.inputs}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            for entry in document["inputs"]:
                spec = model.input_by_name[entry["name"]]
                array = np.asarray(entry["data"], dtype=NUMPY_DTYPES[spec.datatype]).reshape(entry["shape"])
                parts[spec.name].append(array)
        except (ValueError, KeyError, TypeError) as error:
            raise BaselineError(f"{path}:{number}: not an OIP request of model {model.name!r}: {error!r}") from None
    missing = [name for name, arrays in parts.items() if not arrays]
    if missing:
        raise BaselineError(f"{path}: no values for input(s) {missing}")
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def read_reference(model: ModelConfig, path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BaselineError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return read_csv(model, path)
    return read_json_lines(model, path)


def tensors(arrays: dict[str, np.ndarray]) -> list[tuple[str, list[int], list[Any]]]:
    return [(name, list(array.shape), array.ravel().tolist()) for name, array in arrays.items()]


def make_baseline(model: ModelConfig, artifact: Path, inputs: dict[str, np.ndarray]) -> Baseline:
    """Inputs as given; outputs from running the model on them (the reference distribution of its answers)."""
    runner = OnnxModel(model, artifact)
    names = [spec.name for spec in model.outputs]
    outputs = dict(zip(names, runner.run(names, inputs), strict=True))
    datatypes = {spec.name: spec.datatype for spec in (*model.inputs, *model.outputs)}
    return build_baseline(model.name, tensors(inputs), tensors(outputs), datatypes)


def write_baseline(baseline: Baseline, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline.to_json(), separators=(",", ":")) + "\n")
