"""Reading a model's optional ``capture`` block: the share of answered requests the router writes as capture
lines for the drift job, the allow-list of inputs they carry and whether they carry the outputs.

Capture is opt-in per model, and lists the inputs it keeps by name: a request may carry personal data, and
only what the config names ever leaves the request path. Every error names the field.

Example:
    >>> reader = CaptureReader("models.json")
    >>> reader.capture({"sample_rate": 0.1, "inputs": ["input"]}, "models[0].capture", ("input",))
    CaptureConfig(sample_rate=0.1, inputs=('input',), outputs=True)
"""

from __future__ import annotations

from typing import Any

from functions.config.config_reader import ConfigReader
from functions.config.model_types import CaptureConfig


class CaptureReader(ConfigReader):
    def capture(self, raw_value: Any, path: str, input_names: tuple[str, ...]) -> CaptureConfig | None:
        if raw_value is None:
            return None
        raw = self.obj(raw_value, path, frozenset({"sample_rate", "inputs", "outputs"}))
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
        return CaptureConfig(float(rate), tuple(names), outputs)
