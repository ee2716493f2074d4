"""The plan as text for a person and as the ``--json`` document."""

from __future__ import annotations

import math
from typing import Any

from ops.planner.plan import Plan, Setup, headline
from ops.planner.router import RouterOption


def _ms(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else "inf"


def router_json(option: RouterOption) -> dict[str, Any]:
    return {
        "strategy": option.strategy,
        "description": option.description,
        "cost_usd": round(option.cost_usd, 8),
        "cold_starts": option.cold_starts,
        "throttles": int(option.throttled.sum()),
        "hourly_levels": list(option.hourly_levels) or None,
        "min_capacity": option.min_capacity,
        "max_capacity": option.max_capacity,
        "target_utilization": option.target_utilization,
    }


def setup_json(setup: Setup) -> dict[str, Any]:
    return {
        "cost_usd": round(setup.cost_usd, 8),
        "p99_ms": round(setup.p99_ms, 3) if math.isfinite(setup.p99_ms) else None,
        "p99_ms_by_model": {name: round(v, 3) if math.isfinite(v) else None for name, v in setup.p99_by_model.items()},
        "router": router_json(setup.router),
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "models": {
            name: {
                "target_p99_ms": model.target_ms,
                "meets_target": model.meets_target,
                "peak_concurrency": model.peak_concurrency,
                "options": [option.to_json() for option in model.options],
                "recommended": model.recommended.to_json(),
            }
            for name, model in plan.models.items()
        },
        "router": {
            "options": [router_json(option) for option in plan.router_options],
            "recommended": router_json(plan.recommended.router),
        },
        "recommended_setup": setup_json(plan.recommended),
        "all_serverless_baseline": setup_json(plan.baseline),
        "saving": round(plan.saving, 6),
        "requests": plan.requests,
        "elapsed_s": round(plan.elapsed_s, 3),
    }


def plan_text(plan: Plan) -> str:
    hours = (plan.span_s[1] - plan.span_s[0]) / 3600
    lines = [f"{plan.requests} requests over {hours:.1f} h, planned in {plan.elapsed_s:.1f} s", ""]
    for name, model in plan.models.items():
        lines.append(f"{name}: p99 target {model.target_ms:.0f} ms, peak concurrency {model.peak_concurrency}")
        lines.append(f"  {'option':<34}{'cost $':>12}{'$/1000':>10}{'p50':>8}{'p95':>8}{'p99':>8}{'cold':>7}{'thr':>6}")
        for option in model.options:
            mark = "*" if option is model.recommended else " "
            lines.append(
                f" {mark}{option.label:<34}{option.cost_usd:>12.4f}{option.cost_per_1000_usd:>10.5f}"
                f"{_ms(option.p50_ms):>8}{_ms(option.p95_ms):>8}{_ms(option.p99_ms):>8}"
                f"{option.cold_starts:>7}{option.throttles:>6}"
            )
        verdict = "meets" if model.meets_target else "cannot meet"
        lines.append(f"  recommended: {model.recommended.label} ({verdict} the target)")
        lines.append("")
    lines.append("router provisioned concurrency (over all models):")
    for router in plan.router_options:
        mark = "*" if router is plan.recommended.router else " "
        lines.append(
            f" {mark}{router.description:<40} added ${router.cost_usd:>10.4f}, {router.cold_starts} cold starts"
        )
    lines.append("")
    lines.append(headline(plan))
    return "\n".join(lines)
