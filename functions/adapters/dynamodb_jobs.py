"""DynamoDB job table adapter.

The table's schema (partition key, the sweeper's status + deadline index, the TTL attribute) is declared once in
``functions/domain/job_records.py``, which the CDK construct and local mode read too. Every state change is a
conditional write, so a duplicate or late notification can never move a settled job again. Transient DynamoDB
failures raise the domain's 503 error (functions/adapters/aws_errors.py).
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from functions.adapters import aws_clients
from functions.adapters.aws_errors import unavailable_when_transient
from functions.config.async_contract import (
    JOB_DEADLINE_ATTRIBUTE,
    JOB_OWNER_ATTRIBUTE,
    JOB_STATUS_ATTRIBUTE,
    JOB_STATUS_INDEX,
    JOB_TABLE_PARTITION_KEY,
    JOB_TTL_ATTRIBUTE,
)
from functions.domain.failures import FailureReason
from functions.domain.job_records import OPEN_STATUSES, QUEUED, SUBMITTING, Job

STORE: Final[str] = "the job table (DynamoDB)"
# The API request that submitted the job (functions/domain/job_records.py ``Job.correlation_id``).
CORRELATION_ID_ATTRIBUTE: Final[str] = "correlation_id"
REASON: Final[FailureReason] = FailureReason.JOB_TABLE_UNAVAILABLE
# The schema's attribute names, under placeholders: every expression below uses these.
NAMES: Final[dict[str, str]] = {
    "#id": JOB_TABLE_PARTITION_KEY,
    "#status": JOB_STATUS_ATTRIBUTE,
    "#deadline": JOB_DEADLINE_ATTRIBUTE,
    "#expires": JOB_TTL_ATTRIBUTE,
}


def _is_condition_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _key(job_id: str) -> dict[str, Any]:
    return {JOB_TABLE_PARTITION_KEY: {"S": job_id}}


class DynamoDBJobStore:
    def __init__(self, table: str, record_ttl_s: int, dynamodb_client: Any | None = None) -> None:
        self.table = table
        self.record_ttl_s = record_ttl_s
        self._client = dynamodb_client

    @property
    def dynamodb(self) -> Any:
        return self._client or aws_clients.client("dynamodb")

    def create(self, job: Job) -> None:
        item = {
            JOB_TABLE_PARTITION_KEY: {"S": job.job_id},
            "model": {"S": job.model},
            "endpoint": {"S": job.endpoint},
            JOB_STATUS_ATTRIBUTE: {"S": job.status},
            "created_at": {"N": str(job.created_at)},
            JOB_DEADLINE_ATTRIBUTE: {"N": str(job.deadline)},
            JOB_TTL_ATTRIBUTE: {"N": str(job.deadline + self.record_ttl_s)},
            "input_location": {"S": job.input_location},
        }
        if job.owner is not None:
            item[JOB_OWNER_ATTRIBUTE] = {"S": job.owner}
        if job.correlation_id is not None:
            item[CORRELATION_ID_ATTRIBUTE] = {"S": job.correlation_id}
        with unavailable_when_transient(STORE, REASON):
            self.dynamodb.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": JOB_TABLE_PARTITION_KEY},
            )  # fmt: skip

    def mark_queued(self, job_id: str, output_location: str, failure_location: str | None, *, deadline: int) -> bool:
        """Submitting -> queued with its locations and full deadline; False when it is no longer submitting
        (a fast notification settled it first, or the sweeper adopted it)."""
        values: dict[str, Any] = {
            ":queued": {"S": QUEUED},
            ":submitting": {"S": SUBMITTING},
            ":out": {"S": output_location},
            ":deadline": {"N": str(deadline)},
            ":expires": {"N": str(deadline + self.record_ttl_s)},
        }
        update = "SET #status = :queued, output_location = :out, #deadline = :deadline, #expires = :expires"
        if failure_location:
            values[":fail"] = {"S": failure_location}
            update += ", failure_location = :fail"
        try:
            with unavailable_when_transient(STORE, REASON):
                self.dynamodb.update_item(
                    TableName=self.table, Key=_key(job_id), UpdateExpression=update,
                    ConditionExpression="#status = :submitting", ExpressionAttributeValues=values,
                    ExpressionAttributeNames={n: NAMES[n] for n in ("#status", "#deadline", "#expires")},
                )  # fmt: skip
        except ClientError as error:
            if _is_condition_failure(error):  # already settled by a fast notification: keep that
                return False
            raise
        return True

    def delete(self, job_id: str) -> None:
        with unavailable_when_transient(STORE, REASON):
            self.dynamodb.delete_item(TableName=self.table, Key=_key(job_id))

    def get(self, job_id: str) -> Job | None:
        with unavailable_when_transient(STORE, REASON):
            item = self.dynamodb.get_item(TableName=self.table, Key=_key(job_id), ConsistentRead=True).get("Item")
        return None if item is None else _job(item)

    def settle(self, job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool:
        values: dict[str, Any] = {
            ":status": {"S": status},
            **{f":open{i}": {"S": s} for i, s in enumerate(OPEN_STATUSES)},
        }
        names = {"#id": JOB_TABLE_PARTITION_KEY, "#status": JOB_STATUS_ATTRIBUTE}
        update = "SET #status = :status"
        if output_location is not None:
            values[":out"] = {"S": output_location}
            update += ", output_location = :out"
        if error is not None:
            values[":error"] = {"S": error}
            names["#error"] = "error"
            update += ", #error = :error"
        open_list = ", ".join(f":open{i}" for i in range(len(OPEN_STATUSES)))
        try:
            with unavailable_when_transient(STORE, REASON):
                self.dynamodb.update_item(
                    TableName=self.table, Key=_key(job_id), UpdateExpression=update,
                    ConditionExpression=f"attribute_exists(#id) AND #status IN ({open_list})",
                    ExpressionAttributeValues=values, ExpressionAttributeNames=names,
                )  # fmt: skip
        except ClientError as failure:
            if _is_condition_failure(failure):
                return False
            raise
        return True

    def oldest_open_created_at(self) -> int | None:
        """When the oldest job still open was created; the index sorts each status by deadline."""
        oldest: int | None = None
        for status in OPEN_STATUSES:
            with unavailable_when_transient(STORE, REASON):
                items = self.dynamodb.query(
                    TableName=self.table, IndexName=JOB_STATUS_INDEX, KeyConditionExpression="#status = :status",
                    ExpressionAttributeNames={"#status": JOB_STATUS_ATTRIBUTE},
                    ExpressionAttributeValues={":status": {"S": status}}, ScanIndexForward=True, Limit=1,
                ).get("Items", [])  # fmt: skip
            for item in items:
                created = int(item["created_at"]["N"])
                oldest = created if oldest is None else min(oldest, created)
        return oldest

    def overdue(self, now: int, limit: int) -> list[Job]:
        jobs: list[Job] = []
        for status in OPEN_STATUSES:
            paginator = self.dynamodb.get_paginator("query")
            pages = paginator.paginate(
                TableName=self.table, IndexName=JOB_STATUS_INDEX,
                KeyConditionExpression="#status = :status AND #deadline < :now",
                ExpressionAttributeNames={"#status": JOB_STATUS_ATTRIBUTE, "#deadline": JOB_DEADLINE_ATTRIBUTE},
                ExpressionAttributeValues={":status": {"S": status}, ":now": {"N": str(now)}},
            )  # fmt: skip
            with unavailable_when_transient(STORE, REASON):
                for page in pages:
                    jobs.extend(_job(item) for item in page.get("Items", []))
                    if len(jobs) >= limit:
                        return jobs[:limit]
        return jobs


def _job(item: dict[str, Any]) -> Job:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    return Job(
        job_id=str(item[JOB_TABLE_PARTITION_KEY]["S"]),
        model=str(item["model"]["S"]),
        endpoint=str(item["endpoint"]["S"]),
        status=str(item[JOB_STATUS_ATTRIBUTE]["S"]),
        created_at=int(item["created_at"]["N"]),
        deadline=int(item[JOB_DEADLINE_ATTRIBUTE]["N"]),
        input_location=str(item["input_location"]["S"]),
        output_location=text("output_location"),
        failure_location=text("failure_location"),
        error=text("error"),
        owner=text(JOB_OWNER_ATTRIBUTE),
        correlation_id=text(CORRELATION_ID_ATTRIBUTE),
    )
