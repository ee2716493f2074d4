"""Infer bodies in the binary tensor data extension (:mod:`functions.domain.binary_tensors`), turned into the
plain JSON request every path after the handler takes: validation, the model's endpoint, the async input, the
last-good cache and the in-Lambda model all see JSON, and the container is asked for a JSON answer. The
binary-output flags are taken out on the way; the handler encodes the answer with them.

The decoded request is re-encoded as JSON rather than forwarded binary: a SageMaker endpoint takes one content
type per call, and the async input, the fallbacks and the in-Lambda models read JSON. ``python -m
bench.binary_tensors`` measures what that costs the router.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from functions.domain.binary_tensors import HEADER_LENGTH, OutputEncoding, decode_request, take_output_encoding
from functions.domain.body_guard import parse_json_body
from functions.domain.caller_policy import permitted_modes, require_mode
from functions.domain.callers import CallerIdentity
from functions.domain.infer import InferUseCase
from functions.domain.validation import max_items

# A JSON body holding neither key asks for no binary output: it goes on untouched, never parsed here.
_FLAG_MARK: Final[bytes] = b'"binary_data'


def header_length(headers: Mapping[str, str]) -> str | None:
    """``Inference-Header-Content-Length``, whatever its case (API Gateway passes headers as the client sent them)."""
    wanted = HEADER_LENGTH.lower()
    return next((value for name, value in headers.items() if name.lower() == wanted), None)


def plain_json_body(
    use_case: InferUseCase, model: str, identity: CallerIdentity, body: bytes, length: str | None
) -> tuple[bytes, OutputEncoding]:
    """The JSON request ``body`` stands for, and the outputs it wants binary.

    A refused caller is refused first, and an unknown model is a 404, as the use case itself would answer
    them: neither learns anything from the body's framing."""
    if length is None and _FLAG_MARK not in body:
        return body, OutputEncoding()
    require_mode(permitted_modes(use_case.caller_policy, identity, model), model)
    limit = max_items(use_case.model(model))
    document = decode_request(body, length, limit) if length is not None else parse_json_body(body, limit)
    if not isinstance(document, dict):
        return body, OutputEncoding()  # validation answers it as for any JSON body
    encoding = take_output_encoding(document)
    if length is None and encoding == OutputEncoding():
        return body, encoding
    return json.dumps(document, separators=(",", ":")).encode(), encoding
