"""ModelDashboard: ``InferenceRouter-<stage>-<model>``, one model's router metrics and SageMaker endpoints.

It lives in the model's stack, so it is created, changed and removed with the model and no other stack
changes; the widgets come from :mod:`infra.constructs.dashboards`.
"""

from __future__ import annotations

from constructs import Construct

from infra.constructs.dashboards import (
    async_groups,
    cost_group,
    dashboard_name,
    facade,
    model_router_groups,
    serverless_groups,
)


class ModelDashboard(Construct):
    """Props (keyword-only):
    stage: the stage name; model: the model name (both name the dashboard).
    serverless_endpoint / async_endpoint: the model's endpoint names, or None.
    serverless_provisioned: whether the serverless endpoint has provisioned concurrency (its widgets then).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        model: str,
        serverless_endpoint: str | None,
        serverless_provisioned: bool,
        async_endpoint: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        name = dashboard_name(stage, model)
        monitoring = facade(self, name)
        monitoring.add_large_header(f"Model {model} ({stage})")
        endpoints = [endpoint for endpoint in (serverless_endpoint, async_endpoint) if endpoint]
        routes = [
            route for route, endpoint in (("serverless", serverless_endpoint), ("async", async_endpoint)) if endpoint
        ]
        monitoring.monitor_custom(
            alarm_friendly_name=f"{model}-router",
            human_readable_name=f"Router: requests for {model}",
            metric_groups=model_router_groups(model, routes, endpoints),
        )
        monitoring.monitor_custom(
            alarm_friendly_name=f"{model}-cost",
            human_readable_name=f"Cost of {model}: its requests and its async instance time",
            metric_groups=[cost_group(model)],
        )
        if serverless_endpoint is not None:
            monitoring.monitor_custom(
                alarm_friendly_name=f"{model}-serverless",
                human_readable_name=f"Serverless endpoint {serverless_endpoint}",
                metric_groups=serverless_groups(serverless_endpoint, provisioned=serverless_provisioned),
            )
        if async_endpoint is not None:
            monitoring.monitor_custom(
                alarm_friendly_name=f"{model}-async",
                human_readable_name=f"Async endpoint {async_endpoint}",
                metric_groups=async_groups(async_endpoint),
            )
