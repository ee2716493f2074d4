"""Names the functions emit and the alarms read: one namespace for every custom metric, the services."""

from __future__ import annotations

from typing import Final

# Custom metrics of the async pipeline (Powertools EMF adds the "service" dimension); alarms read the same names.
METRICS_NAMESPACE: Final[str] = "InferenceRouter"
ROUTER_SERVICE: Final[str] = "inference-router"
RESULTS_SERVICE: Final[str] = "inference-results"
SWEEPER_SERVICE: Final[str] = "inference-sweeper"
OLDEST_OPEN_JOB_AGE_METRIC: Final[str] = "OldestOpenJobAgeSeconds"
# The router answered a JSON 500 for an exception nothing else handled (it no longer shows as a Lambda error).
UNHANDLED_ERRORS_METRIC: Final[str] = "UnhandledErrors"
# The result function ignored a notification whose locations are not the job's: a forgery, or a bug.
MISMATCHED_NOTIFICATIONS_METRIC: Final[str] = "MismatchedNotifications"

# One EMF document per infer request from the router, under two dimension sets: (service, model) and
# (service, model, route). The SLOs and the dashboard read these names.
REQUESTS_METRIC: Final[str] = "Requests"
SERVER_ERRORS_METRIC: Final[str] = "ServerErrors"
CLIENT_ERRORS_METRIC: Final[str] = "ClientErrors"
DEGRADED_REQUESTS_METRIC: Final[str] = "DegradedRequests"
SLOW_REQUESTS_METRIC: Final[str] = "SlowRequests"
LATENCY_METRIC: Final[str] = "Latency"
ENDPOINT_LATENCY_METRIC: Final[str] = "EndpointLatency"
# A degraded answer, by service, model, reason (how it was answered) and cause (why the endpoint could not).
DEGRADED_ANSWERS_METRIC: Final[str] = "DegradedAnswers"
# An endpoint answer that broke its model's output contract (functions/domain/output_contract.py), by service,
# model and check (malformed, shape, finite, range, sum_to_one): one EMF line of its own from the router, and
# from the result function for an async result.
OUTPUT_CONTRACT_VIOLATIONS_METRIC: Final[str] = "OutputContractViolations"
CHECK_DIMENSION: Final[str] = "check"
# Once per cold start, dimension "service" only.
COLD_STARTS_METRIC: Final[str] = "ColdStarts"
SERVICE_DIMENSION: Final[str] = "service"
MODEL_DIMENSION: Final[str] = "model"
ROUTE_DIMENSION: Final[str] = "route"
# The router's published version (AWS_LAMBDA_FUNCTION_VERSION) on Requests, ServerErrors and Latency: CodeDeploy's
# rollback alarms watch the version being deployed by it. Not on "$LATEST" (local mode, an unqualified invoke).
ROUTER_VERSION_DIMENSION: Final[str] = "router_version"
ROUTER_VERSION_VARIABLE: Final[str] = "AWS_LAMBDA_FUNCTION_VERSION"
UNPUBLISHED_VERSION: Final[str] = "$LATEST"
# The model dimension of an infer request for a model the config does not hold (a 404): one bounded value.
UNKNOWN_MODEL: Final[str] = "-"
# The stage's per-model latency targets (JSON {"model": milliseconds}); SlowRequests counts answers above them.
LATENCY_TARGETS_VARIABLE: Final[str] = "LATENCY_TARGETS_MS"
# Its key for the stage's default target: a model absent from the map takes it, so that adding a model with
# the default target leaves the router's environment (and the platform stack) unchanged.
LATENCY_TARGET_DEFAULT_KEY: Final[str] = "*"
# The router's circuit changes, by endpoint and new state (functions/domain/breaker.py BreakerState values);
# the circuit_open page counts those into the open state.
BREAKER_TRANSITIONS_METRIC: Final[str] = "BreakerTransitions"
BREAKER_OPEN_STATE: Final[str] = "open"
# What an infer request used, in USD (functions/domain/cost.py), on the request's dimensions; the sweeper adds
# the async endpoints' instance time by model and route "async". Cost per 1,000 predictions is
# 1000 * SUM(CostUsd) / SUM(Requests).
COST_METRIC: Final[str] = "CostUsd"
# The router's region prices (functions/config/prices.py RegionPrices.to_json) and its serverless endpoints'
# sizes by physical endpoint name ({"dev-iris": {"memory_mb": 1024, "provisioned_concurrency": 0}}): set by
# the CDK from the stage config; unset, the router emits no CostUsd.
PRICES_VARIABLE: Final[str] = "PRICES"
SERVERLESS_SIZES_VARIABLE: Final[str] = "SERVERLESS_ENDPOINT_SIZES"
# The sweeper's: each async endpoint's instance type ({"*": the stage default, "<endpoint>": where it differs})
# and the seconds between sweeps, over which it charges each run's running instances.
ASYNC_INSTANCE_TYPES_VARIABLE: Final[str] = "ASYNC_INSTANCE_TYPES"
SWEEP_INTERVAL_VARIABLE: Final[str] = "SWEEP_INTERVAL_S"

# The shadow worker (functions/handlers/shadow/): one EMF document per shadowed request, by service, model and
# the shadow's version. Counted for the dashboard only: a shadow's failures never page.
SHADOW_SERVICE: Final[str] = "inference-router-shadow"
VERSION_DIMENSION: Final[str] = "version"
SHADOW_REQUESTS_METRIC: Final[str] = "ShadowRequests"
# 1 when every output of the shadow's answer agreed with the primary's (within the version's tolerance).
SHADOW_AGREEMENTS_METRIC: Final[str] = "ShadowAgreements"
SHADOW_ERRORS_METRIC: Final[str] = "ShadowErrors"
SHADOW_LATENCY_METRIC: Final[str] = "ShadowLatency"
# Router side: a request sampled for the shadow but not shipped (its line over the log event cap, or a failure
# while shipping it); the primary answer is never affected.
SHADOW_SKIPPED_METRIC: Final[str] = "ShadowSkipped"
# The key of the router's log line that carries a sampled request to the shadow worker; the subscription
# filter matches on it.
SHADOW_LINE_KEY: Final[str] = "shadow_request"
# Router side of capture (functions/handlers/router/capture.py): a sampled request's capture line not written,
# Skipped when over the log event cap, Errors when something failed building or writing it. Never the answer.
CAPTURE_SKIPPED_METRIC: Final[str] = "CaptureSkipped"
CAPTURE_ERRORS_METRIC: Final[str] = "CaptureErrors"
# The key of the router's capture line (value 1); the capture subscription filter matches on it.
CAPTURE_LINE_KEY: Final[str] = "capture"
