"""A client's ``Idempotency-Key`` makes a retried async submit return the same job (Powertools idempotency
on DynamoDB). The same key with a different body is refused rather than silently answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from functions.common.errors import ConflictError, IdempotencyKeyReusedError


class IdempotentSubmitter:
    def __init__(self, table: str, expires_after_s: int = 24 * 3600) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="key", payload_validation_jmespath="body_sha256", expires_after_seconds=expires_after_s
        )
        persistence = DynamoDBPersistenceLayer(table_name=table)

        @idempotent_function(  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
            data_keyword_argument="submission", persistence_store=persistence, config=self.config
        )
        def submit_once(submission: dict[str, str], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return action()

        self._submit_once = submit_once

    def submit(self, key: str, body_sha256: str, action: Callable[[], dict[str, Any]], context: Any) -> dict[str, Any]:
        self.config.register_lambda_context(context)
        try:
            result: dict[str, Any] = self._submit_once(
                submission={"key": key, "body_sha256": body_sha256}, action=action
            )
        except IdempotencyValidationError as error:
            raise IdempotencyKeyReusedError("Idempotency-Key was already used with a different request body") from error
        except IdempotencyAlreadyInProgressError as error:
            raise ConflictError(
                "a request with this Idempotency-Key is still being submitted; retry shortly"
            ) from error
        return result
