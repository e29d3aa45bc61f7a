"""Pagination links: first, last and a few pages around the current one, never all pages."""

from django.core.paginator import Paginator

from deals.templatetags.pages import page_window


def test_the_window_of_a_4000_page_list_has_a_handful_of_links():
    """Page 2,000 of 4,000 links to 1, 1,998–2,002 and 4,000, with gaps between."""
    page = Paginator(range(100_000), 25).get_page(2000)
    assert page_window(page) == [1, None, 1998, 1999, 2000, 2001, 2002, None, 4000]


def test_near_the_ends_no_gap_is_invented():
    """On page 2 of 5 every page is adjacent: no ellipsis."""
    page = Paginator(range(10), 2).get_page(2)
    assert page_window(page) == [1, 2, 3, 4, 5]
    assert page_window(Paginator(range(100), 10).get_page(10)) == [1, None, 8, 9, 10]
