"""A model's drift run as one self-contained HTML page: a table of every feature and output, then per feature
its bins as bars, baseline against window (inline SVG: no script, no stylesheet, nothing fetched)."""

from __future__ import annotations

from html import escape

from functions.domain.drift_evaluation import FeatureDrift, ModelDrift

BAR_WIDTH = 14
CHART_HEIGHT = 80


def histogram_svg(feature: FeatureDrift) -> str:
    bins = len(feature.labels)
    width = bins * (2 * BAR_WIDTH + 6) + 6
    top = max((*feature.baseline, *feature.window, 1e-9))
    bars: list[str] = []
    for i, (label, expected, seen) in enumerate(zip(feature.labels, feature.baseline, feature.window, strict=True)):
        x = 6 + i * (2 * BAR_WIDTH + 6)
        for offset, share, colour, name in (
            (0, expected, "#7a8fa6", "baseline"),
            (BAR_WIDTH, seen, "#d9822b", "window"),
        ):
            height = round(CHART_HEIGHT * share / top, 1)
            bars.append(
                f'<rect x="{x + offset}" y="{CHART_HEIGHT - height}" width="{BAR_WIDTH - 1}" height="{height}" '
                f'fill="{colour}"><title>{escape(label)}: {name} {share:.1%}</title></rect>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{CHART_HEIGHT + 2}" role="img">'
        + "".join(bars)
        + "</svg>"
    )


def rows(kind: str, features: dict[str, FeatureDrift]) -> str:
    cells = []
    for name, feature in features.items():
        ks = "" if feature.ks_p_value is None else f"{feature.ks_statistic:.3f} (p={feature.ks_p_value:.3g})"
        verdict = "<b>drifted</b>" if feature.drifted else "stable"
        cells.append(
            f"<tr><td>{kind}</td><td>{escape(name)}</td><td>{feature.samples}</td><td>{feature.psi:.4f}</td>"
            f"<td>{ks}</td><td>{verdict}</td><td>{histogram_svg(feature)}</td></tr>"
        )
    return "".join(cells)


def render_report(drift: ModelDrift, window: str, psi_threshold: float) -> str:
    title = f"Drift of {escape(drift.model)}, {escape(window)}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f"<h1>{title}</h1><p>{drift.records} captured requests; PSI threshold {psi_threshold:g}; bars: "
        '<span style="color:#7a8fa6">baseline</span> vs <span style="color:#d9822b">window</span> per bin.</p>'
        "<table><tr><th></th><th>feature</th><th>values</th><th>PSI</th><th>KS</th><th></th><th>bins</th></tr>"
        f"{rows('input', dict(drift.features))}{rows('output', dict(drift.outputs))}</table></body></html>\n"
    )
