"""Capture in local mode: a request through the local stack (API, router, local runtime) lands as one capture
record in ``<root>/capture/model=<m>/date=<today UTC>/capture.jsonl`` carrying only the allow-listed inputs,
every request of a capturing model is captured (CAPTURE_SAMPLE_RATE=1), a model without a capture block leaves
nothing, and the drift job's directory store reads the records back."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.capture_store import DirectoryCaptureStore
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from local.capture import LocalCaptureWriter, is_capture_line, local_capture_dir
from local.log_subscriptions import LocalLogSubscriptions
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import LocalStack, serverless_endpoints, start_local_stack
from ops.targets import LOCAL_STATE_FILE

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
ANSWER = {
    "model_name": "iris",
    "model_version": "1",
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]},
        {"name": "probabilities", "datatype": "FP32", "shape": [2, 3], "data": [0.9, 0.05, 0.05, 0.1, 0.1, 0.8]},
    ],
}


def personal_data_config(directory: Path) -> Path:
    """iris with a second input, a caller id, that its capture block leaves out of the allow-list."""
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["inputs"].append({"name": "customer_id", "datatype": "INT64", "shape": [-1, 1]})
    iris["capture"] = {"sample_rate": 0.01, "inputs": ["input"], "outputs": True}
    path = directory / "models.json"
    path.write_text(json.dumps(document))
    return path


def request(stack: LocalStack, model: str, document: dict[str, Any]) -> tuple[int, bytes]:
    call = urllib.request.Request(
        f"{stack.api.url}/v2/models/{model}/infer",
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The router on the personal-data config in front of the default config's endpoints (whose iris graph has
    no customer_id input), each iris call answered with ANSWER by the runtime's answer fault."""
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config(DEFAULT_CONFIG_PATH)), port=0).start()
    try:
        started = start_local_stack(
            api_port=0,
            runtime=runtime,
            async_options=None,
            config_path=str(personal_data_config(tmp_path)),
            capture_dir=tmp_path / "state",
        )
        try:
            fault = urllib.request.Request(
                f"{runtime.url}/_local/faults/iris", data=json.dumps({"answer": ANSWER}).encode(), method="PUT"
            )
            with urllib.request.urlopen(fault, timeout=5) as response:
                assert response.status == 200
            yield started
        finally:
            started.stop()
    finally:
        runtime.stop()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_a_request_lands_as_a_capture_record_with_only_the_allow_listed_inputs(
    stack: LocalStack, tmp_path: Path
) -> None:
    body = {
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": ROWS},
            {"name": "customer_id", "shape": [2, 1], "datatype": "INT64", "data": [[424242], [737373]]},
        ]
    }
    status, answer = request(stack, "iris", body)
    assert status == 200, answer

    path = tmp_path / "state" / "capture" / "model=iris" / f"date={today()}" / "capture.jsonl"
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert (record["capture"], record["model"], record["version"]) == (1, "iris", "1")
    assert record["inputs"] == {"input": {"shape": [2, 4], "data": [value for row in ROWS for value in row]}}
    assert "424242" not in path.read_text(), "an input outside the allow-list never reaches the capture file"
    assert record["outputs"] == {
        "label": {"shape": [2], "data": [0, 2]},
        "probabilities": {"shape": [2, 3], "data": [0.9, 0.05, 0.05, 0.1, 0.1, 0.8]},
    }
    stored = list(
        DirectoryCaptureStore(tmp_path / "state").read_window(
            "iris", datetime.now(UTC).date(), datetime.now(UTC).date()
        )
    )
    assert stored == [record]


def test_every_request_of_a_capturing_model_is_captured_and_no_other_model_is(
    stack: LocalStack, tmp_path: Path
) -> None:
    # The config samples 1%: the local stack's CAPTURE_SAMPLE_RATE=1 captures all twenty.
    for index in range(20):
        body = {
            "inputs": [
                {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.0, index / 10, *ROWS[1]]},
                {"name": "customer_id", "shape": [2, 1], "datatype": "INT64", "data": [index, index]},
            ]
        }
        assert request(stack, "iris", body)[0] == 200
    digits = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    assert request(stack, "digits", digits)[0] == 200

    root = tmp_path / "state" / "capture"
    lines = (root / "model=iris" / f"date={today()}" / "capture.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["inputs"]["input"]["data"][3] for line in lines) == [i / 10 for i in range(20)]
    assert [p.name for p in root.iterdir()] == ["model=iris"], "digits has no capture block"


def test_the_drift_cli_and_make_local_share_the_capture_root() -> None:
    assert local_capture_dir() == LOCAL_STATE_FILE.parent


def test_a_capture_line_is_filed_by_its_timestamps_utc_day(tmp_path: Path) -> None:
    line = json.dumps({"capture": 1, "model": "iris", "version": "1", "timestamp": 1_700_000_000.5, "inputs": {}})
    path = LocalCaptureWriter(tmp_path).write(line)
    assert path == tmp_path / "capture" / "model=iris" / "date=2023-11-14" / "capture.jsonl"
    LocalCaptureWriter(tmp_path).write(line + "\n")
    assert path.read_text() == f"{line}\n{line}\n"


@pytest.mark.parametrize(
    ("line", "capture"),
    [
        ('{"capture":1,"model":"iris"}', True),
        ('{"capture": 1, "model": "iris"}', True),
        ('{"capture":0,"model":"iris"}', False),
        ('{"capture":"1"}', False),
        ('{"capture":1', False),
        ('{"shadow_request":1}', False),
        ("capture", False),
    ],
)
def test_only_a_line_the_subscription_filter_would_pass_is_a_capture_line(line: str, capture: bool) -> None:
    assert is_capture_line(line) is capture


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"capture": 1, "timestamp": 1.0}, "without a usable model"),
        ({"capture": 1, "model": "../iris", "timestamp": 1.0}, "without a usable model"),
        ({"capture": 1, "model": "iris", "timestamp": "today"}, "without a numeric timestamp"),
        ({"capture": 1, "model": "iris", "timestamp": True}, "without a numeric timestamp"),
    ],
)
def test_a_record_that_cannot_be_filed_is_reported_and_never_raised(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LocalCaptureWriter(tmp_path).write(json.dumps(record))
    printed: list[str] = []
    sink = LocalLogSubscriptions(None, None, echo=printed.append, capture=LocalCaptureWriter(tmp_path))
    sink(json.dumps(record))
    assert printed[0] == json.dumps(record)
    assert message in json.loads(printed[1])["capture_delivery_error"]
    assert not (tmp_path / "capture").exists()


def test_without_a_capture_root_a_capture_line_is_only_printed(tmp_path: Path) -> None:
    printed: list[str] = []
    line = json.dumps({"capture": 1, "model": "iris", "timestamp": 1.0, "inputs": {}})
    LocalLogSubscriptions(None, tmp_path / "metrics.jsonl", echo=printed.append)(line)
    assert printed == [line]
    assert not (tmp_path / "metrics.jsonl").exists()
