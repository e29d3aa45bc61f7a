"""Pagination links that never walk every page: first, last and a few around the current."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def page_window(page, around: int = 2) -> list[int | None]:
    """Page numbers to link from `page`, with None where pages are left out (an ellipsis).

    At most 2 * around + 5 entries, whatever the number of pages (4,000 pages cost what 4
    cost): the first, the last, and `around` on each side of the current page.
    """
    last = page.paginator.num_pages
    shown = sorted(
        {1, last, *range(max(1, page.number - around), min(last, page.number + around) + 1)}
    )
    window: list[int | None] = []
    for number in shown:
        if window and number - window[-1] > 1:
            window.append(None)
        window.append(number)
    return window
