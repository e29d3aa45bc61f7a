"""Celery tasks: talking to the e-signature provider, retried with backoff; never in a request.

Each task is thin: it calls the provider, then a service records the outcome.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from . import services
from .esign import ProviderError, get_provider
from .models import ContractVersion

log = logging.getLogger(__name__)


def _countdown(retries: int, exc: ProviderError | None = None) -> float:
    """Exponential backoff, but never sooner than the provider asked (429 Retry-After or
    X-RateLimit-Reset)."""
    backoff = min(settings.CONTRACTS_RETRY_BACKOFF_SECONDS * (2**retries), 3600)
    if exc is not None and exc.retry_after is not None:
        return max(backoff, exc.retry_after)
    return backoff


@shared_task(bind=True, name="contracts.send_version", max_retries=None)
def send_version(self, version_id: int) -> str:
    """Send (or re-email) a version through its provider; a clear failure state at the end."""
    version = services.contract_send_attempt(version_id=version_id)
    if version is None:
        return "not-needed"
    try:
        result = get_provider(version.provider).send(version)
    except ProviderError as exc:
        if exc.transient and self.request.retries < settings.CONTRACTS_MAX_RETRIES:
            log.info("Sending contract %s failed, retrying: %s", version_id, exc.message)
            raise self.retry(countdown=_countdown(self.request.retries, exc)) from None
        services.contract_send_failed(version_id=version_id, message=exc.message)
        return "failed"
    services.contract_send_succeeded(
        version_id=version_id,
        envelope_id=result.envelope_id,
        adopted=result.adopted,
        duplicates=result.duplicates,
    )
    return "sent"


@shared_task(bind=True, name="contracts.void_envelope", max_retries=None)
def void_envelope(self, version_id: int, reason: str, envelope_id: str = "") -> str:
    """Void the version's envelope, or `envelope_id` (a duplicate from a retried send)."""
    version = ContractVersion.objects.select_related("deal").get(pk=version_id)
    envelope_id = envelope_id or version.envelope_id
    if not envelope_id:
        return "no-envelope"
    try:
        get_provider(version.provider).void(version, reason, envelope_id=envelope_id)
    except ProviderError as exc:
        if exc.transient and self.request.retries < settings.CONTRACTS_MAX_RETRIES:
            raise self.retry(countdown=_countdown(self.request.retries, exc)) from None
        log.error("Could not void envelope %s: %s", envelope_id, exc.message)
        return "failed"
    return "voided"


@shared_task(bind=True, name="contracts.process_webhook", max_retries=None)
def process_webhook(self, delivery_id: int) -> str:
    try:
        return services.webhook_process(delivery_id=delivery_id)
    except ProviderError as exc:
        services.webhook_failed(delivery_id=delivery_id, message=exc.message)
        if exc.transient and self.request.retries < settings.CONTRACTS_MAX_RETRIES:
            raise self.retry(countdown=_countdown(self.request.retries, exc)) from None
        return "error"


@shared_task(name="contracts.reconcile")
def reconcile() -> dict:
    try:
        return services.contracts_reconcile()
    except ProviderError as exc:
        log.warning("Contract reconcile stopped: %s", exc.message)
        return {"error": exc.message}


@shared_task(
    name="contracts.send_signed_copy",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
)
def send_signed_copy(version_id: int) -> bool:
    from .mail import signed_copy_send

    return signed_copy_send(version_id=version_id)


@shared_task(
    name="contracts.email_signing_link",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(ProviderError,),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
)
def email_signing_link(signer_id: int) -> bool:
    """The next signer's turn came: email them their own link (built-in provider)."""
    from .esign.builtin import send_signing_email

    found = services.signer_link_due(signer_id=signer_id)
    if found is None:
        return False
    version, person = found
    send_signing_email(version, person)
    return True
