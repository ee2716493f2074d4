"""The price table, its overrides, and the cost arithmetic: each figure written out by hand from prices.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.config.prices import PRICE_KEYS, PriceTableError, RegionPrices, load_price_table, region_prices
from functions.domain import cost

P = region_prices("us-east-1")


def test_the_table_is_dated_and_names_its_sources() -> None:
    table = load_price_table()
    assert table["currency"] == "USD"
    assert table["as_of"] == "2026-12-03"  # the day these prices were read off the sources below
    assert set(table["sources"]) == {"api_gateway", "lambda", "sagemaker"}
    assert all(url.startswith("https://aws.amazon.com/") for url in table["sources"].values())
    assert {"us-east-1", "us-west-2"} <= set(table["regions"])


def test_an_override_is_deep_merged_over_the_region_row() -> None:
    prices = region_prices(
        "us-east-1", {"lambda_gb_second": {"x86_64": 0.00003}, "sagemaker_instance_hour": {"ml.p3.2xlarge": 3.825}}
    )
    assert prices.lambda_gb_second == {"arm64": 0.0000133334, "x86_64": 0.00003}
    assert prices.sagemaker_instance_hour["ml.p3.2xlarge"] == 3.825
    assert prices.sagemaker_instance_hour["ml.m5.large"] == 0.115
    assert prices.api_gateway_rest_per_million_requests == 3.5


def test_an_unknown_override_is_refused_naming_the_field() -> None:
    with pytest.raises(PriceTableError, match=r"stages\.dev\.prices\.lambda_gb_seconds: unknown price"):
        region_prices("us-east-1", {"lambda_gb_seconds": 1.0}, field="stages.dev.prices")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"sagemaker_data_processed_per_gb": -1}, r"prices\.sagemaker_data_processed_per_gb: must be a non-negative"),
        ({"sagemaker_data_processed_per_gb": "0.016"}, r"must be a non-negative number"),
        ({"lambda_gb_second": {"riscv": 1.0}}, r"prices\.lambda_gb_second: must name exactly arm64, x86_64"),
        ({"sagemaker_instance_hour": {"ml.m5.large": True}}, r"prices\.sagemaker_instance_hour\.ml\.m5\.large"),
    ],
)
def test_an_invalid_override_names_the_field(override: dict[str, object], message: str) -> None:
    with pytest.raises(PriceTableError, match=message):
        region_prices("us-east-1", override)


def test_overrides_must_be_an_object() -> None:
    with pytest.raises(PriceTableError, match=r"prices: must be an object"):
        region_prices("us-east-1", [1])  # type: ignore[arg-type]


def test_a_region_the_table_lacks_needs_a_full_override() -> None:
    with pytest.raises(
        PriceTableError, match=r"stages\.x\.prices: the price table has no region 'eu-west-3'.*missing: "
    ):
        region_prices("eu-west-3", {"lambda_requests_per_million": 0.2}, field="stages.x.prices")
    full = dict(load_price_table()["regions"]["us-east-1"])
    assert region_prices("eu-west-3", full) == P


def test_a_broken_table_is_refused(tmp_path: Path) -> None:
    table = load_price_table()
    del table["regions"]["us-east-1"]["lambda_gb_second"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    with pytest.raises(PriceTableError, match=r"regions\.us-east-1\.lambda_gb_second: is required"):
        load_price_table(path)
    path.write_text(json.dumps({"as_of": "2025-06-01", "currency": "USD"}))
    with pytest.raises(PriceTableError, match=r"regions: must be an object"):
        load_price_table(path)
    path.write_text(json.dumps({"regions": {}}))
    with pytest.raises(PriceTableError, match=r"as_of: is required"):
        load_price_table(path)
    path.write_text(json.dumps({"as_of": "June 2025", "currency": "USD", "regions": {}}))
    with pytest.raises(PriceTableError, match=r"as_of: 'June 2025' is not an ISO date"):
        load_price_table(path)
    path.write_text("{")
    with pytest.raises(PriceTableError, match=r"invalid JSON"):
        load_price_table(path)


def test_the_row_round_trips_through_json_for_the_router_environment() -> None:
    assert RegionPrices.from_json(P.to_json()) == P
    with pytest.raises(PriceTableError, match=r"prices: invalid JSON"):
        RegionPrices.from_json("{")
    with pytest.raises(PriceTableError, match=r"prices\.api_gateway_rest_per_million_requests: is required"):
        RegionPrices.from_json(json.dumps(dict.fromkeys(PRICE_KEYS - {"api_gateway_rest_per_million_requests"}, 1)))


def test_api_gateway_request() -> None:
    assert cost.api_request_cost(P) == pytest.approx(3.5 / 1e6)


def test_lambda_duration_rounds_up_to_the_next_millisecond() -> None:
    request = 0.2 / 1e6
    assert cost.lambda_cost(P, duration_ms=52.01, memory_mb=1024) == pytest.approx(request + 0.053 * 1.0 * 0.0000133334)
    assert cost.lambda_cost(P, duration_ms=52.0, memory_mb=1024) == pytest.approx(request + 0.052 * 1.0 * 0.0000133334)
    # Two clock readings' float noise (52.0000000000067 ms) bills 52 ms, not 53.
    assert cost.lambda_cost(P, duration_ms=(100.052 - 100.0) * 1000, memory_mb=1024) == pytest.approx(
        request + 0.052 * 1.0 * 0.0000133334
    )
    assert cost.lambda_cost(P, duration_ms=0.2, memory_mb=512, architecture="x86_64") == pytest.approx(
        request + 0.001 * 0.5 * 0.0000166667
    )


def test_lambda_provisioned_rates() -> None:
    assert cost.lambda_cost(P, duration_ms=100, memory_mb=2048, provisioned=True) == pytest.approx(
        0.2 / 1e6 + 0.1 * 2 * 0.0000077778
    )
    # One 1024 MB instance held for an hour, idle.
    assert cost.lambda_provisioned_cost(P, memory_mb=1024, seconds=3600) == pytest.approx(3600 * 0.0000033334)


def test_serverless_duration_memory_and_data() -> None:
    # 37 ms at 2048 MB, 120 B in and 80 B out.
    assert cost.serverless_cost(
        P, duration_ms=36.2, memory_mb=2048, request_bytes=120, response_bytes=80
    ) == pytest.approx(0.037 * 2 * 0.00002 + 200 / 1024**3 * 0.016)
    assert cost.serverless_cost(
        P, duration_ms=10, memory_mb=1024, request_bytes=1024**3, response_bytes=0, provisioned=True
    ) == pytest.approx(0.010 * 0.0000056 + 0.016)
    assert cost.serverless_provisioned_cost(P, memory_mb=4096, seconds=60) == pytest.approx(60 * 4 * 0.0000048)


def test_instance_time_and_an_unpriced_instance_type() -> None:
    assert cost.instance_cost(P, instance_type="ml.m5.large", seconds=300) == pytest.approx(0.115 / 12)
    with pytest.raises(PriceTableError, match=r"prices\.sagemaker_instance_hour\.ml\.p4d\.24xlarge: no price"):
        cost.instance_cost(P, instance_type="ml.p4d.24xlarge", seconds=1)
