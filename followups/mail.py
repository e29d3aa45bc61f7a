"""Outgoing follow-up email: a cheaper header writer, and a backend that writes each message once.

`ReminderEmailMessage` is Django's `EmailMessage` whose MIME object writes plain headers
(printable ASCII that fits on one line: Date, Message-ID, addresses, most subjects) without
the standard library's general folding algorithm, which costs more than everything else
in the message; every other header still goes through that algorithm. The bytes are
identical (tests compare them), for the SMTP backend as for any other that flattens the
message.

`MessageIdFileBackend` is like Django's file backend, but idempotent: sending the same
message again (a worker retrying after a crash) replaces the same file instead of adding
a second one, the way mail systems de-duplicate on Message-ID. Used by the worker tests
and the benchmark to count what buyers actually receive.
"""

from __future__ import annotations

import os
import re
import tempfile
from email import generator
from email._policybase import Compat32
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from io import BytesIO
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend
from django.core.mail.message import SafeMIMEText
from django.core.mail.utils import DNS_NAME

#: A header value that the compat32 folding algorithm leaves as it is when it fits on
#: one line: printable ASCII words separated by single spaces.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")


class _PlainHeaderGenerator(generator.BytesGenerator):
    def _write_headers(self, msg):
        policy = self.policy
        limit = policy.max_line_length
        if not isinstance(policy, Compat32) or not limit:
            return super()._write_headers(msg)
        linesep = policy.linesep
        write = self._fp.write
        for name, value in msg.raw_items():
            if (
                type(value) is str
                and len(name) + 2 + len(value) <= limit
                and _PLAIN.fullmatch(value)
            ):
                write(f"{name}: {value}{linesep}".encode("ascii"))
            else:
                write(policy.fold_binary(name, value))
        self.write(self._NL)


class PlainHeaderMIMEText(SafeMIMEText):
    """Django's text part, with plain headers set and flattened without the folding
    algorithm (same values, same bytes, less work)."""

    def __setitem__(self, name, val):
        # What Django's header check returns unchanged: no newline, ASCII, and (for the
        # subject, which it folds at 76 characters) short enough to fit on one line.
        if type(val) is str and len(val) <= 76 and _PLAIN.fullmatch(val):
            MIMEText.__setitem__(self, name, val)
        else:
            super().__setitem__(name, val)

    def as_bytes(self, unixfrom=False, linesep="\n"):
        stream = BytesIO()
        _PlainHeaderGenerator(stream, mangle_from_=False).flatten(
            self, unixfrom=unixfrom, linesep=linesep
        )
        return stream.getvalue()


class ReminderEmailMessage(EmailMessage):
    """An `EmailMessage` whose plain-text MIME object sets and writes plain headers cheaply.

    `message()` is Django's, for a message without attachments, building the text part
    as `PlainHeaderMIMEText`; tests compare its bytes with Django's own.
    """

    def message(self):
        if self.attachments:
            return super().message()
        encoding = self.encoding or settings.DEFAULT_CHARSET
        msg = PlainHeaderMIMEText(self.body, self.content_subtype, encoding)
        msg["Subject"] = self.subject
        msg["From"] = self.extra_headers.get("From", self.from_email)
        self._set_list_header_if_not_empty(msg, "To", self.to)
        self._set_list_header_if_not_empty(msg, "Cc", self.cc)
        self._set_list_header_if_not_empty(msg, "Reply-To", self.reply_to)
        header_names = [key.lower() for key in self.extra_headers]
        if "date" not in header_names:
            msg["Date"] = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
        if "message-id" not in header_names:
            msg["Message-ID"] = make_msgid(domain=DNS_NAME)
        for name, value in self.extra_headers.items():
            if name.lower() not in {"from", "to", "cc", "reply-to"}:
                msg[name] = value
        return msg


class MessageIdFileBackend(FileEmailBackend):
    def open(self) -> bool:  # one file per message: nothing to open
        return False

    def close(self) -> None:
        pass

    def send_messages(self, email_messages) -> int:
        sent = 0
        folder = Path(self.file_path)
        for message in email_messages:
            mime = message.message()
            message_id = mime["Message-ID"] or ""
            name = re.sub(r"[^A-Za-z0-9_.@-]", "_", message_id.strip("<>")) or "message"
            handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
            with os.fdopen(handle, "wb") as stream:
                stream.write(mime.as_bytes(linesep="\n"))
            os.replace(
                tmp, folder / f"{name}.eml"
            )  # atomic: a killed process never leaves half a mail
            sent += 1
        return sent
