"""The metrics a stage emits for a scenario's minutes, keyed as CloudWatch keys them: namespace, metric name
and the exact set of dimensions it is published under.

Each metric is emitted under the dimension sets its publisher uses (Lambda: per function and per alias;
SageMaker: per endpoint and variant, or per endpoint for async backlog metrics; the router's EMF documents as
``functions.handlers.router`` writes them). An alarm that reads a metric under dimensions nobody publishes, or a
metric this module does not know, raises :class:`UnknownMetricError`: such an alarm would sit in its missing-data
state forever, which is a defect to fix, not a quiet alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from functions.config.drift_contract import DRIFT_SERVICE, MAX_FEATURE_PSI_METRIC
from functions.config.telemetry import (
    COST_METRIC,
    METRICS_NAMESPACE,
    MISMATCHED_NOTIFICATIONS_METRIC,
    OLDEST_OPEN_JOB_AGE_METRIC,
    RESULTS_SERVICE,
    ROUTER_SERVICE,
    SWEEPER_SERVICE,
    UNHANDLED_ERRORS_METRIC,
)
from functions.domain.cost import instance_cost
from ops.alarm_simulator.scenarios import JOBS_PER_INSTANCE_MINUTE
from ops.alarm_simulator.series import Samples
from ops.alarm_simulator.template import DEAD_LETTER_QUEUE
from ops.alarm_simulator.traffic import (
    ROUTER_OVERHEAD_MS,
    Answers,
    Capacity,
    Minute,
    answers,
    latency_histogram,
    peak_concurrency,
    spillover,
)

ROUTER_ALIAS: Final[str] = f"{ROUTER_SERVICE}:live"
# An infer request's body plus its answer, in bytes (an iris row in, a label out): SageMaker's data charge.
PAYLOAD_BYTES: Final[int] = 300
Emitter = Callable[[Minute, Answers, Mapping[str, str]], Samples | None]
# The router's published version (its rollback alarms, infra/constructs/router_deployment.py): Lambda's per-alias
# set by the version that ran, and the router's EMF set by router_version. The simulated day runs one version.
EXECUTED_VERSION: Final[tuple[frozenset[str], ...]] = (frozenset({"FunctionName", "Resource", "ExecutedVersion"}),)
ROUTER_VERSION: Final[tuple[frozenset[str], ...]] = (frozenset({"service", "router_version"}),)
# SageMaker publishes ModelLatency in microseconds ("Amazon SageMaker AI metrics in Amazon CloudWatch").
MICROSECONDS_PER_MS: Final[int] = 1000
# An async job holds its instance for a minute's share of the jobs it works through.
ASYNC_JOB_MS: Final[float] = 60_000 / JOBS_PER_INSTANCE_MINUTE


class UnknownMetricError(LookupError):
    """An alarm reads a metric, or dimensions, that nothing in the simulated stage publishes."""


@dataclass(frozen=True, slots=True)
class _Family:
    dimension_sets: tuple[frozenset[str], ...]
    emit: Emitter


def _count(value: float) -> Samples | None:
    return Samples.value(value)


def _cost(capacity: Capacity) -> Emitter:
    """CostUsd as functions/handlers/router/request_metrics.py and functions/handlers/sweeper/instance_cost.py emit
    it: per request by the router (functions/domain/cost.py), per sweep for the async endpoints' instances (the
    minutes the sweeper runs, each charging the instances up then for the sweep interval)."""

    def emit(minute: Minute, answered: Answers, dimensions: Mapping[str, str]) -> Samples | None:
        named = [dimensions["model"]] if "model" in dimensions else list(capacity.models)
        route = dimensions.get("route")
        costing = capacity.costing
        if costing is None:
            return None
        if dimensions["service"] == SWEEPER_SERVICE:
            if minute.open_job_age_s is None or route not in (None, "async"):
                return None
            types = [capacity.async_instance_types[m] for m in named if m in capacity.async_instance_types]
            each = [instance_cost(costing.prices, instance_type=t, seconds=capacity.sweep_interval_s) for t in types]
            return Samples.value(minute.async_instances * sum(each))
        if dimensions["service"] != ROUTER_SERVICE:
            return None
        synchronous = answered.total if route in (None, "serverless") else 0
        submitted = minute.async_submissions if route in (None, "async") else 0
        if not synchronous + submitted:
            return None
        endpoint_ms = minute.endpoint_ms if answered.endpoint_calls else 0.0
        total = 0.0
        for model in named:
            endpoint = capacity.serverless_endpoints.get(model) if answered.endpoint_calls else None
            total += synchronous * costing.request_cost(
                router_ms=answered.latency_ms, endpoint=endpoint, endpoint_ms=endpoint_ms, data_bytes=PAYLOAD_BYTES
            ) + submitted * costing.request_cost(router_ms=ROUTER_OVERHEAD_MS)
        return Samples.value(total)

    return emit


def _model_latency(median_ms: float, count: int) -> Samples:
    """ModelLatency of ``count`` invocations: the endpoint's own time, which goes on past the router's deadline."""
    return Samples.histogram((ms * MICROSECONDS_PER_MS, share * count) for ms, share in latency_histogram(median_ms))


class SimulatedMetrics:
    """A :class:`~ops.alarm_simulator.engine.MetricSource` over a scenario's minutes for one stage."""

    def __init__(self, timeline: Sequence[Minute], capacity: Capacity) -> None:
        self.timeline = list(timeline)
        self.capacity = capacity
        self.answered = [answers(minute, capacity.deadline_ms) for minute in self.timeline]
        self.families = self._families()

    @property
    def minutes(self) -> int:
        return len(self.timeline)

    def samples(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> list[Samples | None]:
        family = self.families.get((namespace, metric_name))
        if family is None:
            raise UnknownMetricError(
                f"{namespace} {metric_name} is not simulated: add it to ops/alarm_simulator/emitters.py"
            )
        if frozenset(dimensions) not in family.dimension_sets:
            raise UnknownMetricError(
                f"{namespace} {metric_name} is not published with dimensions {sorted(dimensions)} "
                f"(published with: {[sorted(names) for names in family.dimension_sets]})"
            )
        self._check_values(namespace, metric_name, dimensions)
        return [
            family.emit(minute, answered, dimensions)
            for minute, answered in zip(self.timeline, self.answered, strict=True)
        ]

    def _check_values(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> None:
        known = {
            "FunctionName": {ROUTER_SERVICE},
            "Resource": {ROUTER_ALIAS},
            "EndpointName": set(self.capacity.serverless_provisioned) | set(self.capacity.async_endpoints),
            "VariantName": {"AllTraffic"},
            "QueueName": {DEAD_LETTER_QUEUE},
            "service": {ROUTER_SERVICE, RESULTS_SERVICE, SWEEPER_SERVICE, DRIFT_SERVICE},
            "model": set(self.capacity.models),
            "route": {"serverless", "async", "lambda"},
        }
        for name, value in dimensions.items():
            if name in known and value not in known[name]:
                raise UnknownMetricError(f"{namespace} {metric_name}: nothing publishes {name}={value!r}")

    def _invocations(
        self, on_serverless: Callable[[Minute, Answers], Samples | None], on_async: Callable[[Minute], Samples | None]
    ) -> Emitter:
        """A variant's invocation metrics: the router's calls to a serverless endpoint, the jobs an async endpoint
        works through; published only for minutes with invocations."""

        def emit(minute: Minute, answered: Answers, dimensions: Mapping[str, str]) -> Samples | None:
            # Any other endpoint name was refused by _check_values.
            if dimensions["EndpointName"] in self.capacity.async_endpoints:
                return on_async(minute) if minute.jobs_succeeded else None
            return on_serverless(minute, answered) if answered.endpoint_calls else None

        return emit

    def _families(self) -> dict[tuple[str, str], _Family]:
        capacity = self.capacity
        alias = (frozenset({"FunctionName", "Resource"}), frozenset({"FunctionName"}))
        variant = (frozenset({"EndpointName", "VariantName"}),)
        endpoint = (frozenset({"EndpointName"}),)
        per_request = (frozenset({"service", "model"}), frozenset({"service", "model", "route"}))
        service = (frozenset({"service"}),)
        models = len(capacity.models)

        def invoked(value: Callable[[Minute, Answers], float]) -> Emitter:
            # Lambda publishes its per-invocation metrics only for minutes with invocations.
            return lambda minute, answered, _: _count(value(minute, answered)) if answered.total else None

        def router_spill(minute: Minute, answered: Answers) -> float:
            return models * spillover(answered.total, answered.router_seconds, capacity.router_provisioned)

        def router_peak(answered: Answers) -> float:
            return peak_concurrency(answered.total * models, answered.router_seconds)

        def router_utilization(_: Minute, answered: Answers, __: Mapping[str, str]) -> Samples | None:
            if not answered.total or not capacity.router_provisioned:
                return None
            return Samples.value(min(router_peak(answered), capacity.router_provisioned) / capacity.router_provisioned)

        def router_throttles(_: Minute, answered: Answers) -> float:
            reserved = capacity.router_reserved
            peak = router_peak(answered)
            return (
                0 if reserved is None or peak <= reserved else round(answered.total * models * (peak - reserved) / peak)
            )

        def endpoint_seconds(minute: Minute) -> float:
            return minute.endpoint_ms / 1000

        def serverless(value: Callable[[Minute, Answers, int], Samples | None]) -> Emitter:
            def emit(minute: Minute, answered: Answers, dimensions: Mapping[str, str]) -> Samples | None:
                provisioned = capacity.serverless_provisioned.get(dimensions["EndpointName"])
                if provisioned is None:
                    raise UnknownMetricError(f"{dimensions['EndpointName']} is not a serverless endpoint")
                return value(minute, answered, provisioned) if answered.endpoint_calls else None

            return emit

        def asynchronous(value: Callable[[Minute], float]) -> Emitter:
            def emit(minute: Minute, _: Answers, dimensions: Mapping[str, str]) -> Samples | None:
                if dimensions["EndpointName"] not in capacity.async_endpoints:
                    raise UnknownMetricError(f"{dimensions['EndpointName']} is not an async endpoint")
                return Samples.value(value(minute))

            return emit

        def requests(value: Callable[[Answers], tuple[float, float]], *, every: bool = False) -> Emitter:
            # Async submissions (202s) are requests on the "async" route: never an error, never degraded. By
            # service alone (the router's rollup of Requests), every model's.
            def emit(minute: Minute, answered: Answers, dimensions: Mapping[str, str]) -> Samples | None:
                route = dimensions.get("route")
                hits, total = value(answered) if route in (None, "serverless") and answered.total else (0.0, 0.0)
                submitted = minute.async_submissions if route in (None, "async") else 0
                # ``every``: the metric is 1 for each request (Requests), async submissions included.
                each = 1 if "model" in dimensions else models
                hits, total = each * (hits + (submitted if every else 0)), each * (total + submitted)
                return Samples.events(hits, total) if total else None

            return emit

        def request_latency(
            histogram: Callable[[Answers], Iterable[tuple[float, float]] | None], count: Callable[[Answers], int]
        ) -> Emitter:
            def emit(_: Minute, answered: Answers, dimensions: Mapping[str, str]) -> Samples | None:
                shares = histogram(answered)
                if dimensions.get("route", "serverless") != "serverless" or shares is None or not count(answered):
                    return None
                return Samples.histogram((ms, share * count(answered)) for ms, share in shares)

            return emit

        def endpoint_histogram(answered: Answers) -> Iterable[tuple[float, float]] | None:
            median = answered.endpoint_latency_ms
            if median is None:
                return None
            return ((min(ms, capacity.deadline_ms), share) for ms, share in latency_histogram(median))

        def slow(answered: Answers, dimensions: Mapping[str, str]) -> float:
            target = capacity.latency_targets_ms.get(dimensions["model"])
            if target is None:
                return 0.0
            return sum(share for ms, share in answered.latencies if ms > target) * answered.total

        def custom(service_name: str, value: Callable[[Minute], float | None]) -> Emitter:
            def emit(minute: Minute, _: Answers, dimensions: Mapping[str, str]) -> Samples | None:
                if dimensions["service"] != service_name:
                    return None
                emitted = value(minute)
                return None if emitted is None else Samples.value(emitted)

            return emit

        def breaker(minute: Minute, _: Answers, dimensions: Mapping[str, str]) -> Samples | None:
            count = minute.breaker_opens if dimensions["state"] == "open" else minute.breaker_closes
            return Samples.value(count) if count else None

        lambda_ns, sagemaker, api, sqs = "AWS/Lambda", "AWS/SageMaker", "AWS/ApiGateway", "AWS/SQS"
        return {
            (lambda_ns, "Invocations"): _Family(alias, invoked(lambda _, a: a.total * models)),
            (lambda_ns, "Duration"): _Family(
                alias,
                lambda _, a, __: (
                    Samples.histogram((ms, share * a.total * models) for ms, share in a.latencies) if a.total else None
                ),
            ),
            (lambda_ns, "Errors"): _Family((*alias, *EXECUTED_VERSION), invoked(lambda m, _: m.crashes * models)),
            (lambda_ns, "Throttles"): _Family(alias, invoked(router_throttles)),
            (lambda_ns, "ProvisionedConcurrencySpilloverInvocations"): _Family(alias, invoked(router_spill)),
            (lambda_ns, "ProvisionedConcurrencyUtilization"): _Family(alias, router_utilization),
            (sagemaker, "Invocations"): _Family(variant, serverless(lambda _, a, __: Samples.value(a.endpoint_calls))),
            (sagemaker, "ServerlessProvisionedConcurrencyInvocations"): _Family(
                variant,
                serverless(
                    lambda m, a, pc: Samples.value(
                        a.endpoint_calls - spillover(a.endpoint_calls, endpoint_seconds(m), pc)
                    )
                ),
            ),
            (sagemaker, "Invocation5XXErrors"): _Family(
                variant,
                self._invocations(lambda _, a: Samples.value(a.endpoint_failures), lambda _: Samples.value(0)),
            ),
            (sagemaker, "ModelLatency"): _Family(
                variant,
                self._invocations(
                    lambda m, a: _model_latency(m.endpoint_ms, a.endpoint_calls),
                    lambda m: _model_latency(ASYNC_JOB_MS, m.jobs_succeeded),
                ),
            ),
            (sagemaker, "ServerlessProvisionedConcurrencySpilloverInvocations"): _Family(
                variant,
                serverless(lambda m, a, pc: Samples.value(spillover(a.endpoint_calls, endpoint_seconds(m), pc))),
            ),
            (sagemaker, "ServerlessProvisionedConcurrencyUtilization"): _Family(
                variant,
                serverless(
                    lambda m, a, pc: Samples.value(
                        min(peak_concurrency(a.endpoint_calls, endpoint_seconds(m)), pc) / pc
                    )
                ),
            ),
            (sagemaker, "HasBacklogWithoutCapacity"): _Family(
                endpoint, asynchronous(lambda m: float(m.async_backlog > 0 and m.async_instances == 0))
            ),
            (sagemaker, "ApproximateBacklogSize"): _Family(endpoint, asynchronous(lambda m: m.async_backlog)),
            (sagemaker, "ApproximateAgeOfOldestRequest"): _Family(endpoint, asynchronous(lambda m: m.oldest_request_s)),
            (api, "5XXError"): _Family(
                (frozenset({"ApiName", "Stage"}),),
                lambda _, a, __: Samples.events(a.server_errors * models, a.total * models) if a.total else None,
            ),
            (api, "4XXError"): _Family(
                (frozenset({"ApiName", "Stage"}),),
                lambda _, a, __: Samples.events(a.client_errors * models, a.total * models) if a.total else None,
            ),
            (api, "Count"): _Family(
                (frozenset({"ApiName", "Stage"}),),
                lambda _, a, __: Samples.value(a.total * models) if a.total else None,
            ),
            (sqs, "ApproximateNumberOfMessagesVisible"): _Family(
                (frozenset({"QueueName"}),), lambda m, _, __: Samples.value(m.dead_letters)
            ),
            (METRICS_NAMESPACE, "Requests"): _Family(
                (*per_request, *service, *ROUTER_VERSION), requests(lambda a: (a.total, a.total), every=True)
            ),
            (METRICS_NAMESPACE, COST_METRIC): _Family((*per_request, *service), _cost(capacity)),
            (METRICS_NAMESPACE, "ServerErrors"): _Family(
                (*per_request, *ROUTER_VERSION), requests(lambda a: (a.server_errors, a.total))
            ),
            (METRICS_NAMESPACE, "ClientErrors"): _Family(per_request, requests(lambda a: (a.client_errors, a.total))),
            (METRICS_NAMESPACE, "DegradedRequests"): _Family(per_request, requests(lambda a: (a.degraded, a.total))),
            (METRICS_NAMESPACE, "SlowRequests"): _Family(
                per_request,
                lambda m, a, d: requests(lambda answered: (slow(answered, d), answered.total))(m, a, d),
            ),
            (METRICS_NAMESPACE, "Latency"): _Family(
                (*per_request, *ROUTER_VERSION), request_latency(lambda a: a.latencies, lambda a: a.total)
            ),
            (METRICS_NAMESPACE, "EndpointLatency"): _Family(
                per_request, request_latency(endpoint_histogram, lambda a: a.endpoint_calls)
            ),
            (METRICS_NAMESPACE, UNHANDLED_ERRORS_METRIC): _Family(
                service, custom(ROUTER_SERVICE, lambda m: float(m.unhandled * models) if m.unhandled else None)
            ),
            (METRICS_NAMESPACE, MISMATCHED_NOTIFICATIONS_METRIC): _Family(
                service, custom(RESULTS_SERVICE, lambda m: float(m.forged) if m.forged else None)
            ),
            (METRICS_NAMESPACE, "JobsSucceeded"): _Family(
                service, custom(RESULTS_SERVICE, lambda m: float(m.jobs_succeeded) if m.jobs_succeeded else None)
            ),
            (METRICS_NAMESPACE, OLDEST_OPEN_JOB_AGE_METRIC): _Family(
                service, custom(SWEEPER_SERVICE, lambda m: m.open_job_age_s)
            ),
            (METRICS_NAMESPACE, MAX_FEATURE_PSI_METRIC): _Family(
                (frozenset({"service", "model"}),), custom(DRIFT_SERVICE, lambda m: m.max_feature_psi)
            ),
            (METRICS_NAMESPACE, "DegradedAnswers"): _Family(
                (frozenset({"service", "model", "reason", "cause"}),),
                lambda _, a, __: Samples.value(a.degraded) if a.degraded else None,
            ),
            (METRICS_NAMESPACE, "BreakerTransitions"): _Family(
                (frozenset({"service", "endpoint", "state"}),),
                breaker,
            ),
        }
