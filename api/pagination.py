"""Cursor pagination: stable pages under concurrent inserts, no COUNT(*) on big tables.

Query parameters are checked as the schema documents them: `page_size` is a whole
number from 1 to 200 (anything else is a 400, never silently the default), each
parameter is given once, and a cursor the API did not hand out is a 404.
"""

from __future__ import annotations

import re

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from .validation import single_query_values

INVALID_CURSOR = "This cursor is not one the API gave out: follow `next` or `previous`."


class StrictCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_cursor_message = INVALID_CURSOR

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = single_query_values(request, [self.page_size_query_param]).get(
            self.page_size_query_param
        )
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request):
        single_query_values(request, [self.cursor_query_param])
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise NotFound(self.invalid_cursor_message, code="invalid_cursor") from None
        if cursor is not None and cursor.position is not None:
            # The position must be a value of the ordering field, or the query would fail.
            ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
            try:
                field = self._model._meta.get_field(ordering.lstrip("-"))
                field.to_python(cursor.position)
            except (FieldDoesNotExist, DjangoValidationError, ValueError, OverflowError):
                raise NotFound(self.invalid_cursor_message, code="invalid_cursor") from None
        return cursor

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The page to read: the cursor from a previous page's `next` or "
                "`previous` link (an unknown cursor is a 404).",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


class NewestFirstPagination(StrictCursorPagination):
    ordering = "-id"


class TimelinePagination(StrictCursorPagination):
    ordering = ("-created_at", "-id")


class OldestFirstPagination(StrictCursorPagination):
    """For lists read in order of creation: checklists, asks."""

    ordering = "id"
