"""Logging filters: expected client errors are one line each, real server errors keep their
traceback.

Django logs a 403 from `PermissionDenied`, a 400 from `BadRequest` and every
`SuspiciousOperation` (a forged Host header, a too-big upload) with the exception's full
traceback. These are the product working as intended (a rep opening another team's
page, a scanner probing hosts); a traceback per request would hide real 500s in the noise.
"""

from __future__ import annotations

import logging


class ExpectedClientErrors(logging.Filter):
    """Strip the traceback from records about 4xx responses and suspicious requests, keeping
    the exception's message on the line; records about 5xx responses are left untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        expected = (status is not None and 400 <= status < 500) or record.name.startswith(
            "django.security."
        )
        if expected and record.exc_info:
            exception = record.exc_info[1]
            message = record.getMessage()
            detail = str(exception) if exception is not None else ""
            if detail and detail not in message:
                message = f"{message} ({detail})"
            record.msg, record.args = message, ()
            record.exc_info, record.exc_text = None, None
        return True
