"""The sweeper's charge for the async endpoints' instance time: DescribeEndpoint through a botocore Stubber,
the figure by hand from prices.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.stub import Stubber

from functions.adapters.endpoint_capacity import SageMakerEndpointCapacity
from functions.config.async_costing import AsyncCostSettings, AsyncCostSettingsError
from functions.config.models import load_models_config, parse_models_config
from functions.config.prices import region_prices
from functions.domain.async_cost import CapacityUnavailableError
from functions.handlers.sweeper.app import create_handler
from functions.handlers.sweeper.instance_cost import InstanceCostReport
from local.api_gateway import LocalLambdaContext

PRICES = region_prices("us-east-1")
ENVIRONMENT = {
    "PRICES": PRICES.to_json(),
    "ASYNC_INSTANCE_TYPES": '{"*":"ml.m5.large","dev-big-async":"ml.g5.xlarge"}',
    "SWEEP_INTERVAL_S": "300",
}
SETTINGS = AsyncCostSettings.from_env(ENVIRONMENT)
NOT_FOUND = 'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dev-iris-async".'


def described(*counts: int | None) -> dict[str, Any]:
    variants = [{"VariantName": f"v{i}", **({} if c is None else {"CurrentInstanceCount": c})} for i, c in
                enumerate(counts)]  # fmt: skip
    return {
        "EndpointName": "e",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
        "EndpointConfigName": "c",
        "EndpointStatus": "InService",
        "CreationTime": "2026-12-01T00:00:00Z",
        "LastModifiedTime": "2026-12-01T00:00:00Z",
        "ProductionVariants": variants,
    }


@pytest.fixture
def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_the_instance_count_sums_the_variants_and_a_missing_endpoint_has_none(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("describe_endpoint", described(2, 1), {"EndpointName": "dev-iris-async"})
    stubber.add_response("describe_endpoint", described(None), {"EndpointName": "dev-iris-async"})
    stubber.add_client_error("describe_endpoint", "ValidationException", NOT_FOUND)
    stubber.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded")
    with stubber:
        capacity = SageMakerEndpointCapacity(client)
        assert capacity.instances("dev-iris-async") == 3
        assert capacity.instances("dev-iris-async") == 0  # a variant still being created runs none
        assert capacity.instances("dev-iris-async") is None
        with pytest.raises(CapacityUnavailableError, match="DescribeEndpoint 'dev-iris-async' failed: Throttling"):
            capacity.instances("dev-iris-async")


def report(client: Any, lines: list[str], models: Any = None) -> InstanceCostReport:
    assert SETTINGS is not None
    return InstanceCostReport(
        models or load_models_config(),
        "dev-",
        SETTINGS,
        SageMakerEndpointCapacity(client),
        Logger(service="test"),
        emit=lines.append,
        wall_clock=lambda: 1_700_000_000.0,
    )


def test_running_instances_cost_the_interval_at_their_hourly_price_by_model(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    lines: list[str] = []
    stubber.add_response("describe_endpoint", described(2), {"EndpointName": "dev-iris-async"})
    with stubber:
        costs = report(client, lines)()
    by_hand = 2 * 300 / 3600 * 0.115  # 2 x ml.m5.large (sagemaker_instance_hour) for the 300 s sweep interval
    assert costs == {"iris": pytest.approx(by_hand, rel=1e-12)}
    [document] = [json.loads(line) for line in lines]
    assert document["CostUsd"] == pytest.approx(by_hand, rel=1e-12)
    assert (document["service"], document["model"], document["route"]) == ("inference-sweeper", "iris", "async")
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "InferenceRouter"
    assert directive["Metrics"] == [{"Name": "CostUsd", "Unit": "None"}]
    assert directive["Dimensions"] == [["service"], ["service", "model"], ["service", "model", "route"]]


def test_zero_instances_cost_zero_and_a_missing_endpoint_costs_nothing(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    lines: list[str] = []
    stubber.add_response("describe_endpoint", described(0), {"EndpointName": "dev-iris-async"})
    stubber.add_client_error("describe_endpoint", "ValidationException", NOT_FOUND)
    with stubber:
        charge = report(client, lines)
        assert charge() == {"iris": 0.0}
        assert charge() == {}
    assert [json.loads(line)["CostUsd"] for line in lines] == [0.0]


def shared_config(tmp_path: Path) -> Any:
    raw = json.loads(Path(load_models_config().source).read_text())
    [iris] = [model for model in raw["models"] if model["name"] == "iris"]
    raw["models"] = [
        iris,
        {**iris, "name": "iris-b"},  # the same async endpoint as iris
        {**iris, "name": "big", "route": {**iris["route"], "async_endpoint": "big-async"}},
    ]
    return parse_models_config(raw, str(tmp_path / "models.json"))


def test_a_shared_endpoint_splits_its_cost_and_a_failed_read_skips_only_its_endpoint(
    stubbed: tuple[Any, Stubber], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed
    lines: list[str] = []
    stubber.add_client_error(
        "describe_endpoint", "AccessDeniedException", "no", expected_params={"EndpointName": "dev-big-async"}
    )
    stubber.add_response("describe_endpoint", described(1), {"EndpointName": "dev-iris-async"})
    stubber.add_response("describe_endpoint", described(1), {"EndpointName": "dev-big-async"})
    stubber.add_response("describe_endpoint", described(1), {"EndpointName": "dev-iris-async"})
    with stubber:
        charge = report(client, lines, shared_config(tmp_path))
        half = 300 / 3600 * 0.115 / 2
        assert charge() == {"iris": pytest.approx(half), "iris-b": pytest.approx(half)}
        assert charge()["big"] == pytest.approx(300 / 3600 * 1.408)  # ml.g5.xlarge, its own entry
    assert "instance count unavailable" in caplog.text


def test_an_instance_type_without_a_price_emits_no_cost(
    stubbed: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed
    lines: list[str] = []
    settings = AsyncCostSettings.from_env({**ENVIRONMENT, "ASYNC_INSTANCE_TYPES": '{"*":"ml.p5.48xlarge"}'})
    assert settings is not None
    stubber.add_response("describe_endpoint", described(1), {"EndpointName": "dev-iris-async"})
    with stubber:
        charge = InstanceCostReport(
            load_models_config(), "dev-", settings, SageMakerEndpointCapacity(client), Logger(service="t"),
            emit=lines.append,
        )  # fmt: skip
        assert charge() == {}
    assert lines == []
    assert "async instance not priced" in caplog.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"PRICES": "{"}, r"PRICES: prices: invalid JSON"),
        ({"ASYNC_INSTANCE_TYPES": "["}, r"ASYNC_INSTANCE_TYPES: must be JSON"),
        ({"ASYNC_INSTANCE_TYPES": '{"*": 3}'}, r"ASYNC_INSTANCE_TYPES: must be an object of endpoint -> type"),
        ({"SWEEP_INTERVAL_S": "0"}, r"SWEEP_INTERVAL_S='0': must be a positive whole number"),
        ({"SWEEP_INTERVAL_S": ""}, r"SWEEP_INTERVAL_S='': must be a positive"),
    ],
)
def test_a_bad_costing_variable_is_refused_naming_it(changes: dict[str, str], message: str) -> None:
    with pytest.raises(AsyncCostSettingsError, match=message):
        AsyncCostSettings.from_env({**ENVIRONMENT, **changes})
    assert AsyncCostSettings.from_env({}) is None


class Jobs:
    def sweep(self, *, now: int, limit: int, violated: Callable[[str, str], None] | None = None) -> dict[str, int]:
        return {"timeout": 0}

    def oldest_open_age_s(self, *, now: int) -> int:
        return 0


def test_the_sweeper_charges_the_instances_each_run(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    lines: list[str] = []
    stubber.add_response("describe_endpoint", described(1), {"EndpointName": "dev-iris-async"})
    with stubber:
        handler = create_handler(Jobs(), instance_cost=lambda logger: report(client, lines))  # type: ignore[arg-type]
        handler({}, LocalLambdaContext())
    [document] = [json.loads(line) for line in lines]
    assert document["CostUsd"] == pytest.approx(300 / 3600 * 0.115)
