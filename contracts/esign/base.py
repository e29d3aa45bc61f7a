"""The `ESignProvider` interface and the values it passes around."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext

if TYPE_CHECKING:
    from contracts.models import ContractVersion


class ProviderError(Exception):
    """The provider failed; `message` is plain words for the rep, `transient` means retry."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
        configuration: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        #: Seconds the provider asked us to wait before the next call (rate limits).
        self.retry_after = retry_after
        #: The provider's setup is wrong (consent, key, account): an admin must fix it.
        self.configuration = configuration


class MalformedWebhook(ValueError):
    """The webhook body is not a delivery we understand (answered with 400)."""


@dataclass(frozen=True)
class SendResult:
    envelope_id: str
    status: str  # a ContractVersion.Status value
    signing_url: str = ""
    #: Found from an earlier attempt rather than created by this one.
    adopted: bool = False
    #: Other live envelopes for the same version (earlier attempts): to be voided.
    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvelopeDetails:
    """What the provider itself says about an envelope (to confirm a webhook before acting)."""

    envelope_id: str
    status: str  # a ContractVersion.Status value
    reason: str = ""  # the signer's decline reason or the void reason
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookEvent:
    event: str  # e.g. "envelope-completed"
    envelope_id: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignerSpec:
    """One recipient who signs: signers with the same routing order sign in parallel; a
    higher order waits for the lower ones (the seller's countersigner comes last)."""

    recipient_id: str
    routing_order: int
    name: str
    email: str
    role: str = "buyer"  # "buyer" or "countersigner"


def signers_for(version) -> list[SignerSpec]:
    """The version's signers in routing order (a version from before signers were stored
    has its one signer)."""
    rows = list(version.signers.all()) if version.pk else []
    if not rows:
        return [SignerSpec("1", 1, version.signer_name, version.signer_email)]
    rows.sort(key=lambda s: (s.routing_order, s.pk))
    return [
        SignerSpec(str(index), s.routing_order, s.name, s.email, s.role)
        for index, s in enumerate(rows, start=1)
    ]


@dataclass(frozen=True)
class EnvelopeChange:
    envelope_id: str
    status: str  # a ContractVersion.Status value
    changed_at: dt.datetime | None = None


class ESignProvider(abc.ABC):
    """Send a contract version to its signer, follow it, fetch the signed copy, void it."""

    name: str = ""

    @abc.abstractmethod
    def send(self, version: ContractVersion) -> SendResult:
        """Put the version in front of its signers, in their routing order (`signers_for`):
        the buyer's signers, then the seller's countersigner; returns the envelope id."""

    def signers(self, version: ContractVersion) -> list[SignerSpec]:
        """Who signs, in which order, as the provider is told."""
        return signers_for(version)

    @abc.abstractmethod
    def status(self, version: ContractVersion) -> str:
        """The envelope's current status, as a ContractVersion.Status value."""

    @abc.abstractmethod
    def fetch_signed_document(self, version: ContractVersion) -> bytes:
        """The completed, signed PDF."""

    @abc.abstractmethod
    def void(self, version: ContractVersion, reason: str, *, envelope_id: str = "") -> None:
        """Withdraw the envelope (default: the version's own) so it can no longer be signed."""

    def envelope_details(self, envelope_id: str) -> EnvelopeDetails:
        """The envelope as the provider reports it (status, reason, custom fields)."""
        raise ProviderError(
            gettext("The %(name)s provider has no envelopes to read.") % {"name": self.name},
            transient=False,
        )

    def changes(self, versions: list[ContractVersion]) -> list[EnvelopeChange]:
        """Current statuses of these envelopes (for reconciling missed webhooks)."""
        return []

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the delivery really comes from the provider."""
        return False

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        raise MalformedWebhook(f"The {self.name} provider takes no webhooks.")
