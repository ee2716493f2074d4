"""The stage's prices: the table's row for its region, overridable key by key in the stage config."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.models import load_models_config
from functions.config.prices import load_price_table
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from infra.config.types import StageConfigError

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())


def parse(document: dict[str, Any], stage: str = "dev") -> Any:
    return parse_stage_config(document, stage, MODELS, "stages.json")


def test_both_stages_take_their_region_row() -> None:
    row = load_price_table()["regions"]["us-east-1"]
    for stage in ("dev", "prod"):
        prices = load_stage_config(stage).prices
        assert prices.sagemaker_serverless_gb_second == row["sagemaker_serverless_gb_second"]
        assert prices.lambda_gb_second == row["lambda_gb_second"]


def test_defaults_and_the_stage_override_prices_key_by_key() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["defaults"]["prices"] = {"sagemaker_data_processed_per_gb": 0.02, "lambda_gb_second": {"arm64": 0.1}}
    document["stages"]["dev"]["prices"] = {"lambda_gb_second": {"x86_64": 0.2}}
    prices = parse(document).prices
    assert prices.sagemaker_data_processed_per_gb == 0.02
    assert prices.lambda_gb_second == {"arm64": 0.1, "x86_64": 0.2}
    assert parse(document, "prod").prices.lambda_gb_second == {"arm64": 0.1, "x86_64": 0.0000166667}


def test_an_unknown_price_is_refused_with_its_field() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["dev"]["prices"] = {"lambda_per_gb": 1}
    with pytest.raises(StageConfigError, match=r"^stages\.json: stages\.dev\.prices\.lambda_per_gb: unknown price"):
        parse(document)


def test_a_region_without_prices_fails_at_load_naming_the_field() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["dev"]["region"] = "eu-west-1"
    with pytest.raises(
        StageConfigError, match=r"stages\.dev\.prices: the price table has no region 'eu-west-1'.*set every price"
    ):
        parse(document)
    document["stages"]["dev"]["prices"] = load_price_table()["regions"]["us-east-1"]
    assert parse(document).region == "eu-west-1"


def test_an_async_instance_type_without_a_price_is_refused() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["dev"]["async_endpoint_defaults"] = {"instance_type": "ml.c7i.xlarge"}
    with pytest.raises(StageConfigError, match=r"stages\.dev\.prices\.sagemaker_instance_hour: no price for 'ml\.c7i"):
        parse(document)
    document["stages"]["dev"]["prices"] = {"sagemaker_instance_hour": {"ml.c7i.xlarge": 0.178}}
    assert parse(document).prices.instance_hour("ml.c7i.xlarge") == 0.178
