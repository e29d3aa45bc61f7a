"""Email backends at the edge of the world for the follow-up tests."""

import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

from followups.mail import MessageIdFileBackend


class BrokenBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP is down")


class CountingFileBackend(MessageIdFileBackend):
    """The mailbox (one file per Message-ID) plus a log line for every send call, so tests
    see both what buyers received and every attempt the workers made."""

    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        lines = "".join(f"{m.extra_headers.get('Message-ID', '')}\n" for m in email_messages)
        fd = os.open(Path(self.file_path) / "sends.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, lines.encode())  # one O_APPEND write: atomic across processes
        finally:
            os.close(fd)
        return sent


class SlowFileBackend(CountingFileBackend):
    """A slow mail server (40 ms a message), so a test can kill a worker mid-batch."""

    def send_messages(self, email_messages):
        time.sleep(0.04)
        return super().send_messages(email_messages)
