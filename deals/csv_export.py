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
import datetime as dt
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

#: First characters that make a spreadsheet read a cell as a formula (with their full-width
#: forms, which some spreadsheet programs normalise).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
#: Values whose `str()` is never a formula (numbers, dates): written as they are.
_PLAIN_TYPES = frozenset({int, float, Decimal, dt.date, dt.datetime})
#: Rows per chunk of a streamed export: one write to the client per chunk, not per row.
STREAM_CHUNK_ROWS = 500


def csv_cell(value: Any) -> str:
    """The text of one cell, neutralised: a formula-like text gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if value.__class__ is str else str(value)
    if is_live_formula(text):
        return "'" + text
    return text


def _safe_row(row: Iterable[Any]) -> list:
    """`csv_cell` over a row, with numbers, dates and other non-text values (which cannot
    be formulas once written: a negative number stays a number) passed on as they are to
    `csv.writer`, which writes them with `str()`. Only text, None and booleans are touched:
    this is the per-cell cost of a 100,000-row export."""
    out = []
    for value in row:
        kind = value.__class__
        if kind is str:
            if is_live_formula(value):
                value = "'" + value
        elif value is None:
            value = ""
        elif kind is bool:
            value = "true" if value else "false"
        elif kind not in _PLAIN_TYPES:
            value = csv_cell(value)
        out.append(value)
    return out


def is_live_formula(cell: str) -> bool:
    """Would a spreadsheet run this cell? (What the tests check every export with.)"""
    return cell.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell)


class SafeCSVWriter:
    """`csv.writer` with every cell passed through `csv_cell`."""

    def __init__(self, stream):
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow(_safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows(_safe_row(row) for row in rows)


class _Buffer(io.StringIO):
    """Keeps what is written until it is taken (for streaming); written by C code, as
    `csv.writer` calls `write` once per row."""

    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


def _neutralise_columns(rows: list[list], columns: Sequence[int]) -> list[list]:
    """Quote the formula-like texts of `columns` in place (the other cells are known to be
    numbers, dates, times written as ISO text, None or fixed choice values)."""
    for row in rows:
        for i in columns:
            value = row[i]
            if value and is_live_formula(value):
                row[i] = "'" + value
    return rows


def csv_lines(
    rows: Iterable[Iterable[Any]],
    *,
    bom: bool = False,
    chunk_rows: int = STREAM_CHUNK_ROWS,
    text_columns: Sequence[int] | None = None,
) -> Iterator[str]:
    """The rows as CSV text, `chunk_rows` lines per yielded string (a streamed response
    writes each yielded string to the client: one write per row would cost more than the
    row); with `bom` the text starts with a byte order mark, so that spreadsheet programs
    read a file meant for people as UTF-8.

    Every cell is checked for formulas, unless the rows (lists) say which of their columns
    can hold text someone typed (`text_columns`): then only those are, and the others go to
    `csv.writer` as they are (None written empty). That halves a 100,000-deal export."""
    buffer = _Buffer()
    writer = SafeCSVWriter(buffer)
    raw = csv.writer(buffer)
    if bom:
        buffer.write("\ufeff")
    iterator = iter(rows)
    while True:
        chunk = list(itertools.islice(iterator, chunk_rows))
        if not chunk:
            break
        if text_columns is None:
            writer.writerows(chunk)
        else:
            raw.writerows(_neutralise_columns(chunk, text_columns))
        yield buffer.take()
    if buffer.tell():  # only a BOM with no rows
        yield buffer.take()


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
    rows: Iterable[Iterable[Any]],
    *,
    filename: str,
    bom: bool = False,
    text_columns: Sequence[int] | None = None,
) -> StreamingHttpResponse:
    """A CSV download streamed in chunks of rows (large lists never sit in memory)."""
    response = StreamingHttpResponse(
        csv_lines(rows, bom=bom, text_columns=text_columns),
        content_type="text/csv; charset=utf-8",
    )
    return _attachment(response, filename)
