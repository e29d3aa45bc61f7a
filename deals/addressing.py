"""How email about a deal names its deal: a signed Reply-To token and signed Message-IDs.

Every email that goes to a buyer about a deal (reminders, the signing link, the review
meeting, the rep's own emails) says which deal it is about in two ways a reply keeps:

- `Reply-To: replies+d42-<mac>@INBOUND_EMAIL_DOMAIN`: the buyer's reply is addressed to it;
- `Message-ID: <d42-<mac>.<unique>@domain>`: the reply's In-Reply-To/References quote it.

The mac is an HMAC of the deal id with the SECRET_KEY (lower-case hex, because some mail
systems lower-case addresses), so nobody can forge mail that lands on another deal. These
are pure functions on the ground app, used by contracts, follow-ups and notifications alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "deals.addressing.reply-token"
_MAC_LENGTH = 16
#: d<deal id>-<mac>: inside a plus-address and at the start of a Message-ID's left part.
_TOKEN = re.compile(r"d(\d{1,12})-([0-9a-f]{16})")
_PLUS_ADDRESS = re.compile(r"\+(d\d{1,12}-[0-9a-f]{16})@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<?\s*(d\d{1,12}-[0-9a-fA-F]{16})\.")


def _mac(deal_id: int) -> str:
    return salted_hmac(_SALT, str(deal_id), algorithm="sha256").hexdigest()[:_MAC_LENGTH]


def deal_token(deal_id: int) -> str:
    return f"d{deal_id}-{_mac(deal_id)}"


def deal_id_from_token(token: str) -> int | None:
    """The deal a token names, or None when it is not one of ours (or was tampered with)."""
    match = _TOKEN.fullmatch((token or "").strip().lower())
    if not match:
        return None
    deal_id = int(match.group(1))
    return deal_id if constant_time_compare(match.group(2), _mac(deal_id)) else None


def mail_domain() -> str:
    return settings.INBOUND_EMAIL_DOMAIN or "closing-crm.invalid"


def reply_address(deal_id: int) -> str | None:
    """The deal's reply address, or None while no INBOUND_EMAIL_DOMAIN takes mail."""
    if not settings.INBOUND_EMAIL_DOMAIN:
        return None
    return f"replies+{deal_token(deal_id)}@{settings.INBOUND_EMAIL_DOMAIN}"


def reply_to(deal_id: int, fallback: str = "") -> list[str] | None:
    """What to put in Reply-To: the deal's address, else the rep's (or nothing)."""
    address = reply_address(deal_id)
    if address:
        return [address]
    return [fallback] if fallback else None


def message_id(deal_id: int, unique: str | None = None) -> str:
    """A Message-ID naming the deal; `unique` fixes it (a resend is then the same message)."""
    unique = re.sub(r"[^A-Za-z0-9_.-]", "-", unique or uuid.uuid4().hex)
    return f"<{deal_token(deal_id)}.{unique}@{mail_domain()}>"


def deal_id_from_addresses(addresses: Iterable[str]) -> int | None:
    """The first deal named by a replies+<token>@ address among `addresses`."""
    for address in addresses:
        for match in _PLUS_ADDRESS.finditer(address or ""):
            deal_id = deal_id_from_token(match.group(1))
            if deal_id is not None:
                return deal_id
    return None


def deal_id_from_message_ids(message_ids: Iterable[str]) -> int | None:
    """The deal named by one of our Message-IDs (from In-Reply-To or References)."""
    for value in message_ids:
        for match in _MESSAGE_ID.finditer(value or ""):
            deal_id = deal_id_from_token(match.group(1))
            if deal_id is not None:
                return deal_id
    return None
