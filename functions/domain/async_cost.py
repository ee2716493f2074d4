"""What the async endpoints' instances cost per sweep, by model: pure arithmetic over what the sweeper read.

An async endpoint bills its instances by the second whether or not they work, so the cost of serving its
jobs is its instance time: each sweep charges the instances running then for the interval since the last one
(at most the sweep interval off when the count changes in between). A model's cost per 1,000 predictions is
then 1000 * SUM(CostUsd) / SUM(Requests) over any window: the instance time amortized over the jobs served.
An endpoint several models share splits its cost evenly between them.

Example:
    >>> from functions.config.prices import region_prices
    >>> costs = async_instance_costs({"iris": "dev-iris-async"}, {"dev-iris-async": 2},
    ...                              {"dev-iris-async": "ml.m5.large"}, region_prices("us-east-1"), 300)
    >>> round(costs["iris"], 6)  # 2 instances x 300 s x $0.115 / 3600 s
    0.019167
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from functions.config.prices import RegionPrices
from functions.domain.cost import instance_cost


class CapacityUnavailableError(Exception):
    """An endpoint's instance count could not be read (not because the endpoint does not exist)."""


def async_instance_costs(
    endpoints_by_model: Mapping[str, str],
    instances: Mapping[str, int],
    instance_types: Mapping[str, str],
    prices: RegionPrices,
    seconds: float,
) -> dict[str, float]:
    """USD by model for ``seconds`` of each endpoint's running ``instances``; a model whose endpoint has no
    count (missing, or not read) gets no entry. An instance type without a price raises PriceTableError."""
    sharing = Counter(endpoints_by_model.values())
    costs: dict[str, float] = {}
    for model, endpoint in sorted(endpoints_by_model.items()):
        if endpoint not in instances:
            continue
        per_instance = instance_cost(prices, instance_type=instance_types[endpoint], seconds=seconds)
        costs[model] = instances[endpoint] * per_instance / sharing[endpoint]
    return costs
