"""The async path's adapters against moto's server, and with faults: a throttling or unreachable S3/DynamoDB is
the domain's 503 (never an unhandled error, which API Gateway turns into a 502 that pages); a deployment fault
(access denied) still raises; the job table's conditional writes; the idempotency layer's client and key scope."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
)
from botocore.exceptions import ClientError

from functions.adapters import aws_clients
from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.adapters.idempotency import IdempotentSubmitter
from functions.adapters.s3_objects import S3ObjectStore
from functions.domain.errors import ConflictError, EndpointUnavailableError
from functions.domain.job_records import FAILED, QUEUED, SUBMITTING, SUCCEEDED, Job
from local.api_gateway import LocalLambdaContext
from local.aws import AsyncResources, LocalAsyncResources, LocalAws, aws_client, create_async_resources
from local.stack import LOCAL_AWS_ENVIRONMENT
from tests.helpers.aws_faults import FaultyClient, client_error, unreachable


@pytest.fixture(scope="module")
def resources(aws: LocalAws) -> AsyncResources:
    return create_async_resources(aws.url, LocalAsyncResources.unique("adapters"))


def job(job_id: str, status: str = SUBMITTING, deadline: int = 2_000) -> Job:
    return Job(job_id, "iris", "dev-iris-async", status, 1_000, deadline, "s3://b/input/dev-iris-async/x.json")


@pytest.fixture
def store(aws: LocalAws, resources: AsyncResources) -> DynamoDBJobStore:
    return DynamoDBJobStore(resources.job_table, 3600, aws_client("dynamodb", aws.url))


@pytest.mark.parametrize(
    ("code", "status"),
    [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 500)],
)
def test_job_table_throttled_or_failing_is_unavailable_with_retry_after(
    aws: LocalAws, resources: AsyncResources, code: str, status: int
) -> None:
    faulty = FaultyClient(aws_client("dynamodb", aws.url), put_item=client_error(code, status, "PutItem"))
    with pytest.raises(EndpointUnavailableError, match=rf"the job table \(DynamoDB\) is unavailable \({code}\)") as e:
        DynamoDBJobStore(resources.job_table, 3600, faulty).create(job("1" * 32))
    assert (e.value.reason, e.value.retry_after_seconds) == ("job-table-unavailable", 1)


def test_job_table_unreachable_is_unavailable(resources: AsyncResources) -> None:
    store = DynamoDBJobStore(resources.job_table, 3600, unreachable("dynamodb"))
    with pytest.raises(EndpointUnavailableError, match="EndpointConnectionError"):
        store.get("1" * 32)


def test_job_table_access_denied_still_raises_for_the_page(aws: LocalAws, resources: AsyncResources) -> None:
    faulty = FaultyClient(aws_client("dynamodb", aws.url), get_item=client_error("AccessDeniedException", 400, "Get"))
    with pytest.raises(ClientError, match="AccessDeniedException"):
        DynamoDBJobStore(resources.job_table, 3600, faulty).get("1" * 32)


def test_object_store_throttled_or_unreachable_is_unavailable(aws: LocalAws, resources: AsyncResources) -> None:
    faulty = FaultyClient(aws_client("s3", aws.url), put_object=client_error("SlowDown", 503, "PutObject"))
    with pytest.raises(EndpointUnavailableError, match=r"the async object store \(S3\) is unavailable \(SlowDown\)"):
        S3ObjectStore(resources.bucket, faulty).put("input/x.json", b"{}")
    head = FaultyClient(aws_client("s3", aws.url), head_object=client_error("503", 503, "HeadObject"))
    with pytest.raises(EndpointUnavailableError, match=r"unavailable \(503\)"):
        S3ObjectStore(resources.bucket, head).size(f"s3://{resources.bucket}/output/x.out")
    with pytest.raises(EndpointUnavailableError, match="EndpointConnectionError"):
        S3ObjectStore(resources.bucket, unreachable("s3")).read(f"s3://{resources.bucket}/output/x.out")


def test_object_store_size_of_a_missing_object_is_none_but_a_denial_raises(
    aws: LocalAws, resources: AsyncResources
) -> None:
    store = S3ObjectStore(resources.bucket, aws_client("s3", aws.url))
    assert store.size(f"s3://{resources.bucket}/output/never-written.out") is None
    denied = FaultyClient(aws_client("s3", aws.url), head_object=client_error("403", 403, "HeadObject"))
    with pytest.raises(ClientError, match="403"):
        S3ObjectStore(resources.bucket, denied).size(f"s3://{resources.bucket}/output/x.out")


def test_mark_queued_sets_locations_and_the_full_deadline(store: DynamoDBJobStore) -> None:
    store.create(job("2" * 32, deadline=1_100))
    assert store.mark_queued("2" * 32, "s3://b/output/o.out", "s3://b/failure/f.out", deadline=9_000) is True
    queued = store.get("2" * 32)
    assert queued is not None
    assert (queued.status, queued.deadline, queued.output_location, queued.failure_location) == (
        QUEUED, 9_000, "s3://b/output/o.out", "s3://b/failure/f.out",
    )  # fmt: skip
    assert "2" * 32 not in [j.job_id for j in store.overdue(5_000, 1000)]  # no longer on its short deadline


def test_mark_queued_after_a_fast_notification_keeps_the_settled_job(store: DynamoDBJobStore) -> None:
    store.create(job("3" * 32))
    assert store.settle("3" * 32, SUCCEEDED, output_location="s3://b/output/o.out", error=None)
    assert store.mark_queued("3" * 32, "s3://b/output/o.out", None, deadline=9_000) is False
    settled = store.get("3" * 32)
    assert settled is not None
    assert settled.status == SUCCEEDED


def test_settle_from_submitting_and_the_sweepers_query_finds_overdue_submits(store: DynamoDBJobStore) -> None:
    store.create(job("4" * 32, deadline=1_500))
    assert "4" * 32 in [j.job_id for j in store.overdue(1_501, 1000)]
    assert store.settle("4" * 32, FAILED, output_location=None, error="submit-interrupted: x") is True
    assert store.settle("4" * 32, SUCCEEDED, output_location="s3://b/o", error=None) is False


def submitter_world(aws: LocalAws, resources: AsyncResources, client: Any | None = None) -> IdempotentSubmitter:
    return IdempotentSubmitter(resources.idempotency_table, dynamodb_client=client or aws_client("dynamodb", aws.url))


class Submissions:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> dict[str, Any]:
        self.count += 1
        return {"id": f"{self.count:032x}", "status": "queued"}


def test_idempotency_layer_uses_the_projects_dynamodb_client_by_default(
    aws: LocalAws, resources: AsyncResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**LOCAL_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL_DYNAMODB": aws.url}.items():
        monkeypatch.setenv(name, value)
    aws_clients.reset_clients()
    try:
        submitter = IdempotentSubmitter(resources.idempotency_table)
        client = submitter.persistence.client
        assert client is aws_clients.client("dynamodb")
        # Not botocore's defaults (legacy mode, 60 s reads): the async path's config.
        assert client.meta.config.retries["mode"] == "standard"
        assert client.meta.config.read_timeout == aws_clients.ASYNC_PATH_CONFIG.read_timeout == 5
    finally:
        aws_clients.reset_clients()


def test_idempotency_key_is_scoped_by_model_and_caller(aws: LocalAws, resources: AsyncResources) -> None:
    submitter, action = submitter_world(aws, resources), Submissions()

    def submit(model: str, caller: str | None) -> str:
        document = submitter.submit("order-1", model=model, caller=caller, body_sha256="same-body", action=action,
                                    context=LocalLambdaContext())  # fmt: skip
        return str(document["id"])

    first = submit("iris", "userArn:arn:aws:iam::123456789012:user/a")
    assert submit("iris", "userArn:arn:aws:iam::123456789012:user/a") == first
    other_model = submit("iris-gpu", "userArn:arn:aws:iam::123456789012:user/a")
    other_caller = submit("iris", "userArn:arn:aws:iam::123456789012:user/b")
    anonymous = submit("iris", None)
    assert len({first, other_model, other_caller, anonymous}) == 4
    assert action.count == 4


def test_idempotency_table_throttled_before_the_submit_is_unavailable(aws: LocalAws, resources: AsyncResources) -> None:
    faulty = FaultyClient(aws_client("dynamodb", aws.url), put_item=client_error("ThrottlingException", 400, "Put"))
    submitter, action = submitter_world(aws, resources, faulty), Submissions()
    with pytest.raises(EndpointUnavailableError, match=r"idempotency table \(DynamoDB\) is unavailable") as raised:
        submitter.submit("order-2", model="iris", caller=None, body_sha256="b", action=action,
                         context=LocalLambdaContext())  # fmt: skip
    assert raised.value.reason == "idempotency-table-unavailable"
    assert action.count == 0


def test_idempotency_record_not_saved_after_the_submit_still_answers_the_job(
    aws: LocalAws, resources: AsyncResources
) -> None:
    faulty = FaultyClient(aws_client("dynamodb", aws.url), update_item=client_error("ThrottlingException", 400, "Up"))
    submitter, action = submitter_world(aws, resources, faulty), Submissions()
    document = submitter.submit("order-3", model="iris", caller=None, body_sha256="b", action=action,
                                context=LocalLambdaContext())  # fmt: skip
    assert document == {"id": f"{1:032x}", "status": "queued"}
    assert (action.count, faulty.calls) == (1, ["update_item"])


def test_idempotency_table_denied_still_raises(aws: LocalAws, resources: AsyncResources) -> None:
    faulty = FaultyClient(aws_client("dynamodb", aws.url), put_item=client_error("AccessDeniedException", 400, "Put"))
    submitter = submitter_world(aws, resources, faulty)
    with pytest.raises(IdempotencyPersistenceLayerError, match="Failed to save in progress record"):
        submitter.submit("order-4", model="iris", caller=None, body_sha256="b", action=Submissions(),
                         context=LocalLambdaContext())  # fmt: skip


def test_idempotency_inconsistent_state_is_a_conflict_to_retry(
    aws: LocalAws, resources: AsyncResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Powertools raises it when the record changes between its write and its read (a race): retryable.
    submitter = submitter_world(aws, resources)

    def racing(**_: Any) -> Any:
        raise IdempotencyInconsistentStateError("save_inprogress and get_record return inconsistent results.")

    monkeypatch.setattr(submitter, "_submit_once", racing)
    with pytest.raises(ConflictError, match="still being submitted; retry shortly"):
        submitter.submit("order-5", model="iris", caller=None, body_sha256="b", action=Submissions(),
                         context=LocalLambdaContext())  # fmt: skip


def test_the_correlation_id_is_kept_on_the_job_record(store: DynamoDBJobStore) -> None:
    store.create(replace(job("6" * 32), correlation_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef"))
    store.create(job("7" * 32))
    kept, older = store.get("6" * 32), store.get("7" * 32)
    assert kept is not None
    assert older is not None
    assert (kept.correlation_id, older.correlation_id) == ("c6af9ac6-7b61-11e6-9a41-93e8deadbeef", None)
