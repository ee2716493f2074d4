"""A client's ``Idempotency-Key`` makes a retried async submit return the same job (Powertools idempotency
on DynamoDB). The same key with a different body is refused rather than silently answered.

A key is scoped by the caller and the model: two callers (or one caller, two models) using the same key get
their own jobs. The caller is the router's normalized one (functions/handlers/router/caller.py): an assumed
role without its session name, so a retry after a credential refresh still finds its job.

The DynamoDB client is the project's (``aws_clients``: standard retries, short timeouts), not
the botocore defaults Powertools would make (legacy retries, 60 s reads: far past API Gateway's 29 s).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from functions.adapters import aws_clients
from functions.adapters.aws_errors import RETRY_AFTER_S, error_code, is_transient
from functions.domain.errors import ConflictError, EndpointUnavailableError, IdempotencyKeyReusedError
from functions.domain.failures import FailureReason

logger = logging.getLogger(__name__)
# What identifies one submission: who asked, for which model, under which key (a JMESPath multiselect list).
KEY_EXPRESSION: Final[str] = "[caller, model, key]"


class IdempotentSubmitter:
    """Example:
    >>> submitter = IdempotentSubmitter("idempotency-table")
    >>> submitter.submit("order-4711", model="iris", caller="userArn:arn:aws:iam::123456789012:role/app",
    ...                  body_sha256=digest, action=lambda: {"id": "...", "status": "queued"}, context=context)
    """

    def __init__(self, table: str, expires_after_s: int = 24 * 3600, dynamodb_client: Any | None = None) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath=KEY_EXPRESSION,
            payload_validation_jmespath="body_sha256",
            expires_after_seconds=expires_after_s,
        )
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table, boto3_client=dynamodb_client or aws_clients.client("dynamodb")
        )

        @idempotent_function(  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
            data_keyword_argument="submission", persistence_store=self.persistence, config=self.config
        )
        def submit_once(submission: dict[str, str], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return action()

        self._submit_once = submit_once

    def submit(
        self,
        key: str,
        *,
        model: str,
        caller: str | None,
        body_sha256: str,
        action: Callable[[], dict[str, Any]],
        context: Any,
    ) -> dict[str, Any]:
        self.config.register_lambda_context(context)
        submitted: list[dict[str, Any]] = []

        def run() -> dict[str, Any]:
            submitted.append(action())
            return submitted[0]

        submission = {"key": key, "model": model, "caller": caller or "", "body_sha256": body_sha256}
        try:
            result: dict[str, Any] = self._submit_once(submission=submission, action=run)
        except IdempotencyValidationError as error:
            raise IdempotencyKeyReusedError("Idempotency-Key was already used with a different request body") from error
        except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError) as error:
            raise ConflictError(
                "a request with this Idempotency-Key is still being submitted; retry shortly"
            ) from error
        except IdempotencyPersistenceLayerError as error:
            if submitted:
                # The job exists and the endpoint has it: the caller must learn its id. Only the replay of this
                # key is lost (a retry with it after the in-progress window submits again).
                logger.error("job %s submitted, but its idempotency record was not saved: %r", submitted[0].get("id"),
                             error.__cause__)  # fmt: skip
                return submitted[0]
            cause = error.__cause__
            if isinstance(cause, Exception) and is_transient(cause):
                raise EndpointUnavailableError(
                    f"the idempotency table (DynamoDB) is unavailable ({error_code(cause)}); retry later",
                    reason=FailureReason.IDEMPOTENCY_TABLE_UNAVAILABLE,
                    retry_after_seconds=RETRY_AFTER_S,
                ) from error
            raise
        return result
