"""The SageMaker container contract as plain functions: ``GET /ping`` and ``POST /invocations``.

Transport-free so the same code answers inside the container's HTTP server, the local SageMaker runtime
and the tests. Answers are ``(status, body)``; bodies are OIP JSON or ``{"error": ...}``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.domain.binary_tensors import SAGEMAKER_BINARY_TYPE, encode_response, take_output_encoding
from functions.domain.errors import (
    InferenceError,
    InvalidRequestError,
    ModelFailedError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from functions.domain.validation import validate_infer_request
from serving.batching import BatchingSettings, DynamicBatcher

if TYPE_CHECKING:
    from functions.adapters.onnx_model import OnnxModel

logger = logging.getLogger(__name__)
# SageMaker passes the caller's CustomAttributes in this header (at most 1,024 characters); the router puts
# its request's correlation id there, so an invocation's log line names the API request it serves.
CUSTOM_ATTRIBUTES_HEADER: Final[str] = "X-Amzn-SageMaker-Custom-Attributes"
LOGGED_ATTRIBUTES_CHARS: Final[int] = 1024


@dataclass(frozen=True)
class Answer:
    """``header_length``: a binary tensor answer's JSON header length (``Inference-Header-Content-Length``)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    header_length: int | None = None


def _error(status: int, message: str) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode())


class InvocationService:
    """One model served the way SageMaker expects a container to serve it.

    ``model`` is None while the model is still loading: ``ping`` then answers 503 so SageMaker does not
    route traffic to a container that cannot answer yet. With ``batching`` enabled and a model whose batch
    dim is free, concurrent ``invoke`` calls share onnxruntime runs (:mod:`serving.batching`);
    without it each call runs on its own. ``timeout_s`` bounds how long a request waits for its run.
    ``max_body_bytes`` is the largest body ``invoke`` accepts (413 above it); the default is the router's
    Lambda payload limit, since every body this project sends a container passed through the router.

    Example:
        >>> service = InvocationService(OnnxModel(config, path), batching=BatchingSettings())
        >>> service.invoke(b'{"inputs": [...]}').status
        200
    """

    def __init__(
        self,
        model: OnnxModel | None = None,
        *,
        batching: BatchingSettings | None = None,
        timeout_s: float = 60.0,
        max_body_bytes: int = LAMBDA_MAX_BODY_BYTES,
    ) -> None:
        self.batching = batching or BatchingSettings(enabled=False)
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._model: OnnxModel | None = None
        self._batcher: DynamicBatcher | None = None
        self.model = model

    @property
    def model(self) -> OnnxModel | None:
        return self._model

    @model.setter
    def model(self, model: OnnxModel | None) -> None:
        previous = self._batcher
        self._batcher = None
        if model is not None and self.batching.enabled:
            if model.batchable:
                self._batcher = DynamicBatcher(model, self.batching, wait_only_for_admitted=True)
            else:
                logger.info("model %r has no free batch dim: batching is off", model.config.name)
        self._model = model
        if previous is not None:
            previous.close()

    def ping(self) -> Answer:
        if self.model is None:
            return _error(503, "model is loading")
        return Answer(200, b'{"status":"healthy"}')

    def batching_stats(self) -> Answer:
        """Whether requests are being stacked, and how much: counters since the model loaded."""
        batcher = self._batcher
        stats: dict[str, Any] = {
            "enabled": batcher is not None,
            "max_batch_size": self.batching.max_batch_size,
            "max_queue_delay_ms": self.batching.max_queue_delay_ms,
        }
        if batcher is not None:
            stats.update(batcher.stats().as_dict())
        return Answer(200, json.dumps(stats).encode())

    def invoke(self, body: bytes, header_length: str | None = None, custom_attributes: str | None = None) -> Answer:
        """``header_length``: the body's JSON header length when it is in the binary tensor data extension
        (``Inference-Header-Content-Length``, or ``json-header-size`` in Triton's SageMaker content type).
        ``custom_attributes``: the invocation's :data:`CUSTOM_ATTRIBUTES_HEADER`, logged with its answer."""
        started = time.perf_counter()
        answer = self._answer(body, header_length)
        if custom_attributes is not None:
            logger.info(
                "invocation answered %d in %.1f ms; custom attributes %r",
                answer.status,
                (time.perf_counter() - started) * 1000,
                custom_attributes[:LOGGED_ATTRIBUTES_CHARS],
            )
        return answer

    def _answer(self, body: bytes, header_length: str | None) -> Answer:
        model = self.model
        batcher = self._batcher
        if model is None:
            return _error(503, "model is loading")
        if batcher is not None:
            batcher.admit()
        try:
            try:
                # The router already held the body to the route's limit; async bodies exceed the sync limit.
                request = validate_infer_request(
                    model.config, body, max_body_bytes=self.max_body_bytes, header_length=header_length
                )
                encoding = take_output_encoding(request.document)
                prepared = model.prepare(request)
            except Exception:
                if batcher is not None:
                    batcher.withdraw()
                raise
            if batcher is not None:
                outputs = batcher.infer(prepared, self.timeout_s, admitted=True)
            else:
                results = model.run(prepared.output_names, prepared.feeds)
                outputs = dict(zip(prepared.output_names, results, strict=True))
            answer = json.dumps(model.respond(prepared, outputs), separators=(",", ":")).encode()
            binary = encode_response(answer, encoding) if encoding.any_binary else None
            if binary is None:
                return Answer(200, answer)
            data, length = binary
            return Answer(200, data, f"{SAGEMAKER_BINARY_TYPE};json-header-size={length}", length)
        except (InvalidRequestError, ModelNotFoundError) as error:
            return _error(400, error.message)
        except PayloadTooLargeError as error:
            return _error(413, error.message)
        except ModelFailedError as error:  # onnxruntime could not run it: 422 for the request's values, else 500
            if error.original_status >= 500:
                logger.error("inference failed: %s", error.message)
            else:
                logger.warning("the model rejected the request: %s", error.message)
            return _error(error.original_status, error.message)
        except InferenceError as error:
            return _error(500, error.message)
        except TimeoutError:
            return _error(504, f"inference did not finish within {self.timeout_s:g} s")
        except Exception as error:  # the model's own failure: report it, keep serving
            logger.exception("inference failed")
            return _error(500, f"inference failed: {type(error).__name__}: {error}")
