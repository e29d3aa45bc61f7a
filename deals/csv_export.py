"""The one CSV writer of the product: every export goes through it, so no cell is a live formula.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some programs, a
leading tab or carriage return) as a formula: a rep's name `=HYPERLINK(…)` in an export
would become a live link in a manager's spreadsheet (CSV injection). Text cells that start
with one of those characters are prefixed with a single quote, which spreadsheets show as
text; plain numbers (`-12.50`) stay numbers. Used by the deal list export, every dashboard
figure, the audit export and import error reports.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

#: First characters that make a spreadsheet read a cell as a formula (with their full-width
#: forms, which some spreadsheet programs normalise).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def csv_cell(value: Any) -> str:
    """The text of one cell, neutralised: a formula-like text gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def is_live_formula(cell: str) -> bool:
    """Would a spreadsheet run this cell? (What the tests check every export with.)"""
    return cell.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell)


class _Echo:
    """A file-like object that hands back what is written (for streaming)."""

    def write(self, value: str) -> str:
        return value


class SafeCSVWriter:
    """`csv.writer` with every cell passed through `csv_cell`."""

    def __init__(self, stream):
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_lines(rows: Iterable[Iterable[Any]], *, bom: bool = False) -> Iterator[str]:
    """The rows as CSV text lines; with `bom` the first line starts with a byte order mark,
    so that spreadsheet programs read a file meant for people as UTF-8."""
    writer = SafeCSVWriter(_Echo())
    for index, row in enumerate(rows):
        line = writer.writerow(row)
        yield ("\ufeff" + line) if bom and index == 0 else line


def _attachment(response, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def csv_response(
    rows: Iterable[Iterable[Any]], *, filename: str, bom: bool = False
) -> HttpResponse:
    """A CSV download of small, already computed rows."""
    response = HttpResponse(
        "".join(csv_lines(rows, bom=bom)), content_type="text/csv; charset=utf-8"
    )
    return _attachment(response, filename)


def csv_streaming_response(
    rows: Iterable[Iterable[Any]], *, filename: str, bom: bool = False
) -> StreamingHttpResponse:
    """A CSV download streamed row by row (large lists never sit in memory)."""
    response = StreamingHttpResponse(
        csv_lines(rows, bom=bom), content_type="text/csv; charset=utf-8"
    )
    return _attachment(response, filename)
