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
