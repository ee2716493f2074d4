"""The dynamic batcher against real onnxruntime sessions: iris, and small graphs built here for the cases
iris cannot show (a free inner dim, an input that can make a run fail, a fixed batch dim)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.adapters.onnx_model import OnnxModel, PreparedRequest
from functions.config.model_types import BatchingConfig
from functions.config.models import load_models_config, parse_model_config
from functions.domain.validation import validate_infer_request
from serving.batching import BatchingConfigError, BatchingSettings, DynamicBatcher
from serving.service import InvocationService
from tests.helpers.onnx_graphs import BROKEN_TENSORS, LOOKUP_TENSORS, broken_model, lookup_model

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG_DELAY_MS = 5_000.0  # a batch in these tests fills long before this; reaching it would fail the test's timeout
RESULT_TIMEOUT_S = 3.0


def signature(name: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "version": "1",
        "platform": "onnxruntime_onnx",
        "artifact": None,
        "inputs": inputs,
        "outputs": outputs,
        "route": {"sync": "serverless", "serverless_endpoint": name, "async_endpoint": None},
        "limits": {"max_body_bytes": 1048576, "max_batch_rows": 1000},
    }


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def iris() -> OnnxModel:
    config = load_models_config().model("iris")
    assert config is not None
    return OnnxModel(config, REPO_ROOT / "layers/models/iris/model.onnx", intra_op_threads=1)


@pytest.fixture(scope="module")
def row_sum(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    """Sums each row of x [batch, n]: n is free too, so requests of different widths cannot be stacked."""
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)],
        "row_sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch"])],
        initializer=[axes],
    )
    path = save(graph, tmp_path_factory.mktemp("row_sum") / "model.onnx")
    config = parse_model_config(
        signature(
            "row-sum",
            [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}],
            [{"name": "total", "datatype": "FP32", "shape": [-1]}],
        )
    )
    return OnnxModel(config, path, intra_op_threads=1)


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    """Gathers rows of a 10-row table: an index past the table makes onnxruntime fail the whole run."""
    path = tmp_path_factory.mktemp("lookup") / "model.onnx"
    path.write_bytes(lookup_model())
    config = parse_model_config(
        signature(
            "lookup",
            [{"name": "index", "datatype": "INT64", "shape": [-1]}],
            [{"name": "row", "datatype": "FP32", "shape": [-1, 2]}],
        )
    )
    return OnnxModel(config, path, intra_op_threads=1)


def fixed_batch_graph(path: Path) -> Path:
    weights = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "weights")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weights"], ["scores"])],
        "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])],
        initializer=[weights],
    )
    return save(graph, path)


def prepare(model: OnnxModel, name: str, datatype: str, data: list[Any], shape: list[int]) -> PreparedRequest:
    body = json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]})
    return model.prepare(validate_infer_request(model.config, body.encode()))


def iris_request(iris: OnnxModel, rows: int, offset: int = 0) -> PreparedRequest:
    data = [[(offset + row) % 7 + 0.5, 3.0, (offset + 2 * row) % 6 + 0.1, 1.2] for row in range(rows)]
    return prepare(iris, "input", "FP32", data, [rows, 4])


def alone(model: OnnxModel, prepared: PreparedRequest) -> dict[str, Any]:
    return dict(zip(prepared.output_names, model.run(prepared.output_names, prepared.feeds), strict=True))


def infer_concurrently(batcher: DynamicBatcher, requests: list[PreparedRequest]) -> list[Any]:
    """Each request's outputs, or the exception it raised, submitted from one thread per request."""

    def call(prepared: PreparedRequest) -> Any:
        try:
            return batcher.infer(prepared, RESULT_TIMEOUT_S)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(call, requests))


@pytest.fixture
def make_batcher() -> Iterator[Any]:
    made: list[DynamicBatcher] = []

    def make(
        model: OnnxModel, max_batch_size: int = 32, delay_ms: float = LONG_DELAY_MS, **kwargs: Any
    ) -> DynamicBatcher:
        batcher = DynamicBatcher(
            model, BatchingSettings(max_batch_size=max_batch_size, max_queue_delay_ms=delay_ms), **kwargs
        )
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.close()


def test_batcher_stacked_requests_get_their_own_rows_back(iris: OnnxModel, make_batcher: Any) -> None:
    requests = [iris_request(iris, rows, offset) for offset, rows in enumerate([1, 3, 2])]
    batcher = make_batcher(iris, max_batch_size=6)  # fires when all six rows are queued

    answers = infer_concurrently(batcher, requests)

    for prepared, answer in zip(requests, answers, strict=True):
        expected = alone(iris, prepared)
        assert answer["label"].shape == (prepared.rows,)
        np.testing.assert_array_equal(answer["label"], expected["label"])
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"], rtol=1e-6)
    stats = batcher.stats()
    assert (stats.batches, stats.requests, stats.rows, stats.largest_batch_requests) == (1, 3, 6, 3)


def test_batcher_never_runs_more_rows_than_max_batch_size(iris: OnnxModel, make_batcher: Any) -> None:
    requests = [iris_request(iris, 1, offset) for offset in range(8)] + [iris_request(iris, 2, 9)]
    batcher = make_batcher(iris, max_batch_size=4, delay_ms=50)

    answers = infer_concurrently(batcher, requests)

    for prepared, answer in zip(requests, answers, strict=True):
        np.testing.assert_array_equal(answer["label"], alone(iris, prepared)["label"])
    stats = batcher.stats()
    assert stats.largest_batch_rows <= 4
    assert (stats.requests, stats.rows) == (9, 10)
    assert stats.batches >= 3


def test_batcher_request_larger_than_max_batch_size_runs_alone_unsplit(iris: OnnxModel, make_batcher: Any) -> None:
    big = iris_request(iris, 5)
    batcher = make_batcher(iris, max_batch_size=2)

    answer = batcher.infer(big, RESULT_TIMEOUT_S)

    np.testing.assert_array_equal(answer["label"], alone(iris, big)["label"])
    assert batcher.stats().largest_batch_rows == 5


def test_batcher_lone_request_runs_once_the_delay_passes(iris: OnnxModel, make_batcher: Any) -> None:
    batcher = make_batcher(iris, max_batch_size=32, delay_ms=100)
    started = time.monotonic()

    answer = batcher.infer(iris_request(iris, 1), RESULT_TIMEOUT_S)

    # It waited for neighbours (the delay), then ran without them instead of waiting for a full batch.
    assert time.monotonic() - started >= 0.09
    assert answer["label"].shape == (1,)
    assert batcher.stats().batches == 1


def test_batcher_request_arriving_within_the_delay_joins_the_batch(iris: OnnxModel, make_batcher: Any) -> None:
    batcher = make_batcher(iris, max_batch_size=32, delay_ms=2_000)
    first, second = iris_request(iris, 1), iris_request(iris, 2, 5)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first_answer = pool.submit(batcher.infer, first, RESULT_TIMEOUT_S)
        time.sleep(0.05)
        second_answer = pool.submit(batcher.infer, second, RESULT_TIMEOUT_S)
        results = first_answer.result(), second_answer.result()

    assert [result["label"].shape for result in results] == [(1,), (2,)]
    assert (batcher.stats().batches, batcher.stats().largest_batch_requests) == (1, 2)


def test_batcher_waiting_only_for_admitted_requests_skips_the_delay_when_none_is_coming(
    iris: OnnxModel, make_batcher: Any
) -> None:
    # With a 10 s delay and a 3 s result timeout, the request only succeeds if the runner did not wait.
    batcher = make_batcher(iris, delay_ms=10_000, wait_only_for_admitted=True)
    batcher.admit()
    batcher.admit()
    batcher.withdraw()  # the second request failed validation and will never be queued

    answer = batcher.infer(iris_request(iris, 1), RESULT_TIMEOUT_S, admitted=True)

    assert answer["label"].shape == (1,)


def test_batcher_waiting_only_for_admitted_requests_waits_for_an_admitted_one(
    iris: OnnxModel, make_batcher: Any
) -> None:
    batcher = make_batcher(iris, delay_ms=10_000, wait_only_for_admitted=True)
    batcher.admit()
    batcher.admit()
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(batcher.infer, iris_request(iris, 1), RESULT_TIMEOUT_S, admitted=True)
        time.sleep(0.05)
        second = pool.submit(batcher.infer, iris_request(iris, 1, 3), RESULT_TIMEOUT_S, admitted=True)
        first.result(), second.result()

    assert (batcher.stats().batches, batcher.stats().largest_batch_requests) == (1, 2)


def test_batcher_does_not_stack_requests_with_different_batch_keys(row_sum: OnnxModel, make_batcher: Any) -> None:
    narrow = [prepare(row_sum, "x", "FP32", [[1.0, 2.0, 3.0]], [1, 3]) for _ in range(2)]
    wide = [prepare(row_sum, "x", "FP32", [[1.0, 1.0, 1.0, 1.0, 1.0]], [1, 5]) for _ in range(2)]
    assert narrow[0].batch_key != wide[0].batch_key
    batcher = make_batcher(row_sum, max_batch_size=32, delay_ms=200)

    answers = infer_concurrently(batcher, [narrow[0], wide[0], narrow[1], wide[1]])

    assert [answer["total"].tolist() for answer in answers] == [[6.0], [5.0], [6.0], [5.0]]
    stats = batcher.stats()
    assert (stats.batches, stats.largest_batch_requests, stats.fallbacks) == (2, 2, 0)


def test_batcher_failing_request_fails_alone(lookup: OnnxModel, make_batcher: Any) -> None:
    good = [prepare(lookup, "index", "INT64", [index], [1]) for index in (1, 4)]
    bad = prepare(lookup, "index", "INT64", [99], [1])
    batcher = make_batcher(lookup, max_batch_size=3)

    first, failed, second = infer_concurrently(batcher, [good[0], bad, good[1]])

    assert first["row"].tolist() == [[2.0, 3.0]]
    assert second["row"].tolist() == [[8.0, 9.0]]
    assert isinstance(failed, Exception)
    assert "out of" in str(failed)  # onnxruntime's own message: indices element out of data bounds
    assert batcher.stats().fallbacks == 1


def test_batcher_keeps_serving_after_a_failed_batch(lookup: OnnxModel, make_batcher: Any) -> None:
    batcher = make_batcher(lookup, max_batch_size=2)
    infer_concurrently(
        batcher, [prepare(lookup, "index", "INT64", [99], [1]), prepare(lookup, "index", "INT64", [0], [1])]
    )

    answers = infer_concurrently(batcher, [prepare(lookup, "index", "INT64", [index], [1]) for index in (2, 3)])

    assert [answer["row"].tolist() for answer in answers] == [[[4.0, 5.0]], [[6.0, 7.0]]]
    assert batcher.stats().fallbacks == 1


def test_batching_is_off_for_a_model_without_a_free_batch_dim(tmp_path: Path) -> None:
    config = parse_model_config(
        signature(
            "fixed",
            [{"name": "input", "datatype": "FP32", "shape": [1, 4]}],
            [{"name": "scores", "datatype": "FP32", "shape": [1, 3]}],
        )
    )
    model = OnnxModel(config, fixed_batch_graph(tmp_path / "model.onnx"), intra_op_threads=1)
    assert not model.batchable
    with pytest.raises(ValueError, match="no free batch dim"):
        DynamicBatcher(model, BatchingSettings())

    service = InvocationService(model, batching=BatchingSettings())
    body = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'
    answer = service.invoke(body)
    assert answer.status == 200
    assert json.loads(answer.body)["outputs"][0]["data"] == [10.0, 10.0, 10.0]
    assert json.loads(service.batching_stats().body)["enabled"] is False


def test_batching_is_off_when_the_config_says_free_but_the_graph_fixes_the_batch(tmp_path: Path) -> None:
    config = parse_model_config(
        signature(
            "fixed",
            [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
            [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}],
        )
    )
    assert not OnnxModel(config, fixed_batch_graph(tmp_path / "model.onnx")).batchable


def test_service_answers_concurrent_requests_through_the_batcher(iris: OnnxModel) -> None:
    service = InvocationService(iris, batching=BatchingSettings(max_batch_size=8, max_queue_delay_ms=LONG_DELAY_MS))
    bodies = [
        json.dumps(
            {
                "id": str(index),
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [index % 7 + 0.5, 3, 5, 2]}],
            }
        ).encode()
        for index in range(8)
    ]
    unbatched = InvocationService(iris)
    barrier = threading.Barrier(8)

    def call(body: bytes) -> Any:
        barrier.wait()
        return service.invoke(body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, bodies))

    assert [json.loads(answer.body) for answer in answers] == [
        json.loads(unbatched.invoke(body).body) for body in bodies
    ]
    stats = json.loads(service.batching_stats().body)
    assert stats["enabled"] is True
    assert stats["requests"] == 8
    assert stats["batches"] < 8
    service.model = None  # stops the runner thread


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, BatchingSettings(enabled=True, max_batch_size=32, max_queue_delay_ms=1.0)),
        ({"SERVING_BATCHING": "off"}, BatchingSettings(enabled=False)),
        (
            {"SERVING_MAX_BATCH_SIZE": "64", "SERVING_MAX_QUEUE_DELAY_MS": "0"},
            BatchingSettings(max_batch_size=64, max_queue_delay_ms=0.0),
        ),
    ],
)
def test_batching_settings_from_environ_reads_each_variable(
    environ: dict[str, str], expected: BatchingSettings
) -> None:
    assert BatchingSettings.from_environ(environ) == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"SERVING_BATCHING": "maybe"},
        {"SERVING_MAX_BATCH_SIZE": "0"},
        {"SERVING_MAX_QUEUE_DELAY_MS": "-1"},
        {"SERVING_MAX_BATCH_SIZE": "x"},
    ],
)
def test_batching_settings_from_environ_rejects_bad_values(environ: dict[str, str]) -> None:
    with pytest.raises(BatchingConfigError):
        BatchingSettings.from_environ(environ)


@pytest.mark.parametrize(
    "config",
    [
        BatchingConfig(enabled=True),
        BatchingConfig(enabled=False, max_batch_size=7, max_queue_delay_ms=0.0),
        BatchingConfig(enabled=True, max_batch_size=64, max_queue_delay_ms=2.5),
    ],
)
def test_batching_settings_read_from_the_container_environment_equal_the_config_block(config: BatchingConfig) -> None:
    # The templates write config.environment() onto the CfnModel; local mode uses from_config directly.
    assert BatchingSettings.from_environ(config.environment()) == BatchingSettings.from_config(config)


@pytest.mark.parametrize("batching", [BatchingSettings(enabled=False), BatchingSettings(max_queue_delay_ms=0.0)])
def test_service_answers_422_when_onnxruntime_refuses_the_values_and_500_when_the_model_fails(
    tmp_path: Path, batching: BatchingSettings
) -> None:
    (tmp_path / "lookup.onnx").write_bytes(lookup_model())
    (tmp_path / "broken.onnx").write_bytes(broken_model())
    lookup = OnnxModel(parse_model_config(signature("lookup", **LOOKUP_TENSORS)), tmp_path / "lookup.onnx")
    broken = OnnxModel(parse_model_config(signature("broken", **BROKEN_TENSORS)), tmp_path / "broken.onnx")
    refused = InvocationService(lookup, batching=batching).invoke(
        b'{"inputs":[{"name":"index","datatype":"INT64","shape":[1],"data":[99]}]}'
    )
    failed = InvocationService(broken, batching=batching).invoke(
        b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'
    )
    assert refused.status == 422
    assert "model 'lookup' cannot process the request's values" in json.loads(refused.body)["error"]
    assert failed.status == 500
    assert "model 'broken' failed: Fail:" in json.loads(failed.body)["error"]
