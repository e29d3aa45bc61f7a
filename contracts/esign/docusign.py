"""DocuSign through the official `docusign-esign` SDK (JWT grant, anchor tabs, Connect webhooks).

Facts this code relies on (see shared/DOCUSIGN.md): requests go to `api_client.host`, the OAuth
host is always called over https, the SDK has no default timeout (every call passes
`_request_timeout`, and the token call gets one through `_TimeoutApiClient`), and only HTTP
errors raise `ApiException`; connection problems raise urllib3 errors.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from .base import (
    EnvelopeChange,
    ESignProvider,
    MalformedWebhook,
    ProviderError,
    SendResult,
    WebhookEvent,
)

log = logging.getLogger(__name__)

#: DocuSign envelope statuses → ContractVersion.Status values.
STATUS_MAP = {
    "created": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "completed": "completed",
    "signed": "completed",
    "declined": "declined",
    "voided": "voided",
}
#: Connect events we act on.
EVENTS = {
    "envelope-sent",
    "envelope-delivered",
    "envelope-completed",
    "envelope-declined",
    "envelope-voided",
}
_TOKEN_LOCK = threading.Lock()
_TOKEN_CACHE: dict[tuple, tuple[str, float]] = {}


@functools.cache
def _api_client_class():
    from docusign_esign import ApiClient

    class _TimeoutApiClient(ApiClient):
        """Gives SDK calls that take no `_request_timeout` (the JWT token call) a timeout."""

        default_timeout: tuple[float, float] = (5.0, 20.0)

        def request(self, method, url, *args, **kwargs):
            if not kwargs.get("_request_timeout"):
                kwargs["_request_timeout"] = self.default_timeout
            return super().request(method, url, *args, **kwargs)

    return _TimeoutApiClient


def reset_token_cache() -> None:
    with _TOKEN_LOCK:
        _TOKEN_CACHE.clear()


def _private_key() -> bytes:
    value = settings.DOCUSIGN_PRIVATE_KEY.strip()
    if not value:
        raise ProviderError(
            "DocuSign is not configured: DOCUSIGN_PRIVATE_KEY is empty.", transient=False
        )
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n").encode()
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError:
        raise ProviderError(
            f"DocuSign is not configured: the private key file {path} cannot be read.",
            transient=False,
        ) from None


def _error(action: str, exc: Exception) -> ProviderError:
    """A clear provider error from an SDK exception (never `str(exc)`: it may raise)."""
    from docusign_esign.client.api_exception import ApiException

    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        body = getattr(exc, "body", b"") or b""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        detail = ""
        try:
            parsed = json.loads(body) if body else {}
            detail = parsed.get("message") or parsed.get("errorCode") or ""
        except (ValueError, AttributeError):
            detail = body[:200]
        transient = status is None or status in (408, 409, 423, 429) or status >= 500
        log.warning("DocuSign %s failed: HTTP %s %s", action, status, body[:500])
        busy = "DocuSign is busy" if status == 429 else f"DocuSign answered {status}"
        return ProviderError(
            f"Could not {action}: {busy}{f' ({detail})' if detail else ''}.",
            transient=transient,
            status=status,
        )
    log.warning("DocuSign %s failed: %s", action, type(exc).__name__)
    return ProviderError(
        f"Could not {action}: DocuSign did not answer in time or the connection failed.",
        transient=True,
    )


class DocuSignProvider(ESignProvider):
    name = "docusign"

    # --- plumbing -----------------------------------------------------------

    @property
    def timeout(self) -> tuple[float, float]:
        return (settings.DOCUSIGN_CONNECT_TIMEOUT, settings.DOCUSIGN_READ_TIMEOUT)

    def _new_client(self):
        from docusign_esign import Configuration

        # The CA bundle is read when an ApiClient is created (Configuration is a singleton).
        Configuration().ssl_ca_cert = settings.DOCUSIGN_CA_BUNDLE or None
        client = _api_client_class()(oauth_host_name=settings.DOCUSIGN_OAUTH_HOST)
        client.default_timeout = self.timeout
        client.host = settings.DOCUSIGN_BASE_URL.rstrip("/")
        return client

    def _client_and_account(self):
        """An ApiClient with a JWT-grant token (cached until shortly before it expires)."""
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        key = (
            settings.DOCUSIGN_OAUTH_HOST,
            settings.DOCUSIGN_INTEGRATION_KEY,
            settings.DOCUSIGN_USER_ID,
        )
        if not settings.DOCUSIGN_INTEGRATION_KEY or not settings.DOCUSIGN_USER_ID:
            raise ProviderError(
                "DocuSign is not configured: set DOCUSIGN_INTEGRATION_KEY and DOCUSIGN_USER_ID.",
                transient=False,
            )
        client = self._new_client()
        with _TOKEN_LOCK:
            cached = _TOKEN_CACHE.get(key)
        if cached and cached[1] > time.monotonic():
            token, _ = cached
            client.set_default_header("Authorization", f"Bearer {token}")
        else:
            try:
                oauth = client.request_jwt_user_token(
                    client_id=settings.DOCUSIGN_INTEGRATION_KEY,
                    user_id=settings.DOCUSIGN_USER_ID,
                    oauth_host_name=settings.DOCUSIGN_OAUTH_HOST,
                    private_key_bytes=_private_key(),
                    expires_in=3600,
                    scopes=["signature", "impersonation"],
                )
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                raise _error("sign in to DocuSign", exc) from exc
            except ValueError as exc:  # a malformed key: jwt cannot sign
                raise ProviderError(
                    f"DocuSign is not configured: the private key is not usable ({exc}).",
                    transient=False,
                ) from exc
            token = oauth.access_token
            lifetime = int(oauth.expires_in or 3600)
            with _TOKEN_LOCK:
                _TOKEN_CACHE[key] = (token, time.monotonic() + max(lifetime - 300, 60))
        account_id = settings.DOCUSIGN_ACCOUNT_ID
        if not account_id:
            account_id = self._default_account(client, token)
        return client, account_id

    def _default_account(self, client, token: str) -> str:
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        try:
            info = client.get_user_info(token)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise _error("read the DocuSign account", exc) from exc
        accounts = info.accounts or []
        for account in accounts:
            if str(account.is_default).lower() == "true":
                return account.account_id
        if accounts:
            return accounts[0].account_id
        raise ProviderError("The DocuSign user has no account.", transient=False)

    def _call(self, action: str, func, *args, **kwargs):
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        try:
            return func(*args, _request_timeout=self.timeout, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise _error(action, exc) from exc

    def _envelopes(self):
        from docusign_esign import EnvelopesApi

        client, account_id = self._client_and_account()
        return EnvelopesApi(client), account_id

    # --- the interface --------------------------------------------------------

    def envelope_definition(self, version):
        from docusign_esign import (
            ConnectEventData,
            CustomFields,
            DateSigned,
            Document,
            EnvelopeDefinition,
            EnvelopeEvent,
            EventNotification,
            Recipients,
            Signer,
            SignHere,
            Tabs,
            TextCustomField,
        )

        from contracts.documents import DATE_ANCHOR, SIGN_ANCHOR

        with version.pdf.open("rb") as handle:
            pdf = handle.read()
        signer = Signer(
            email=version.signer_email,
            name=version.signer_name,
            recipient_id="1",
            routing_order="1",
            tabs=Tabs(
                sign_here_tabs=[
                    SignHere(
                        anchor_string=SIGN_ANCHOR,
                        anchor_units="pixels",
                        anchor_x_offset="0",
                        anchor_y_offset="-4",
                        anchor_ignore_if_not_present="false",
                    )
                ],
                date_signed_tabs=[
                    DateSigned(
                        anchor_string=DATE_ANCHOR,
                        anchor_units="pixels",
                        anchor_x_offset="0",
                        anchor_y_offset="0",
                    )
                ],
            ),
        )
        if version.embedded_signing:
            signer.client_user_id = str(version.pk)
        notification = None
        if settings.DOCUSIGN_WEBHOOK_URL:
            notification = EventNotification(
                url=settings.DOCUSIGN_WEBHOOK_URL,
                delivery_mode="SIM",
                include_hmac="true",
                require_acknowledgment="true",
                logging_enabled="true",
                event_data=ConnectEventData(format="json", version="restv2.1"),
                envelope_events=[
                    EnvelopeEvent(envelope_event_status_code=code)
                    for code in ("sent", "delivered", "completed", "declined", "voided")
                ],
            )
        deal = version.deal
        return EnvelopeDefinition(
            email_subject=f"Please sign: {deal.title}"[:100],
            documents=[
                Document(
                    document_base64=base64.b64encode(pdf).decode("ascii"),
                    name=f"{deal.title} v{version.number}.pdf",
                    file_extension="pdf",
                    document_id="1",
                )
            ],
            recipients=Recipients(signers=[signer]),
            custom_fields=CustomFields(
                text_custom_fields=[
                    TextCustomField(name="deal_id", value=str(deal.pk), show="false"),
                    TextCustomField(
                        name="contract_version_id", value=str(version.pk), show="false"
                    ),
                ]
            ),
            event_notification=notification,
            status="sent",
        )

    def _already_created(self, api, account_id: str, version) -> str:
        """After a failed attempt, the envelope may exist anyway (POST timed out): find it."""
        since = (version.created_at - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = self._call(
            "look for an earlier attempt",
            api.list_status_changes,
            account_id,
            from_date=since,
            custom_field=f"contract_version_id={version.pk}",
        )
        envelopes = getattr(result, "envelopes", None) or []
        return envelopes[0].envelope_id if envelopes else ""

    def send(self, version) -> SendResult:
        api, account_id = self._envelopes()
        if version.send_attempts > 1:
            existing = self._already_created(api, account_id, version)
            if existing:
                return SendResult(envelope_id=existing, status="sent")
        summary = self._call(
            "send the envelope",
            api.create_envelope,
            account_id,
            envelope_definition=self.envelope_definition(version),
        )
        if not summary.envelope_id:
            raise ProviderError("DocuSign accepted the envelope but gave no id.")
        return SendResult(
            envelope_id=summary.envelope_id,
            status=STATUS_MAP.get((summary.status or "sent").lower(), "sent"),
        )

    def signing_view_url(self, version, return_url: str) -> str:
        """Embedded signing: a one-time URL for the signer (clientUserId set at send)."""
        from docusign_esign import RecipientViewRequest

        api, account_id = self._envelopes()
        view = self._call(
            "open the signing view",
            api.create_recipient_view,
            account_id,
            version.envelope_id,
            recipient_view_request=RecipientViewRequest(
                authentication_method="none",
                client_user_id=str(version.pk),
                email=version.signer_email,
                user_name=version.signer_name,
                return_url=return_url,
            ),
        )
        return view.url

    def status(self, version) -> str:
        api, account_id = self._envelopes()
        envelope = self._call(
            "read the envelope", api.get_envelope, account_id, version.envelope_id
        )
        return STATUS_MAP.get((envelope.status or "").lower(), version.status)

    def fetch_signed_document(self, version) -> bytes:
        api, account_id = self._envelopes()
        data = self._call(
            "download the signed document",
            api.get_document,
            account_id,
            "combined",
            version.envelope_id,
        )
        if isinstance(data, str):  # older SDK builds return a temp file path
            data = Path(data).read_bytes()
        if not data or not bytes(data).startswith(b"%PDF"):
            raise ProviderError("DocuSign returned a signed document that is not a PDF.")
        return bytes(data)

    def void(self, version, reason: str) -> None:
        api, account_id = self._envelopes()
        self._call(
            "void the envelope",
            api.update,
            account_id,
            version.envelope_id,
            envelope={"status": "voided", "voidedReason": reason[:200] or "Voided"},
        )

    def changes(self, versions) -> list[EnvelopeChange]:
        ids = [v.envelope_id for v in versions if v.envelope_id]
        if not ids:
            return []
        api, account_id = self._envelopes()
        changes: list[EnvelopeChange] = []
        for start in range(0, len(ids), 50):
            result = self._call(
                "read envelope statuses",
                api.list_status_changes,
                account_id,
                envelope_ids=",".join(ids[start : start + 50]),
            )
            for envelope in getattr(result, "envelopes", None) or []:
                status = STATUS_MAP.get((envelope.status or "").lower())
                if status and envelope.envelope_id:
                    changes.append(EnvelopeChange(envelope.envelope_id, status))
        return changes

    # --- Connect webhooks -----------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        keys = [k for k in settings.DOCUSIGN_CONNECT_HMAC_KEYS if k]
        if not keys:
            log.error("DocuSign webhook refused: DOCUSIGN_CONNECT_HMAC_KEYS is not set.")
            return False
        expected = [
            base64.b64encode(hmac.new(k.encode(), body, hashlib.sha256).digest()).decode()
            for k in keys
        ]
        for index in range(1, 11):
            given = headers.get(f"X-DocuSign-Signature-{index}")
            if given is None:
                continue
            for candidate in expected:
                if hmac.compare_digest(given.strip().encode(), candidate.encode()):
                    return True
        return False

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedWebhook("The body is not JSON.") from None
        if not isinstance(payload, dict):
            raise MalformedWebhook("The body is not a JSON object.")
        event = payload.get("event")
        data = payload.get("data")
        if not isinstance(event, str) or not event or not isinstance(data, dict):
            raise MalformedWebhook("The delivery has no event or data.")
        envelope_id = data.get("envelopeId")
        if not isinstance(envelope_id, str) or not envelope_id.strip():
            raise MalformedWebhook("The delivery names no envelope.")
        return WebhookEvent(
            event=event[:60], envelope_id=envelope_id.strip()[:100], payload=payload
        )
