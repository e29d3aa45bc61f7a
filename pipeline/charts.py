"""Server-side charts: pure functions that return inline SVG markup, no JavaScript.

Each chart has a <title> and <desc> for screen readers, writes its numbers as text
next to the marks, and tells series apart by pattern as well as colour, so it reads
in greyscale and without colour vision. Marks link to the deals behind them when a
link is given. The page shows the same numbers as a table beside each chart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

__all__ = ["Bar", "Segment", "bar_chart", "funnel_chart", "stacked_bar_chart"]

_ids = itertools.count(1)

#: (fill colour, pattern) per series; patterns keep series apart without colour.
SERIES_STYLES = [
    ("#1f5eff", "solid"),
    ("#f59e0b", "diagonal"),
    ("#10b981", "dots"),
    ("#8b5cf6", "cross"),
    ("#ef4444", "horizontal"),
    ("#64748b", "vertical"),
]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str = ""  # the value as shown; defaults to the number
    href: str = ""


@dataclass(frozen=True)
class Segment:
    series: str
    value: float
    text: str = ""
    href: str = ""


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return number_format(int(value), 0, use_l10n=True, force_grouping=True)
    return number_format(value, 1, use_l10n=True, force_grouping=True)


def _link(svg: str, href: str, label: str) -> str:
    if not href:
        return svg
    return f'<a href="{escape(href)}" aria-label="{escape(label)}">{svg}</a>'


def _pattern_defs(prefix: str, count: int) -> str:
    defs = []
    for index in range(count):
        colour, pattern = SERIES_STYLES[index % len(SERIES_STYLES)]
        pid = f"{prefix}-p{index}"
        marks = {
            "solid": "",
            "diagonal": '<path d="M0,8 L8,0" stroke="#fff" stroke-width="2"/>',
            "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
            "cross": '<path d="M0,4 H8 M4,0 V8" stroke="#fff" stroke-width="1.5"/>',
            "horizontal": '<path d="M0,4 H8" stroke="#fff" stroke-width="2"/>',
            "vertical": '<path d="M4,0 V8" stroke="#fff" stroke-width="2"/>',
        }[pattern]
        defs.append(
            f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{colour}"/>{marks}</pattern>'
        )
    return "<defs>" + "".join(defs) + "</defs>"


def _open(prefix: str, width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{prefix}-t {prefix}-d" font-family="system-ui, sans-serif" '
        f'font-size="12">'
        f'<title id="{prefix}-t">{escape(title)}</title>'
        f'<desc id="{prefix}-d">{escape(desc)}</desc>'
    )


def _empty(prefix: str, width: int, title: str) -> SafeString:
    return mark_safe(
        _open(prefix, width, 60, title, gettext("No data for these filters."))
        + f'<text x="{width / 2}" y="34" text-anchor="middle" fill="#5f6b7a">'
        + escape(gettext("No deals for these filters."))
        + "</text></svg>"
    )


def funnel_chart(stages: Sequence[Bar], *, title: str, width: int = 560) -> SafeString:
    """A funnel: one centred bar per stage, width proportional to its value, labelled
    with the stage name on the left and the value on the right."""
    prefix = f"funnel{next(_ids)}"
    if not stages or max(s.value for s in stages) <= 0:
        return _empty(prefix, width, title)
    row, gap, label_w, value_w = 30, 6, 130, 80
    height = len(stages) * (row + gap) + gap
    biggest = max(s.value for s in stages)
    area = width - label_w - value_w
    desc = "; ".join(f"{s.label}: {s.text or _fmt(s.value)}" for s in stages)
    parts = [_open(prefix, width, height, title, desc)]
    for index, stage in enumerate(stages):
        y = gap + index * (row + gap)
        bar_w = max(2.0, area * stage.value / biggest) if stage.value else 0
        x = label_w + (area - bar_w) / 2
        text = stage.text or _fmt(stage.value)
        mark = (
            f'<rect x="{x:.1f}" y="{y}" width="{bar_w:.1f}" height="{row}" rx="3" '
            f'fill="#1f5eff" fill-opacity="{1 - index * 0.1:.2f}"/>'
        )
        parts.append(_link(mark, stage.href, f"{stage.label}: {text}"))
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row / 2 + 4}" text-anchor="end" '
            f'fill="#1c2430">{escape(stage.label)}</text>'
            f'<text x="{width - value_w + 8}" y="{y + row / 2 + 4}" fill="#1c2430" '
            f'font-weight="600">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 560) -> SafeString:
    """Horizontal bars with the label on the left and the value at the bar's end."""
    prefix = f"bars{next(_ids)}"
    if not bars or max(b.value for b in bars) <= 0:
        return _empty(prefix, width, title)
    row, gap, label_w, value_w = 22, 6, 150, 70
    height = len(bars) * (row + gap) + gap
    biggest = max(b.value for b in bars)
    area = width - label_w - value_w
    desc = "; ".join(f"{b.label}: {b.text or _fmt(b.value)}" for b in bars)
    parts = [_open(prefix, width, height, title, desc)]
    for index, bar in enumerate(bars):
        y = gap + index * (row + gap)
        bar_w = max(2.0, area * bar.value / biggest) if bar.value else 0
        text = bar.text or _fmt(bar.value)
        mark = (
            f'<rect x="{label_w}" y="{y}" width="{bar_w:.1f}" height="{row}" rx="2" '
            f'fill="#1f5eff"/>'
        )
        parts.append(_link(mark, bar.href, f"{bar.label}: {text}"))
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row / 2 + 4}" text-anchor="end" '
            f'fill="#1c2430">{escape(bar.label)}</text>'
            f'<text x="{label_w + bar_w + 6:.1f}" y="{y + row / 2 + 4}" fill="#1c2430" '
            f'font-weight="600">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def stacked_bar_chart(
    groups: Sequence[tuple[str, Sequence[Segment]]],
    *,
    series: Sequence[str],
    title: str,
    value_text: Callable[[float], str] = _fmt,
    width: int = 640,
    height: int = 280,
) -> SafeString:
    """Vertical bars, one per group (e.g. a month), stacked by series (e.g. a forecast
    category). Each series has its own pattern, shown in the legend; segments tall
    enough carry their value, and every bar its total above it."""
    prefix = f"stack{next(_ids)}"
    totals = [sum(s.value for s in segments) for _label, segments in groups]
    if not groups or max(totals) <= 0:
        return _empty(prefix, width, title)
    legend_h, axis_h, top = 24, 34, 18
    plot_h = height - legend_h - axis_h - top
    left, right = 10, 10
    slot = (width - left - right) / len(groups)
    bar_w = min(64.0, slot * 0.7)
    biggest = max(totals)
    index_of = {name: i for i, name in enumerate(series)}
    desc_parts = []
    for (label, segments), total in zip(groups, totals, strict=True):
        inner = ", ".join(f"{s.series} {s.text or value_text(s.value)}" for s in segments)
        desc_parts.append(f"{label}: total {value_text(total)} ({inner})")
    parts = [
        _open(prefix, width, height, title, "; ".join(desc_parts)),
        _pattern_defs(prefix, len(series)),
    ]
    # legend
    x = left
    for name in series:
        parts.append(
            f'<rect x="{x}" y="4" width="14" height="14" fill="url(#{prefix}-p{index_of[name]})" '
            f'stroke="#1c2430" stroke-width=".5"/>'
            f'<text x="{x + 19}" y="15" fill="#1c2430">{escape(name)}</text>'
        )
        x += 28 + 7 * len(name)
    base = legend_h + top + plot_h
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#94a3b8"/>'
    )
    for index, ((label, segments), total) in enumerate(zip(groups, totals, strict=True)):
        cx = left + slot * index + slot / 2
        x0 = cx - bar_w / 2
        y = base
        for segment in segments:
            if segment.value <= 0:
                continue
            h = plot_h * segment.value / biggest
            y -= h
            text = segment.text or value_text(segment.value)
            mark = (
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="url(#{prefix}-p{index_of[segment.series]})" stroke="#fff" '
                f'stroke-width="1"/>'
            )
            parts.append(_link(mark, segment.href, f"{label}, {segment.series}: {text}"))
            if h >= 16 and bar_w >= 34:
                parts.append(
                    f'<text x="{cx:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" '
                    f'font-size="10" fill="#111" paint-order="stroke" stroke="#fff" '
                    f'stroke-width="3">{escape(text)}</text>'
                )
        parts.append(
            f'<text x="{cx:.1f}" y="{y - 5:.1f}" text-anchor="middle" font-weight="600" '
            f'fill="#1c2430">{escape(value_text(total))}</text>'
            f'<text x="{cx:.1f}" y="{base + 16}" text-anchor="middle" '
            f'fill="#1c2430">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
