"""Email for `make run`: every message on the console and as a file under var/mail/.

The console copy is framed so a message stands out among the worker's log lines, and any
signing link it carries is repeated on its own line, ready to open. The file copy (one .eml
per message, Django's file backend) survives the console scrolling away.
"""

from __future__ import annotations

import re
import sys

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend

_LINK = re.compile(r"https?://\S+/sign/\S+")


class ConsoleAndFileBackend(BaseEmailBackend):
    """Write each message to stdout (framed, signing links pointed out) and to var/mail/."""

    def __init__(self, fail_silently: bool = False, **kwargs):
        super().__init__(fail_silently=fail_silently)
        self.files = FileBackend(
            fail_silently=fail_silently, file_path=settings.EMAIL_FILE_PATH, **kwargs
        )

    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        sent = self.files.send_messages(email_messages)
        for message in email_messages:
            body = message.body or ""
            links = sorted(set(_LINK.findall(body)))
            lines = [
                "",
                "┌─ Email " + "─" * 60,
                f"│ To:      {', '.join(message.to)}",
                f"│ Subject: {message.subject}",
                "│",
                *(f"│ {line}" for line in body.splitlines()),
            ]
            lines += [f"│ ➜ SIGNING LINK: {link}" for link in links]
            lines += [
                f"└─ also saved in {settings.EMAIL_FILE_PATH}/ " + "─" * 20,
                "",
            ]
            # The real stdout: a Celery worker logs its redirected stdout as warnings.
            out = sys.__stdout__ or sys.stdout
            out.write("\n".join(lines) + "\n")
            out.flush()
        return sent
