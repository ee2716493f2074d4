"""Reading a model's optional ``capture`` block: the share of answered requests the router writes as capture
lines for the drift job, the allow-list of inputs they carry, whether they carry the outputs and how many rows
of a batch at most.

Capture is opt-in per model, and lists the inputs it keeps by name: a request may carry personal data, and
only what the config names ever leaves the request path. Every error names the field.

Example:
    >>> reader = CaptureReader("models.json")
    >>> reader.capture({"sample_rate": 0.1, "inputs": ["input"]}, "models[0].capture", ("input",))
    CaptureConfig(sample_rate=0.1, inputs=('input',), outputs=True, max_rows=100)
"""

from __future__ import annotations

from typing import Any

from functions.config.config_reader import ConfigReader
from functions.config.model_types import DEFAULT_CAPTURE_MAX_ROWS, CaptureConfig

# A line over CloudWatch Logs' 256 KB event cap is dropped: 1,000 rows fit it only for inputs of a few values.
MAX_ROWS_LIMIT = 1_000


class CaptureReader(ConfigReader):
    def capture(self, raw_value: Any, path: str, input_names: tuple[str, ...]) -> CaptureConfig | None:
        if raw_value is None:
            return None
        raw = self.obj(raw_value, path, frozenset({"sample_rate", "inputs", "outputs", "max_rows"}))
        rate = self.required(raw, "sample_rate", path)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise self.fail(f"{path}.sample_rate", f"{rate!r} must be a fraction in (0, 1]")
        names = self.required(raw, "inputs", path)
        if not isinstance(names, list):
            raise self.fail(f"{path}.inputs", "must be a list of the model's input names")
        for index, name in enumerate(names):
            if name not in input_names:
                raise self.fail(
                    f"{path}.inputs[{index}]", f"{name!r} is not an input of the model ({', '.join(input_names)})"
                )
            if name in names[:index]:
                raise self.fail(f"{path}.inputs[{index}]", f"input {name!r} is listed twice")
        outputs = raw.get("outputs", True)
        if not isinstance(outputs, bool):
            raise self.fail(f"{path}.outputs", f"must be true or false, got {outputs!r}")
        if not names and not outputs:
            raise self.fail(path, "captures nothing: list inputs, or set outputs to true")
        max_rows = raw.get("max_rows", DEFAULT_CAPTURE_MAX_ROWS)
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_ROWS_LIMIT:
            raise self.fail(f"{path}.max_rows", f"{max_rows!r} must be a whole number of rows in 1..{MAX_ROWS_LIMIT}")
        return CaptureConfig(float(rate), tuple(names), outputs, max_rows)
