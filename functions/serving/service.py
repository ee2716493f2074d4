"""The SageMaker container contract as plain functions: ``GET /ping`` and ``POST /invocations``.

Transport-free so the same code answers inside the container's HTTP server, the local SageMaker runtime
and the tests. Answers are ``(status, body)``; bodies are OIP JSON or ``{"error": ...}``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from functions.common.errors import InferenceError, InvalidRequestError, ModelNotFoundError, PayloadTooLargeError
from functions.routing.validation import validate_infer_request

if TYPE_CHECKING:
    from functions.serving.onnx_model import OnnxModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def _error(status: int, message: str) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode())


class InvocationService:
    """One model served the way SageMaker expects a container to serve it.

    ``model`` is None while the model is still loading: ``ping`` then answers 503 so SageMaker does not
    route traffic to a container that cannot answer yet.
    """

    def __init__(self, model: OnnxModel | None = None) -> None:
        self.model = model

    def ping(self) -> Answer:
        if self.model is None:
            return _error(503, "model is loading")
        return Answer(200, b'{"status":"healthy"}')

    def invoke(self, body: bytes) -> Answer:
        model = self.model
        if model is None:
            return _error(503, "model is loading")
        try:
            request = validate_infer_request(model.config, body)
            return Answer(200, json.dumps(model.predict(request), separators=(",", ":")).encode())
        except (InvalidRequestError, ModelNotFoundError) as error:
            return _error(400, error.message)
        except PayloadTooLargeError as error:
            return _error(413, error.message)
        except InferenceError as error:
            return _error(500, error.message)
        except Exception as error:  # the model's own failure: report it, keep serving
            logger.exception("inference failed")
            return _error(500, f"inference failed: {type(error).__name__}: {error}")
