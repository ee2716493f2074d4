"""The one AWS call preflight makes: a service's applied quota values from Service Quotas, by quota name."""

from __future__ import annotations

from typing import Any


def quota_values(client: Any, service_code: str) -> dict[str, float]:
    """``{quota name: value}`` for ``service_code`` (``sagemaker``, ``lambda``) in the client's region."""
    values: dict[str, float] = {}
    for page in client.get_paginator("list_service_quotas").paginate(ServiceCode=service_code):
        for quota in page.get("Quotas", []):
            if "QuotaName" in quota and "Value" in quota:
                values[str(quota["QuotaName"])] = float(quota["Value"])
    return values
