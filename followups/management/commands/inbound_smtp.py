"""`manage.py inbound_smtp`: a small SMTP receiver (aiosmtpd) for replies to deal email.

Point an MX record or a forwarding rule at it. Each accepted message goes through the same
service as the HTTP and ESP doors (`followups.inbound.inbound_email_receive`); the answer
to the sending server says what happened: 250 stored, 552 too big, 550 unreadable, 451 try
again (a database hiccup: the sender retries, and the Message-ID keeps it once).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

log = logging.getLogger("followups.inbound_smtp")


def _receive(raw: bytes, rcpt_tos: list[str], mail_from: str):
    from followups.inbound import inbound_email_receive

    close_old_connections()
    try:
        return inbound_email_receive(
            raw=raw, source="smtp", envelope_to=rcpt_tos, envelope_from=mail_from
        )
    finally:
        close_old_connections()


class InboundHandler:
    """aiosmtpd handler: the ORM runs in a worker thread, never on the event loop."""

    async def handle_DATA(self, server, session, envelope) -> str:
        from followups.inbound import EmailTooLarge, InboundRefused

        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            record = await loop.run_in_executor(
                None, _receive, raw, list(envelope.rcpt_tos), envelope.mail_from or ""
            )
        except EmailTooLarge as exc:
            return f"552 5.3.4 {exc.message}"
        except InboundRefused as exc:
            return f"550 5.6.0 {exc.message}"
        except Exception:
            log.exception("Could not store an inbound message; the sender will retry")
            return "451 4.3.0 Temporary failure, try again later"
        log.info(
            "Inbound %s from %s: %s (%s)",
            record.get_kind_display().lower(),
            record.from_address,
            record.get_status_display().lower(),
            f"deal {record.deal_id}" if record.deal_id else "no deal",
        )
        return "250 2.0.0 Message accepted"


class Command(BaseCommand):
    help = "Receive replies to deal email over SMTP (aiosmtpd) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)

    def handle(self, *args, host: str, port: int, **options):
        from aiosmtpd.controller import Controller

        controller = Controller(
            InboundHandler(),
            hostname=host,
            port=port,
            server_kwargs={"data_size_limit": settings.INBOUND_EMAIL_MAX_BYTES},
        )
        try:
            controller.start()
        except Exception as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"Receiving replies by SMTP on {host}:{port} (Ctrl-C stops).")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            controller.stop()
