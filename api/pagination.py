"""Cursor pagination: stable pages under concurrent inserts, no COUNT(*) on big tables."""

from rest_framework.pagination import CursorPagination


class NewestFirstPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class TimelinePagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OldestFirstPagination(NewestFirstPagination):
    """For lists read in order of creation: checklists, asks."""

    ordering = "id"
