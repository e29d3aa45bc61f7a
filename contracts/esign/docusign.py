"""DocuSign through the official `docusign-esign` SDK (JWT grant, anchor tabs, Connect webhooks).

Facts this code relies on (docs/docusign.md has the setup): requests go to `api_client.host`,
which is the account's `base_uri` from `/oauth/userinfo` plus `/restapi` (accounts live on
different hosts; `DOCUSIGN_BASE_URL` only overrides it); the OAuth host is always called over
https; the SDK has no default timeout (every call passes `_request_timeout`, and the token call
gets one through `_TimeoutApiClient`); only HTTP errors raise `ApiException`, connection problems
raise urllib3 errors. Tokens live in the Django cache (Redis in production), shared by every
worker process, until less than a minute of DocuSign's own `expires_in` is left; a 401 (a token
DocuSign revoked early) gets one fresh grant and the call is repeated.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from .base import (
    EnvelopeChange,
    EnvelopeDetails,
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
#: The envelope custom field that names our contract version (searched before every send).
VERSION_FIELD = "contract_version_id"
#: Refresh a token when less than this much of its `expires_in` is left.
TOKEN_REFRESH_MARGIN = 60
#: How long the account's base URI from user info is trusted.
ACCOUNT_CACHE_SECONDS = 24 * 3600
#: The longest rate-limit wait we honour (DocuSign's window is an hour).
MAX_RETRY_AFTER = 3600
CONFIGURATION_PROBLEM_KEY = "docusign:configuration-problem"

#: The clock tokens and rate-limit resets are measured against (tests may replace it).
clock = time.time


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


def _settings_key(*parts: str) -> str:
    raw = "|".join(
        (
            settings.DOCUSIGN_OAUTH_HOST,
            settings.DOCUSIGN_INTEGRATION_KEY,
            settings.DOCUSIGN_USER_ID,
            *parts,
        )
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _token_cache_key() -> str:
    return f"docusign:token:{_settings_key()}"


def _account_cache_key() -> str:
    return f"docusign:account:{_settings_key(settings.DOCUSIGN_ACCOUNT_ID)}"


def reset_token_cache() -> None:
    """Forget the cached token and account (e.g. after changing the configuration)."""
    cache.delete_many([_token_cache_key(), _account_cache_key(), CONFIGURATION_PROBLEM_KEY])


def configuration_problem() -> str:
    """The last configuration error DocuSign reported (shown to admins), or ''."""
    return cache.get(CONFIGURATION_PROBLEM_KEY) or ""


def consent_url() -> str:
    """Where the DocuSign user grants this integration key consent (once, in a browser)."""
    query = urlencode(
        {
            "response_type": "code",
            "scope": "signature impersonation",
            "client_id": settings.DOCUSIGN_INTEGRATION_KEY,
            "redirect_uri": settings.DOCUSIGN_REDIRECT_URI,
        },
        quote_via=quote,
    )
    return f"https://{settings.DOCUSIGN_OAUTH_HOST}/oauth/auth?{query}"


def _configuration_error(message: str) -> ProviderError:
    cache.set(CONFIGURATION_PROBLEM_KEY, message, None)
    log.error("DocuSign configuration: %s", message)
    return ProviderError(message, transient=False, configuration=True)


def _private_key() -> bytes:
    value = settings.DOCUSIGN_PRIVATE_KEY.strip()
    if not value:
        raise _configuration_error(
            "DocuSign is not configured: DOCUSIGN_PRIVATE_KEY is empty (the integration "
            "key's RSA private key, as PEM text or a file path)."
        )
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n").encode()
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError:
        raise _configuration_error(
            f"DocuSign is not configured: the private key file {path} (DOCUSIGN_PRIVATE_KEY) "
            "cannot be read."
        ) from None


def _body_text(exc) -> str:
    body = getattr(exc, "body", b"") or b""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body)


def _body_json(exc) -> dict:
    try:
        parsed = json.loads(_body_text(exc) or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def retry_after_seconds(headers) -> float | None:
    """The wait a 429 asks for: `Retry-After` (seconds or a date), else `X-RateLimit-Reset`."""
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = email.utils.parsedate_to_datetime(value).timestamp() - clock()
            except (TypeError, ValueError):
                wait = None
        if wait is not None:
            return min(max(wait, 0.0), MAX_RETRY_AFTER)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return min(max(float(reset) - clock(), 0.0), MAX_RETRY_AFTER)
        except ValueError:
            return None
    return None


def _error(action: str, exc: Exception) -> ProviderError:
    """A clear provider error from an SDK exception (never `str(exc)`: it may raise)."""
    from docusign_esign.client.api_exception import ApiException

    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        body = _body_text(exc)
        parsed = _body_json(exc)
        detail = parsed.get("message") or parsed.get("errorCode") or ("" if parsed else body[:200])
        transient = status is None or status in (401, 408, 409, 423, 429) or status >= 500
        log.warning("DocuSign %s failed: HTTP %s %s", action, status, body[:500])
        retry_after = None
        if status == 429:
            retry_after = retry_after_seconds(getattr(exc, "headers", None))
        busy = "DocuSign is busy" if status == 429 else f"DocuSign answered {status}"
        return ProviderError(
            f"Could not {action}: {busy}{f' ({detail})' if detail else ''}.",
            transient=transient,
            status=status,
            retry_after=retry_after,
        )
    log.warning("DocuSign %s failed: %s", action, type(exc).__name__)
    return ProviderError(
        f"Could not {action}: DocuSign did not answer in time or the connection failed.",
        transient=True,
    )


def _grant_error(exc) -> ProviderError:
    """Why DocuSign refused the JWT grant, in words that say what to fix."""
    status = getattr(exc, "status", None)
    parsed = _body_json(exc)
    error = str(parsed.get("error") or "")
    description = str(parsed.get("error_description") or parsed.get("detail") or "")
    key = settings.DOCUSIGN_INTEGRATION_KEY
    user = settings.DOCUSIGN_USER_ID
    if status is None or status >= 500 or status == 429:
        return _error("sign in to DocuSign", exc)
    log.warning("DocuSign JWT grant refused: HTTP %s %s", status, _body_text(exc)[:500])
    if error == "consent_required":
        return _configuration_error(
            f"DocuSign consent is missing: user {user} has not allowed integration key {key} "
            "to act for them. Open this URL once, signed in to DocuSign as that user, and "
            f"accept: {consent_url()}"
        )
    if "no_valid_keys_or_signatures" in description or "signature" in description.lower():
        return _configuration_error(
            "DocuSign refused the JWT: the RSA private key (DOCUSIGN_PRIVATE_KEY) does not "
            f"belong to integration key {key}. Add its public key to the integration key in "
            "DocuSign (Apps and Keys), or set the matching private key."
        )
    if "user" in description.lower() or "user" in error:
        return _configuration_error(
            f"DocuSign does not know user {user} (DOCUSIGN_USER_ID): use the user's API "
            "User ID (a GUID, under Apps and Keys), not an email address."
        )
    if error in ("invalid_client", "unauthorized_client") or "issuer" in description.lower():
        return _configuration_error(
            f"DocuSign does not know integration key {key} (DOCUSIGN_INTEGRATION_KEY) on "
            f"{settings.DOCUSIGN_OAUTH_HOST} (DOCUSIGN_OAUTH_HOST): the demo and production "
            "hosts have separate keys until go-live."
        )
    return _configuration_error(
        f"DocuSign refused the JWT grant (HTTP {status}: {error or 'error'}"
        f"{f', {description}' if description else ''}). Check DOCUSIGN_INTEGRATION_KEY, "
        "DOCUSIGN_USER_ID and DOCUSIGN_PRIVATE_KEY."
    )


def rest_host(base_uri: str) -> str:
    """Where REST calls go: the account's base URI, else the DOCUSIGN_BASE_URL fallback."""
    if base_uri:
        return base_uri.rstrip("/") + "/restapi"
    return settings.DOCUSIGN_BASE_URL.strip().rstrip("/")


@dataclasses.dataclass
class _Session:
    """One SDK client with a token, the account to act in and its REST host."""

    client: object
    account_id: str
    token: str


class DocuSignProvider(ESignProvider):
    name = "docusign"

    # --- plumbing -----------------------------------------------------------

    @property
    def timeout(self) -> tuple[float, float]:
        return (settings.DOCUSIGN_CONNECT_TIMEOUT, settings.DOCUSIGN_READ_TIMEOUT)

    def _new_client(self):
        import urllib3
        from docusign_esign import Configuration

        # The CA bundle is read when an ApiClient is created (Configuration is a singleton).
        Configuration().ssl_ca_cert = settings.DOCUSIGN_CA_BUNDLE or None
        client = _api_client_class()(oauth_host_name=settings.DOCUSIGN_OAUTH_HOST)
        client.default_timeout = self.timeout
        # urllib3 would silently repeat GETs on a 429 after sleeping its Retry-After: the
        # Celery task decides when to try again instead (one quick reconnect is still fine).
        client.rest_client.pool_manager.connection_pool_kw["retries"] = urllib3.Retry(
            total=1,
            connect=1,
            read=0,
            status=0,
            redirect=0,
            other=0,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        return client

    def _grant(self, client) -> str:
        """A fresh JWT-grant token, cached for every process until near its `expires_in`."""
        import jwt
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        try:
            oauth = client.request_jwt_user_token(
                client_id=settings.DOCUSIGN_INTEGRATION_KEY,
                user_id=settings.DOCUSIGN_USER_ID,
                oauth_host_name=settings.DOCUSIGN_OAUTH_HOST,
                private_key_bytes=_private_key(),
                expires_in=3600,
                scopes=["signature", "impersonation"],
            )
        except ApiException as exc:
            raise _grant_error(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _error("sign in to DocuSign", exc) from exc
        except (ValueError, TypeError, jwt.PyJWTError) as exc:  # jwt cannot sign with it
            raise _configuration_error(
                "DocuSign is not configured: the private key (DOCUSIGN_PRIVATE_KEY) is not a "
                f"usable RSA private key ({type(exc).__name__})."
            ) from exc
        token = oauth.access_token
        try:
            lifetime = int(oauth.expires_in or 3600)
        except (TypeError, ValueError):
            lifetime = 3600
        cache.set(
            _token_cache_key(),
            {"token": token, "expires_at": clock() + lifetime},
            max(lifetime, 1),
        )
        client.set_default_header("Authorization", f"Bearer {token}")
        return token

    def _token(self, client) -> str:
        entry = cache.get(_token_cache_key())
        if entry and entry["expires_at"] - clock() > TOKEN_REFRESH_MARGIN:
            client.set_default_header("Authorization", f"Bearer {entry['token']}")
            return entry["token"]
        return self._grant(client)

    @staticmethod
    def _discard(token: str) -> None:
        """Drop a token DocuSign refused, unless another process already replaced it."""
        entry = cache.get(_token_cache_key())
        if entry and entry["token"] == token:
            cache.delete(_token_cache_key())

    def _session(self) -> _Session:
        """An authenticated client pointed at the account's own REST host."""
        if not settings.DOCUSIGN_INTEGRATION_KEY or not settings.DOCUSIGN_USER_ID:
            raise _configuration_error(
                "DocuSign is not configured: set DOCUSIGN_INTEGRATION_KEY and DOCUSIGN_USER_ID."
            )
        client = self._new_client()
        token = self._token(client)
        session = _Session(client=client, account_id="", token=token)
        account = cache.get(_account_cache_key())
        if not account:
            account = self._discover_account(session)
            cache.set(_account_cache_key(), account, ACCOUNT_CACHE_SECONDS)
        session.account_id = account["account_id"]
        client.host = rest_host(account["base_uri"])
        cache.delete(CONFIGURATION_PROBLEM_KEY)
        return session

    def _user_info(self, session: _Session):
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        for attempt in (1, 2):
            try:
                return session.client.get_user_info(session.token)
            except ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    self._discard(session.token)
                    session.token = self._grant(session.client)
                    continue
                raise _error("read the DocuSign user's accounts", exc) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise _error("read the DocuSign user's accounts", exc) from exc
        raise AssertionError("unreachable")

    def _discover_account(self, session: _Session) -> dict[str, str]:
        """The account to act in and its base URI, from `/oauth/userinfo`."""
        info = self._user_info(session)
        accounts = info.accounts or []
        wanted = settings.DOCUSIGN_ACCOUNT_ID.strip()
        chosen = None
        if wanted:
            chosen = next((a for a in accounts if a.account_id == wanted), None)
            if chosen is None:
                names = ", ".join(
                    f"{a.account_id} ({a.account_name})" if a.account_name else a.account_id
                    for a in accounts
                )
                raise _configuration_error(
                    f"DocuSign user {settings.DOCUSIGN_USER_ID} has no access to account "
                    f"{wanted} (DOCUSIGN_ACCOUNT_ID). Their accounts: {names or 'none'}. Set "
                    "one of those, or leave DOCUSIGN_ACCOUNT_ID empty for the default account."
                )
        else:
            chosen = next((a for a in accounts if str(a.is_default).lower() == "true"), None)
            chosen = chosen or (accounts[0] if accounts else None)
        if chosen is None:
            raise _configuration_error(
                f"DocuSign user {settings.DOCUSIGN_USER_ID} (DOCUSIGN_USER_ID) has no account."
            )
        if not chosen.base_uri and not settings.DOCUSIGN_BASE_URL:
            raise _configuration_error(
                f"DocuSign names no base URI for account {chosen.account_id}: set "
                "DOCUSIGN_BASE_URL (e.g. https://demo.docusign.net/restapi)."
            )
        return {"account_id": chosen.account_id, "base_uri": chosen.base_uri or ""}

    def _call(self, session: _Session, action: str, func, *args, **kwargs):
        """One SDK call with a timeout; a 401 gets one fresh token and the call again."""
        import urllib3
        from docusign_esign.client.api_exception import ApiException

        for attempt in (1, 2):
            try:
                return func(*args, _request_timeout=self.timeout, **kwargs)
            except ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    log.info("DocuSign refused the access token; getting a new one.")
                    self._discard(session.token)
                    session.token = self._grant(session.client)
                    continue
                raise _error(action, exc) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise _error(action, exc) from exc
        raise AssertionError("unreachable")

    def _envelopes(self):
        from docusign_esign import EnvelopesApi

        session = self._session()
        return session, EnvelopesApi(session.client)

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
        recipients = []
        for index, spec in enumerate(self.signers(version)):
            # Each signer's tab sits under the one before (they share the template's anchor).
            signer = Signer(
                email=spec.email,
                name=spec.name,
                recipient_id=spec.recipient_id,
                routing_order=str(spec.routing_order),
                tabs=Tabs(
                    sign_here_tabs=[
                        SignHere(
                            anchor_string=SIGN_ANCHOR,
                            anchor_units="pixels",
                            anchor_x_offset="0",
                            anchor_y_offset=str(-4 + 48 * index),
                            anchor_ignore_if_not_present="false",
                        )
                    ],
                    date_signed_tabs=[
                        DateSigned(
                            anchor_string=DATE_ANCHOR,
                            anchor_units="pixels",
                            anchor_x_offset=str(120 * index),
                            anchor_y_offset="0",
                        )
                    ],
                ),
            )
            if version.embedded_signing and index == 0:
                # In person: the first signer signs in front of the rep.
                signer.client_user_id = str(version.pk)
            recipients.append(signer)
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
            recipients=Recipients(signers=recipients),
            custom_fields=CustomFields(
                text_custom_fields=[
                    TextCustomField(name="deal_id", value=str(deal.pk), show="false"),
                    TextCustomField(name=VERSION_FIELD, value=str(version.pk), show="false"),
                ]
            ),
            event_notification=notification,
            status="sent",
        )

    def _earlier_attempts(self, session, api, version) -> list:
        """Envelopes already made for this version (a POST that timed out may have worked).

        A failed search fails the attempt: creating blind could put a second envelope in
        front of the buyer.
        """
        since = (version.created_at - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = self._call(
            session,
            "look for an earlier attempt",
            api.list_status_changes,
            session.account_id,
            from_date=since,
            custom_field=f"{VERSION_FIELD}={version.pk}",
        )
        found = [
            e
            for e in getattr(result, "envelopes", None) or []
            if e.envelope_id and (e.status or "").lower() not in ("voided", "")
        ]
        # The version's own envelope first, then a signed one, then the oldest.
        found.sort(
            key=lambda e: (
                e.envelope_id != version.envelope_id,
                (e.status or "").lower() != "completed",
            )
        )
        return found

    def send(self, version) -> SendResult:
        session, api = self._envelopes()
        earlier = self._earlier_attempts(session, api, version)
        if earlier:
            keep = earlier[0]
            duplicates = tuple(
                e.envelope_id
                for e in earlier[1:]
                if (e.status or "").lower() in ("created", "sent", "delivered")
            )
            return SendResult(
                envelope_id=keep.envelope_id,
                status=STATUS_MAP.get((keep.status or "sent").lower(), "sent"),
                adopted=True,
                duplicates=duplicates,
            )
        summary = self._call(
            session,
            "send the envelope",
            api.create_envelope,
            session.account_id,
            envelope_definition=self.envelope_definition(version),
        )
        if not summary.envelope_id:
            raise ProviderError(gettext("DocuSign accepted the envelope but gave no id."))
        return SendResult(
            envelope_id=summary.envelope_id,
            status=STATUS_MAP.get((summary.status or "sent").lower(), "sent"),
        )

    def signing_view_url(self, version, return_url: str) -> str:
        """Embedded signing: a one-time URL for the signer (clientUserId set at send)."""
        from docusign_esign import RecipientViewRequest

        session, api = self._envelopes()
        view = self._call(
            session,
            "open the signing view",
            api.create_recipient_view,
            session.account_id,
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

    def envelope_details(self, envelope_id: str) -> EnvelopeDetails:
        """The envelope's status, its signer's decline reason or its void reason, and our
        custom fields, read from DocuSign (never from a webhook body)."""
        session, api = self._envelopes()
        envelope = self._call(
            session,
            "read the envelope",
            api.get_envelope,
            session.account_id,
            envelope_id,
            include="recipients,custom_fields",
        )
        status = STATUS_MAP.get((envelope.status or "").lower(), "")
        reason = ""
        if status == "declined":
            signers = getattr(envelope.recipients, "signers", None) or []
            reason = next((s.declined_reason for s in signers if s.declined_reason), "")
        elif status == "voided":
            reason = envelope.voided_reason or ""
        fields = getattr(envelope.custom_fields, "text_custom_fields", None) or []
        return EnvelopeDetails(
            envelope_id=envelope.envelope_id or envelope_id,
            status=status,
            reason=(reason or "").strip(),
            custom_fields={f.name: f.value for f in fields if f.name},
        )

    def status(self, version) -> str:
        return self.envelope_details(version.envelope_id).status or version.status

    def fetch_signed_document(self, version) -> bytes:
        session, api = self._envelopes()
        data = self._call(
            session,
            "download the signed document",
            api.get_document,
            session.account_id,
            "combined",
            version.envelope_id,
        )
        if isinstance(data, str):  # older SDK builds return a temp file path
            data = Path(data).read_bytes()
        if not data or not bytes(data).startswith(b"%PDF"):
            raise ProviderError(gettext("DocuSign returned a signed document that is not a PDF."))
        return bytes(data)

    def void(self, version, reason: str, *, envelope_id: str = "") -> None:
        session, api = self._envelopes()
        self._call(
            session,
            "void the envelope",
            api.update,
            session.account_id,
            envelope_id or version.envelope_id,
            envelope={"status": "voided", "voidedReason": reason[:200] or "Voided"},
        )

    def changes(self, versions) -> list[EnvelopeChange]:
        ids = [v.envelope_id for v in versions if v.envelope_id]
        if not ids:
            return []
        session, api = self._envelopes()
        changes: list[EnvelopeChange] = []
        for start in range(0, len(ids), 50):
            result = self._call(
                session,
                "read envelope statuses",
                api.list_status_changes,
                session.account_id,
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


# --- configuration check (manage.py docusign_check and the admin) -------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One step of the configuration check: `level` is "ok", "warn", "fail" or "skip"."""

    name: str
    level: str
    detail: str


def _webhook_url_check() -> Check:
    from django.http.request import split_domain_port, validate_host
    from django.urls import reverse

    url = settings.DOCUSIGN_WEBHOOK_URL.strip()
    path = reverse("contracts:docusign_webhook")
    if not url:
        return Check(
            "Webhook URL",
            "fail",
            "DOCUSIGN_WEBHOOK_URL is empty: set it to https://<your host>" + path,
        )
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return Check("Webhook URL", "fail", f"{url} must be an https URL (DocuSign requires TLS).")
    if parts.path != path or parts.query or parts.fragment:
        return Check(
            "Webhook URL",
            "fail",
            f"{url} must end in exactly {path} (with the trailing slash and nothing after it): "
            "a redirect counts as a failed delivery.",
        )
    host, _ = split_domain_port(parts.netloc)
    allowed = settings.ALLOWED_HOSTS or []
    if not validate_host(host, allowed):
        return Check(
            "Webhook URL",
            "warn",
            f"{url}: {host} is not in ALLOWED_HOSTS, so this server would refuse the delivery.",
        )
    return Check("Webhook URL", "ok", url)


def configuration_check() -> list[Check]:
    """Check the DocuSign setup end to end, saying what to fix at each step."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    checks: list[Check] = []
    if settings.ESIGN_PROVIDER == "docusign":
        checks.append(Check("Provider", "ok", "ESIGN_PROVIDER=docusign"))
    else:
        checks.append(
            Check(
                "Provider",
                "warn",
                f"ESIGN_PROVIDER={settings.ESIGN_PROVIDER}: contracts do not go through "
                "DocuSign until you set ESIGN_PROVIDER=docusign.",
            )
        )
    missing = [
        name
        for name in ("DOCUSIGN_INTEGRATION_KEY", "DOCUSIGN_USER_ID", "DOCUSIGN_OAUTH_HOST")
        if not getattr(settings, name)
    ]
    if missing:
        checks.append(Check("Integration key", "fail", f"Set {', '.join(missing)}."))
    else:
        checks.append(
            Check(
                "Integration key",
                "ok",
                f"key {settings.DOCUSIGN_INTEGRATION_KEY}, user {settings.DOCUSIGN_USER_ID}, "
                f"OAuth host {settings.DOCUSIGN_OAUTH_HOST}",
            )
        )
    try:
        pem = _private_key()
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("not an RSA key")
        checks.append(Check("Private key", "ok", f"RSA, {key.key_size} bits"))
    except ProviderError as exc:
        checks.append(Check("Private key", "fail", exc.message))
    except (ValueError, TypeError) as exc:
        checks.append(
            Check(
                "Private key",
                "fail",
                f"DOCUSIGN_PRIVATE_KEY is not an unencrypted RSA private key in PEM ({exc}).",
            )
        )
    provider = DocuSignProvider()
    session = None
    if any(c.level == "fail" for c in checks):
        checks.append(Check("JWT grant", "skip", "Fix the steps above first."))
    else:
        reset_token_cache()
        try:
            client = provider._new_client()
            token = provider._grant(client)
            session = _Session(client=client, account_id="", token=token)
            checks.append(Check("JWT grant", "ok", "DocuSign issued an access token."))
        except ProviderError as exc:
            checks.append(Check("JWT grant", "fail", exc.message))
    if session is None:
        checks.append(Check("Account", "skip", "Needs a working JWT grant."))
    else:
        try:
            account = provider._discover_account(session)
            host = rest_host(account["base_uri"])
            checks.append(
                Check("Account", "ok", f"account {account['account_id']}, REST calls go to {host}")
            )
            override = settings.DOCUSIGN_BASE_URL.strip().rstrip("/")
            if override and account["base_uri"] and override != host:
                checks.append(
                    Check(
                        "Base URI",
                        "warn",
                        f"DOCUSIGN_BASE_URL={override} differs from the account's base URI "
                        f"({host}), which is used. Leave DOCUSIGN_BASE_URL empty.",
                    )
                )
            session.account_id = account["account_id"]
            session.client.host = host
            from docusign_esign import EnvelopesApi

            since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            provider._call(
                session,
                "list recent envelopes",
                EnvelopesApi(session.client).list_status_changes,
                session.account_id,
                from_date=since,
            )
            checks.append(Check("REST API", "ok", "Listing recent envelopes works."))
        except ProviderError as exc:
            checks.append(Check("Account", "fail", exc.message))
    if [k for k in settings.DOCUSIGN_CONNECT_HMAC_KEYS if k]:
        checks.append(
            Check(
                "Connect HMAC keys",
                "ok",
                f"{len([k for k in settings.DOCUSIGN_CONNECT_HMAC_KEYS if k])} key(s) set",
            )
        )
    else:
        checks.append(
            Check(
                "Connect HMAC keys",
                "fail",
                "DOCUSIGN_CONNECT_HMAC_KEYS is empty: every webhook would be refused. Add a "
                "Connect HMAC key in DocuSign (Settings → Connect → Connect Keys) and set it.",
            )
        )
    checks.append(_webhook_url_check())
    return checks
