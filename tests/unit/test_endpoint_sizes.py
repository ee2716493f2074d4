"""The serverless endpoint sizes the router costs calls with, read from SSM (botocore's Stubber) and cached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.session import get_session
from botocore.stub import Stubber

from functions.adapters.endpoint_sizes import ERROR_TTL_S, TTL_S, ParameterEndpointSizes
from functions.config.prices import (
    ServerlessSize,
    default_size_to_json,
    region_prices,
    serverless_size_parameter_prefix,
    serverless_size_to_json,
)
from functions.config.router_settings import RouterSettings
from functions.domain.cost import RequestCosting
from functions.handlers.router.costing import request_costing

PREFIX = serverless_size_parameter_prefix("dev")
DEFAULT = ServerlessSize(2048, 0)
IRIS = ServerlessSize(3072, 2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ssm() -> Iterator[tuple[Any, Stubber]]:
    client = get_session().create_client(
        "ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def found(size: ServerlessSize, endpoint: str = "dev-iris") -> tuple[dict[str, Any], dict[str, str]]:
    name = f"{PREFIX}{endpoint}"
    response = {"Parameter": {"Name": name, "Type": "String", "Value": serverless_size_to_json(size), "Version": 1}}
    return response, {"Name": name}


def sizes(client: Any, clock: Clock, logged: list[str]) -> ParameterEndpointSizes:
    return ParameterEndpointSizes(PREFIX, DEFAULT, logged.append, client=lambda: client, clock=clock)


def test_the_prefix_is_under_the_platform_parameter_root() -> None:
    assert PREFIX == "/inference-router/dev/serverless-sizes/"


def test_a_size_is_read_once_and_cached_until_the_ttl_runs_out(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    clock, logged = Clock(), list[str]()
    lookup = sizes(client, clock, logged)
    stubber.add_response("get_parameter", *found(IRIS))
    assert lookup("dev-iris") == IRIS
    clock.now += TTL_S - 1
    assert lookup("dev-iris") == IRIS  # cached: the stubber holds no second answer
    stubber.assert_no_pending_responses()
    clock.now += 1
    stubber.add_response("get_parameter", *found(ServerlessSize(1024, 0)))
    assert lookup("dev-iris") == ServerlessSize(1024, 0)
    assert logged == []


def test_each_endpoint_has_its_own_entry(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    lookup = sizes(client, Clock(), [])
    stubber.add_response("get_parameter", *found(IRIS))
    stubber.add_response("get_parameter", *found(DEFAULT, "dev-wine"))
    assert (lookup("dev-iris"), lookup("dev-wine"), lookup("dev-iris")) == (IRIS, DEFAULT, IRIS)


def test_a_missing_parameter_gives_the_default_and_the_miss_is_cached(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    clock, logged = Clock(), list[str]()
    lookup = sizes(client, clock, logged)
    stubber.add_client_error("get_parameter", "ParameterNotFound", http_status_code=400)
    assert lookup("dev-new") == DEFAULT
    clock.now += TTL_S - 1
    assert lookup("dev-new") == DEFAULT  # not asked again
    assert logged == [
        f"serverless size of 'dev-new': GetParameter {PREFIX}dev-new failed (ParameterNotFound); costed at the default"
    ]


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("AccessDeniedException", 400), ("InternalServerError", 500)]
)
def test_a_failed_read_gives_the_default_logs_once_and_is_retried_after_a_minute(
    code: str, status: int, ssm: tuple[Any, Stubber]
) -> None:
    client, stubber = ssm
    clock, logged = Clock(), list[str]()
    lookup = sizes(client, clock, logged)
    stubber.add_client_error("get_parameter", code, http_status_code=status)
    assert lookup("dev-iris") == DEFAULT
    clock.now += ERROR_TTL_S - 1
    assert lookup("dev-iris") == DEFAULT
    assert len(logged) == 1
    assert f"({code}); costed at the default" in logged[0]
    clock.now += 1
    stubber.add_response("get_parameter", *found(IRIS))
    assert lookup("dev-iris") == IRIS


@pytest.mark.parametrize(
    ("value", "error"),
    [("{", "PriceTableError: serverless sizes: /inference-router/dev/serverless-sizes/dev-iris: invalid JSON"),
     ('{"memory_mb": 0, "provisioned_concurrency": 0}', "memory_mb > 0")],
)  # fmt: skip
def test_a_value_that_does_not_parse_gives_the_default(value: str, error: str, ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    logged: list[str] = []
    name = f"{PREFIX}dev-iris"
    response = {"Parameter": {"Name": name, "Type": "String", "Value": value, "Version": 1}}
    stubber.add_response("get_parameter", response, {"Name": name})
    assert sizes(client, Clock(), logged)("dev-iris") == DEFAULT
    [line] = logged
    assert error in line
    assert line.endswith("costed at the default")


def test_a_client_that_cannot_be_made_gives_the_default() -> None:
    logged: list[str] = []

    def no_client() -> Any:
        raise RuntimeError("no region")

    lookup = ParameterEndpointSizes(PREFIX, DEFAULT, logged.append, client=no_client, clock=Clock())
    assert lookup("dev-iris") == DEFAULT
    assert logged == [f"serverless size of 'dev-iris': {PREFIX}dev-iris unreadable (RuntimeError: no region); "
                      "costed at the default"]  # fmt: skip


PRICED = {"PRICES": region_prices("us-east-1").to_json()}


def test_the_router_reads_sizes_under_its_prefix_and_local_mode_never_looks_anything_up() -> None:
    made: list[tuple[str, ServerlessSize | None]] = []

    def factory(prefix: str, default: ServerlessSize | None, log: Any) -> Any:
        made.append((prefix, default))
        return {"dev-iris": IRIS}.get

    env = {**PRICED, "SERVERLESS_ENDPOINT_SIZES": default_size_to_json(DEFAULT)}
    local = request_costing(RouterSettings.from_env(env), factory, print)
    assert isinstance(local, RequestCosting)
    assert (local.serverless_size("dev-iris"), made) == (DEFAULT, [])
    deployed = request_costing(
        RouterSettings.from_env({**env, "SERVERLESS_SIZE_PARAMETER_PREFIX": PREFIX}), factory, print
    )
    assert deployed is not None
    assert deployed.serverless_size("dev-iris") == IRIS
    assert made == [(PREFIX, DEFAULT)]
    assert (
        request_costing(RouterSettings.from_env({"SERVERLESS_SIZE_PARAMETER_PREFIX": PREFIX}), factory, print) is None
    )
