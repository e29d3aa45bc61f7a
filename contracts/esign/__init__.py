"""E-signature providers behind one small interface, chosen by `settings.ESIGN_PROVIDER`."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext

from .base import (
    EnvelopeDetails,
    ESignProvider,
    MalformedWebhook,
    ProviderError,
    SendResult,
    WebhookEvent,
)

__all__ = [
    "EnvelopeDetails",
    "ESignProvider",
    "MalformedWebhook",
    "ProviderError",
    "SendResult",
    "WebhookEvent",
    "get_provider",
]


def get_provider(name: str | None = None) -> ESignProvider:
    """The provider `name` (default: the configured one)."""
    name = name or settings.ESIGN_PROVIDER
    if name == "builtin":
        from .builtin import BuiltinProvider

        return BuiltinProvider()
    if name == "docusign":
        from .docusign import DocuSignProvider

        return DocuSignProvider()
    raise ProviderError(
        gettext("Unknown e-signature provider “%(name)s”.") % {"name": name}, transient=False
    )
