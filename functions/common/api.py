"""The public API's resources: one list read by the router, the local API and the CDK API construct."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ApiRoute:
    method: str
    resource: str  # API Gateway resource template, e.g. /v2/models/{model}/infer

    @property
    def resolver_path(self) -> str:
        """The same path in Powertools' route syntax (``<model>``)."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.resource)


SERVER_METADATA = ApiRoute("GET", "/v2")
HEALTH_LIVE = ApiRoute("GET", "/v2/health/live")
HEALTH_READY = ApiRoute("GET", "/v2/health/ready")
MODEL_METADATA = ApiRoute("GET", "/v2/models/{model}")
MODEL_READY = ApiRoute("GET", "/v2/models/{model}/ready")
MODEL_INFER = ApiRoute("POST", "/v2/models/{model}/infer")
JOB_STATUS = ApiRoute("GET", "/v2/jobs/{job_id}")

ROUTES: Final[tuple[ApiRoute, ...]] = (
    SERVER_METADATA,
    HEALTH_LIVE,
    HEALTH_READY,
    MODEL_METADATA,
    MODEL_READY,
    MODEL_INFER,
    JOB_STATUS,
)
