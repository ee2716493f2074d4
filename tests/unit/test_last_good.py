"""The last-good cache's byte bound: an answer's ``id`` is stripped before it is cached, an answer over the
entry limit is skipped, and the cached bytes never pass ``max_bytes``, however many answers come."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc

import pytest

from functions.config.model_types import ResilienceConfig
from functions.config.models import load_models_config
from functions.domain.failures import DegradedBy, FailureReason
from functions.domain.fallbacks import fallback_answer
from functions.domain.last_good import ENTRY_OVERHEAD_BYTES, LastGoodCache, last_good_key
from functions.domain.validation import InferRequest, validate_infer_request

MB = 1024 * 1024


def answer(request_id: str, value: float = 1.0) -> bytes:
    outputs = [{"name": "p", "datatype": "FP32", "shape": [1], "data": [value]}]
    return json.dumps({"model_name": "iris", "id": request_id, "outputs": outputs}, separators=(",", ":")).encode()


def retained_bytes_after(action: object) -> int:
    """How much more memory is held after ``action()`` than before (transient allocations not counted)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_thousand_answers_echoing_a_megabyte_id_do_not_grow_the_cache() -> None:
    cache = LastGoodCache(max_entries=1000, max_age_s=3600)

    def put_all() -> None:
        for index in range(1000):
            cache.put(f"question-{index}", answer(f"{index:08d}" + "x" * MB))

    retained = retained_bytes_after(put_all)
    assert retained < MB, f"the cache kept {retained} bytes"
    assert cache.size_bytes <= cache.max_bytes


def test_the_id_is_stripped_so_an_entry_costs_its_outputs_only() -> None:
    cache = LastGoodCache(max_entries=1000, max_age_s=3600)
    for index in range(1000):
        cache.put(f"question-{index}", answer("y" * 32 * 1024, float(index)))  # under the 64 KiB entry limit
    assert len(cache) == 1000
    cached = cache.get("question-7")
    assert cached is not None
    assert json.loads(cached) == {"model_name": "iris", "outputs": [json.loads(answer("q", 7.0))["outputs"][0]]}
    assert cache.size_bytes < 1000 * (200 + ENTRY_OVERHEAD_BYTES)


def test_the_least_recently_used_go_once_the_bytes_pass_the_bound() -> None:
    entry = len(answer("", 0.0)) - len(b',"id":""') + ENTRY_OVERHEAD_BYTES
    cache = LastGoodCache(max_entries=1000, max_age_s=3600, max_bytes=3 * entry, max_answer_bytes=entry)
    for index in range(5):
        cache.put(str(index), answer("q", 0.0))
    assert [cache.get(str(index)) is not None for index in range(5)] == [False, False, True, True, True]
    assert cache.size_bytes == 3 * entry
    cache.put("3", answer("q", 0.0))  # replacing an entry does not count it twice
    assert (len(cache), cache.size_bytes) == (3, 3 * entry)


def test_an_answer_over_the_entry_limit_is_skipped_and_the_older_answer_stays() -> None:
    cache = LastGoodCache(max_age_s=3600, max_answer_bytes=1024)
    cache.put("q", answer("first"))
    cache.put("q", answer("second" + "z" * 1024))
    cached = cache.get("q")
    assert cached is not None
    assert b"second" not in cached
    assert "id" not in json.loads(cached)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_an_answer_that_is_not_a_json_object_is_not_cached(body: bytes) -> None:
    cache = LastGoodCache(max_age_s=3600)
    cache.put("q", body)
    assert (cache.get("q"), len(cache), cache.size_bytes) == (None, 0, 0)


def test_an_answer_without_an_id_is_cached_as_it_is() -> None:
    cache = LastGoodCache(max_age_s=3600)
    body = b'{"model_name": "iris", "outputs": []}'
    cache.put("q", body)
    assert cache.get("q") is body


@pytest.mark.parametrize(
    ("max_bytes", "max_answer_bytes"), [(1024, 1024), (MB, 0)], ids=["entry-larger-than-cache", "zero-entry"]
)
def test_bounds_that_cannot_hold_an_entry_are_refused(max_bytes: int, max_answer_bytes: int) -> None:
    with pytest.raises(ValueError, match="max_answer_bytes"):
        LastGoodCache(max_bytes=max_bytes, max_answer_bytes=max_answer_bytes)


def test_the_fallback_answers_with_the_current_requests_id_or_none() -> None:
    iris = load_models_config().model("iris")
    assert iris is not None
    model = dataclasses.replace(iris, resilience=ResilienceConfig(fallback="last_good"))
    inputs = [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]

    def request(request_id: str | None) -> InferRequest:
        document = {"inputs": inputs} if request_id is None else {"id": request_id, "inputs": inputs}
        return validate_infer_request(model, json.dumps(document).encode())

    cache = LastGoodCache(max_age_s=3600)
    first = request("first-" + "x" * 1000)
    cache.put(last_good_key(first), answer("first-" + "x" * 1000))
    for request_id in ("second", None):
        degraded = fallback_answer(request(request_id), FailureReason.DEADLINE, cache)
        assert degraded is not None
        assert degraded.answered_by is DegradedBy.LAST_GOOD
        document = json.loads(degraded.body)
        assert document.get("id") == request_id
        assert document["outputs"] == json.loads(answer(""))["outputs"]
