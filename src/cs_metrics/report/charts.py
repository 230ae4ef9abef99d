"""Small inline SVG charts for the report, drawn from numbers only (trusted markup)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from cs_metrics.formats import percent

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def is_nan(value: Any) -> bool:
    """A float NaN (None is not one)."""
    return isinstance(value, float) and math.isnan(value)


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal; an en dash when null (the report's mark)."""
    return percent(value, missing="–")


def _f(value: float) -> str:
    """A coordinate with at most one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def sparkline(
    rates: Iterable[float | None], target: float, labels: Iterable[str], title: str
) -> Markup:
    """An 8-week line of the response rate `title` on a fixed axis (one slot per Monday,
    domain 40-100%), gaps for weeks without an evaluation, the target dashed; each point
    carries its week and value (SVG title), the last one coloured pass or fail. `title`
    names the rate for the alt text of a row without any evaluation."""
    values = [None if v is None or is_nan(v) else float(v) for v in rates]
    names = list(labels)
    width, height, pad, low = 84.0, 22.0, 2.0, 0.4
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def y(v: float) -> float:
        clipped = min(max(v, low), 1.0)
        return pad + (1.0 - clipped) / (1.0 - low) * (height - 2 * pad)

    path, pen_down = [], False
    for i, v in enumerate(values):
        if v is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{_f(pad + i * step)} {_f(y(v))}")
        pen_down = True
    # Sized by CSS (svg.spark) and drawn tersely: 2,000 of these share one page.
    parts = [
        f'<svg class="spark" viewBox="0 0 {_f(width)} {_f(height)}">',
        f'<path class="tgt" d="M0 {_f(y(target))}H{_f(width)}"/>',
    ]
    if path:
        parts.append(f'<path d="{"".join(path)}"/>')
    else:
        parts.append(f"<title>{escape(title)}: no evaluation in {len(values)} weeks</title>")
    last = max((i for i, v in enumerate(values) if v is not None), default=None)
    for i, v in enumerate(values):
        if v is None:
            continue
        css = (' class="ok"' if v >= target else ' class="bad"') if i == last else ""
        parts.append(
            f'<circle{css} cx="{_f(pad + i * step)}" cy="{_f(y(v))}">'
            f"<title>{escape(names[i])} {pct(v)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def shade_levels(received: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Shade step (0-4) of each heatmap cell relative to the busiest hour, and the chat
    counts each step stands for (`1-3`, `4-6`, ...)."""
    peak = max(int(received.max()), 1)
    levels = np.where(received > 0, np.ceil(received / peak * 4).astype(int), 0)
    ranges = []
    for level in range(1, 5):
        low, high = math.floor(peak * (level - 1) / 4) + 1, math.floor(peak * level / 4)
        if high >= low:
            ranges.append(f"{low}" if low == high else f"{low}-{high}")
        else:
            ranges.append("")
    return levels, ranges


def heatmap(
    received: np.ndarray,
    missed: np.ndarray,
    days: list[dt.date],
    holiday: np.ndarray | None = None,
) -> Markup:
    """Hour-of-day (columns) by day (rows): shade = chats received, red dot = missed or late,
    hatched outline = Holiday Mode on in that hour; every cell's counts in its SVG title."""
    cell_w, cell_h, left, top = 14, 13, 44, 14
    width, height = left + 24 * cell_w + 2, top + len(days) * cell_h + 2
    levels, _ranges = shade_levels(received)
    holiday = holiday if holiday is not None else np.zeros(received.shape, dtype=bool)
    parts = [
        f'<svg class="heat" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Chats received and missed by local hour and day">'
    ]
    parts += [f'<text x="{left + h * cell_w}" y="10">{h:02d}</text>' for h in range(0, 24, 3)]
    parts += [
        f'<text x="0" y="{top + r * cell_h + 10}">{escape(WEEKDAYS[d.weekday()])} {d.day}</text>'
        for r, d in enumerate(days)
    ]
    for r, d in enumerate(days):
        for h in range(24):
            n, m = int(received[r, h]), int(missed[r, h])
            text = f"{WEEKDAYS[d.weekday()]} {d.day} {h:02d}:00-{h:02d}:59: {n} chat" + (
                "s" if n != 1 else ""
            )
            if m:
                text += f", {m} missed or late"
            if holiday[r, h]:
                text += ", Holiday Mode on"
            css = f"q{levels[r, h]}" + (" hm" if holiday[r, h] else "")
            parts.append(
                f'<rect class="{css}" x="{left + h * cell_w + 1}" y="{top + r * cell_h + 1}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}"><title>{text}</title></rect>'
            )
    rows, hours = np.nonzero(missed > 0)
    for r, h in zip(rows.tolist(), hours.tolist(), strict=True):
        radius = 1.5 + min(int(missed[r, h]), 4) * 0.5
        parts.append(
            f'<circle class="miss" cx="{left + h * cell_w + cell_w / 2:g}" '
            f'cy="{top + r * cell_h + cell_h / 2:g}" r="{radius:g}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar(share: float, css: str = "bar", width: int = 120, title: str = "") -> Markup:
    """A horizontal bar of `share` (0..1) of `width` pixels; `title` names its value."""
    filled = max(0.0, min(share, 1.0)) * width
    label = f"<title>{escape(title)}</title>" if title else ""
    return Markup(
        f'<svg class="{css}" viewBox="0 0 {width} 10" width="{width}" height="10" '
        'aria-hidden="true">'
        f'{label}<rect class="bg" width="{width}" height="10"/>'
        f'<rect width="{_f(filled)}" height="10"/></svg>'
    )


def split_bar(first: int, second: int, width: int = 240) -> Markup:
    """Two shares side by side (auto-reply, person)."""
    total = first + second
    a = first / total * width if total else 0.0
    return Markup(
        f'<svg class="split" viewBox="0 0 {width} 12" width="{width}" height="12" '
        'aria-hidden="true">'
        f'<rect class="auto" width="{_f(a)}" height="12"/>'
        f'<rect class="person" x="{_f(a)}" width="{_f(width - a)}" height="12"/></svg>'
        if total
        else f'<svg class="split" viewBox="0 0 {width} 12" width="{width}" height="12" '
        'aria-hidden="true"><rect class="bg" width="100%" height="12"/></svg>'
    )
