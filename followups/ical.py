"""iCalendar (RFC 5545) text for meeting invitations, written by hand: one VEVENT, CRLF lines."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

CRLF = "\r\n"


def escape_text(value: str) -> str:
    """TEXT values escape backslash, semicolon, comma and newlines (RFC 5545 §3.3.11)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def quote_param(value: str) -> str:
    """A parameter value in double quotes; DQUOTE itself is not allowed inside (§3.2)."""
    return '"' + value.replace('"', "'") + '"'


def fold(line: str) -> str:
    """Fold a content line at 75 octets, continuation lines starting with a space (§3.1)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts, current, limit = [], b"", 75
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            parts.append(current.decode("utf-8"))
            current, limit = b"", 74  # the leading space counts toward the 75
        current += encoded
    parts.append(current.decode("utf-8"))
    return (CRLF + " ").join(parts)


def utc_stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(lines: list[str], method: str = "REQUEST") -> str:
    body = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Closing CRM//Follow-ups//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        *lines,
        "END:VCALENDAR",
    ]
    return CRLF.join(fold(line) for line in body) + CRLF


def meeting_invitation(*, meeting, attendees) -> str:
    """The VCALENDAR of a contract review meeting, sent as METHOD:REQUEST."""
    deal, organizer = meeting.deal, meeting.organizer
    description = (
        f"Contract review for {deal.title} ({deal.account}). "
        f"Questions, changes and next steps, together.\n{meeting.agenda}".strip()
    )
    event = [
        "BEGIN:VEVENT",
        f"UID:{meeting.uid}",
        f"SEQUENCE:{meeting.sequence}",
        f"DTSTAMP:{utc_stamp(timezone.now())}",
        f"DTSTART:{utc_stamp(meeting.starts_at)}",
        f"DTEND:{utc_stamp(meeting.ends_at)}",
        f"SUMMARY:{escape_text(f'Contract review: {deal.title}')}",
        f"DESCRIPTION:{escape_text(description)}",
    ]
    if meeting.location:
        event.append(f"LOCATION:{escape_text(meeting.location)}")
    organizer_email = organizer.email or settings.DEFAULT_FROM_EMAIL
    event.append(f"ORGANIZER;CN={quote_param(str(organizer))}:mailto:{organizer_email}")
    for contact in attendees:
        event.append(
            f"ATTENDEE;CN={quote_param(contact.full_name)};CUTYPE=INDIVIDUAL;"
            f"ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{contact.email}"
        )
    event += ["STATUS:CONFIRMED", "TRANSP:OPAQUE", "END:VEVENT"]
    return calendar(event)
