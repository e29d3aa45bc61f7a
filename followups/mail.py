"""An email backend that writes each message once: one file per Message-ID.

Like Django's file backend, but idempotent: sending the same message again (a worker
retrying after a crash) replaces the same file instead of adding a second one, the way
mail systems de-duplicate on Message-ID. Used by the worker tests and the benchmark to
count what buyers actually receive.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend


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
