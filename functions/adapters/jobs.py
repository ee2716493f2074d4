"""DynamoDB job table adapter.

Table: partition key ``job_id`` (S); GSI ``by_status`` on ``job_status`` (S) + ``deadline`` (N) for the
sweeper; TTL attribute ``expires_at``. Every state change is a conditional write, so a duplicate or late
notification can never move a settled job again.
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from functions.adapters import aws_clients
from functions.common.jobs import OPEN_STATUSES, QUEUED, SUBMITTING, Job

STATUS_INDEX: Final[str] = "by_status"


def _is_condition_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


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
            "job_id": {"S": job.job_id},
            "model": {"S": job.model},
            "endpoint": {"S": job.endpoint},
            "job_status": {"S": job.status},
            "created_at": {"N": str(job.created_at)},
            "deadline": {"N": str(job.deadline)},
            "expires_at": {"N": str(job.deadline + self.record_ttl_s)},
            "input_location": {"S": job.input_location},
        }
        self.dynamodb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(job_id)")

    def mark_queued(self, job_id: str, output_location: str, failure_location: str | None) -> None:
        values: dict[str, Any] = {
            ":queued": {"S": QUEUED},
            ":submitting": {"S": SUBMITTING},
            ":out": {"S": output_location},
        }
        update = "SET job_status = :queued, output_location = :out"
        if failure_location:
            values[":fail"] = {"S": failure_location}
            update += ", failure_location = :fail"
        try:
            self.dynamodb.update_item(
                TableName=self.table, Key={"job_id": {"S": job_id}}, UpdateExpression=update,
                ConditionExpression="job_status = :submitting", ExpressionAttributeValues=values,
            )  # fmt: skip
        except ClientError as error:
            if not _is_condition_failure(error):  # already settled by a fast notification: keep that
                raise

    def delete(self, job_id: str) -> None:
        self.dynamodb.delete_item(TableName=self.table, Key={"job_id": {"S": job_id}})

    def get(self, job_id: str) -> Job | None:
        item = self.dynamodb.get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get(
            "Item"
        )
        return None if item is None else _job(item)

    def settle(self, job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool:
        values: dict[str, Any] = {
            ":status": {"S": status},
            **{f":open{i}": {"S": s} for i, s in enumerate(OPEN_STATUSES)},
        }
        update = "SET job_status = :status"
        if output_location is not None:
            values[":out"] = {"S": output_location}
            update += ", output_location = :out"
        if error is not None:
            values[":error"] = {"S": error}
            update += ", #error = :error"
        open_list = ", ".join(f":open{i}" for i in range(len(OPEN_STATUSES)))
        names = {"ExpressionAttributeNames": {"#error": "error"}} if error is not None else {}
        try:
            self.dynamodb.update_item(
                TableName=self.table, Key={"job_id": {"S": job_id}}, UpdateExpression=update,
                ConditionExpression=f"attribute_exists(job_id) AND job_status IN ({open_list})",
                ExpressionAttributeValues=values, **names,
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
            items = self.dynamodb.query(
                TableName=self.table, IndexName=STATUS_INDEX, KeyConditionExpression="job_status = :status",
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
                TableName=self.table, IndexName=STATUS_INDEX,
                KeyConditionExpression="job_status = :status AND deadline < :now",
                ExpressionAttributeValues={":status": {"S": status}, ":now": {"N": str(now)}},
            )  # fmt: skip
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
        job_id=str(item["job_id"]["S"]),
        model=str(item["model"]["S"]),
        endpoint=str(item["endpoint"]["S"]),
        status=str(item["job_status"]["S"]),
        created_at=int(item["created_at"]["N"]),
        deadline=int(item["deadline"]["N"]),
        input_location=str(item["input_location"]["S"]),
        output_location=text("output_location"),
        failure_location=text("failure_location"),
        error=text("error"),
    )
