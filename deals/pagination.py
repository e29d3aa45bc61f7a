"""Pagination that keeps deep pages of long, ordered lists cheap (a deferred join)."""

from __future__ import annotations

from django.core.paginator import Paginator


class DeferredJoinPaginator(Paginator):
    """A Paginator whose pages read their rows in one query, in two steps inside it.

    `LIMIT 25 OFFSET 50000` on the list's own query makes PostgreSQL build 50,025 whole rows
    (and their joins) to throw all but 25 away. Here the offset walks only the ids, in the
    list's order (an index-only scan when an index covers the filters and the order), and
    the page's rows are then read by id and put in the same order:

        SELECT … FROM deal JOIN … WHERE <filters> AND deal.id IN
            (SELECT id FROM deal WHERE <filters> ORDER BY <order> LIMIT 25 OFFSET 50000)
        ORDER BY <order>

    The rows and their order are exactly those of slicing the queryset itself, as long as
    its ordering is total (ends with the primary key), which every list here ensures.
    Numbered page links and the exact count work as with Django's Paginator.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        ids = rows.values("pk")[bottom:top]
        return self._get_page(rows.filter(pk__in=ids), number, self)
