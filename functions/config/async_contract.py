"""What the async path's pieces agree on: the bucket's layout, the job table's and the idempotency table's
schemas. Read by the router, the result and sweeper functions, the CDK constructs and local mode."""

from __future__ import annotations

from typing import Final

# The async bucket's layout, per physical endpoint name: the router writes inputs, SageMaker writes outputs
# and failures. The endpoint's IAM grants are scoped to these prefixes (infra/constructs/async_storage.py).
INPUT_PREFIX: Final[str] = "input/"
OUTPUT_PREFIX: Final[str] = "output/"
FAILURE_PREFIX: Final[str] = "failure/"
# Written beside a job's input only when the endpoint accepted the job but the job table could not be told:
# it holds the output and failure locations, so the sweeper can still follow the job (never a lost job).
ACCEPTED_MARKER_SUFFIX: Final[str] = ".accepted.json"

# The job table's schema, shared by the DynamoDB adapter, the CDK construct and local mode.
JOB_TABLE_PARTITION_KEY: Final[str] = "job_id"
JOB_STATUS_ATTRIBUTE: Final[str] = "job_status"
JOB_DEADLINE_ATTRIBUTE: Final[str] = "deadline"
JOB_STATUS_INDEX: Final[str] = "by_status"  # job_status + deadline: the sweeper's "open and overdue" query
JOB_TTL_ATTRIBUTE: Final[str] = "expires_at"
# The submitter's normalized identity; the only caller who may read the job (functions/handlers/router/caller.py).
JOB_OWNER_ATTRIBUTE: Final[str] = "submitted_by"
# Powertools idempotency's DynamoDB layout (its defaults).
IDEMPOTENCY_PARTITION_KEY: Final[str] = "id"
IDEMPOTENCY_TTL_ATTRIBUTE: Final[str] = "expiration"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key); ValueError for anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key
