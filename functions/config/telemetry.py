"""Names the functions emit and the alarms read: one namespace for every custom metric, the services."""

from __future__ import annotations

from typing import Final

# Custom metrics of the async pipeline (Powertools EMF adds the "service" dimension); alarms read the same names.
METRICS_NAMESPACE: Final[str] = "InferenceRouter"
RESULTS_SERVICE: Final[str] = "inference-results"
SWEEPER_SERVICE: Final[str] = "inference-sweeper"
OLDEST_OPEN_JOB_AGE_METRIC: Final[str] = "OldestOpenJobAgeSeconds"
