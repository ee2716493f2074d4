"""``--plot OUT.html``: a self-contained HTML page of inline SVG (no plotting dependency): per model, cost
against p99 for every option (the recommended one marked), and the router's concurrency per minute against the
recommended provisioned concurrency."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from ops.planner.plan import ModelPlan, Plan

WIDTH, HEIGHT, MARGIN = 640, 320, 50


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    return out_low + (value - low) / (high - low or 1.0) * (out_high - out_low)


def _frame(title: str, x_label: str, y_label: str, body: str) -> str:
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<rect x="{MARGIN}" y="10" width="{WIDTH - MARGIN - 10}" height="{HEIGHT - MARGIN - 10}" '
        'fill="none" stroke="#999"/>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 10}" text-anchor="middle">{html.escape(x_label)}</text>'
        f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">'
        f"{html.escape(y_label)}</text>{body}</svg></figure>"
    )


def cost_vs_p99(model: ModelPlan) -> str:
    shown = [option for option in model.options if math.isfinite(option.p99_ms)]
    if not shown:
        return _frame(f"{model.model}: every option throttles over 1%", "p99 (ms, log)", "cost (USD)", "")
    x_low, x_high = math.log10(min(o.p99_ms for o in shown) or 1), math.log10(max(o.p99_ms for o in shown) or 1)
    y_low, y_high = min(o.cost_usd for o in shown), max(o.cost_usd for o in shown)
    marks = []
    for option in shown:
        x = _scale(math.log10(option.p99_ms or 1), x_low, x_high, MARGIN + 5, WIDTH - 20)
        y = _scale(option.cost_usd, y_low, y_high, HEIGHT - MARGIN - 5, 20)
        chosen = option is model.recommended
        marks.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{7 if chosen else 3}" fill="{"#d62728" if chosen else "#1f77b4"}">'
            f"<title>{html.escape(option.label)}: ${option.cost_usd:.4f}, p99 {option.p99_ms:.0f} ms</title></circle>"
        )
    target = _scale(math.log10(model.target_ms), x_low, x_high, MARGIN + 5, WIDTH - 20)
    marks.append(
        f'<line x1="{target:.1f}" y1="10" x2="{target:.1f}" y2="{HEIGHT - MARGIN}" '
        'stroke="#2ca02c" stroke-dasharray="4"/>'
    )
    title = f"{model.model}: cost vs p99 (red: recommended {model.recommended.label}; green: target)"
    return _frame(title, "p99 (ms, log)", "cost over the trace (USD)", "".join(marks))


def concurrency_over_time(plan: Plan) -> str:
    concurrency = plan.concurrency_per_minute
    minutes = np.arange(len(concurrency), dtype=np.float64)
    levels = plan.recommended.router.steps.at(plan.span_s[0] + minutes * 60.0)
    high = float(max(concurrency.max(initial=0), levels.max(initial=0), 1))

    def line(values: np.ndarray, colour: str) -> str:
        points = " ".join(
            f"{_scale(m, 0, max(len(values) - 1, 1), MARGIN, WIDTH - 10):.1f},"
            f"{_scale(v, 0, high, HEIGHT - MARGIN, 10):.1f}"
            for m, v in zip(minutes.tolist(), values.tolist(), strict=True)
        )
        return f'<polyline fill="none" stroke="{colour}" points="{points}"/>'

    title = (
        "router concurrency per minute (blue) and recommended provisioned concurrency "
        f"(red: {plan.recommended.router.description})"
    )
    return _frame(
        title,
        "minutes from the trace's start",
        "concurrent executions",
        line(concurrency, "#1f77b4") + line(levels.astype(float), "#d62728"),
    )


def write_plot(plan: Plan, out: Path) -> None:
    figures = "".join(cost_vs_p99(model) for model in plan.models.values()) + concurrency_over_time(plan)
    out.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ops plan</title></head><body>'
        f"<h1>Capacity plan: {plan.requests} requests</h1>{figures}</body></html>\n"
    )
