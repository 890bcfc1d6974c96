"""Server-rendered SVG bar charts: no JavaScript, no CDN, readable by screen readers.

Each chart is an `<svg role="img">` with a title and a one-sentence description; every bar
carries a `<title>` tooltip; the page puts the same numbers in a table beneath.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from math import ceil

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 30


@dataclass(frozen=True)
class Series:
    key: str  # CSS class suffix: the colour comes from the stylesheet
    label: str
    values: list[float | None]  # one per day; None = nothing to show that day


def _nice_max(value: float) -> float:
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = ceil(value / (magnitude * step)) * magnitude * step
        if top >= value:
            return top
    return value


def _fmt(value: float, unit: str) -> str:
    return f"{value:.0f}{unit}"


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    days: list[date],
    series: list[Series],
    *,
    unit: str = "",
    fixed_max: float | None = None,
) -> Markup:
    """Stacked bars per day (one series gives plain bars)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(days))]
    top = fixed_max or _nice_max(max(totals, default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    label_every = max(1, ceil(len(days) / 10))

    parts = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    for tick in (0, top / 2, top):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(tick, unit))}</text>"
        )
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = TOP + plot_h
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            tip = f"{day:%a %d %b}: {s.label} {_fmt(value, unit)}"
            parts.append(
                f'<rect class="bar s-{s.key}" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
            )
        if i % label_every == 0 or i == len(days) - 1:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(f"{day:%d %b}")}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
