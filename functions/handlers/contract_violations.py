"""Counting an async result that broke its model's output contract (functions/domain/result_contract.py),
as the result function and the sweeper each find one: ``OutputContractViolations`` by service, model and check,
the router's dimensions (functions/handlers/router/telemetry.py), in an EMF line of its own."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from functions.config.telemetry import (
    CHECK_DIMENSION,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    OUTPUT_CONTRACT_VIOLATIONS_METRIC,
    SERVICE_DIMENSION,
)


def count_violation(service: str, model: str, check: str) -> None:
    """One ``OutputContractViolations`` of ``service`` by model and check."""
    with single_metric(
        name=OUTPUT_CONTRACT_VIOLATIONS_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name=SERVICE_DIMENSION, value=service)
        metric.add_dimension(name=MODEL_DIMENSION, value=model)
        metric.add_dimension(name=CHECK_DIMENSION, value=check)
