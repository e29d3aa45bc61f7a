"""A small fake DocuSign the test suite starts on 127.0.0.1, for the real `docusign-esign` SDK.

Two servers: plain HTTP REST under `/restapi/v2.1/accounts/{id}/…`, and TLS for `/oauth/token`
and `/oauth/userinfo` (the SDK always calls the OAuth host over https) with a self-signed
certificate made here with `cryptography`. Every request is recorded so tests can assert
what DocuSign would have received. Faults a real account shows can be injected: failures
(HTTP 500, 429 with `Retry-After` / `X-RateLimit-Reset`, slow answers, a POST that creates the
envelope and then answers too late) queued per method and path, revoked or short-lived tokens,
a JWT grant refused (`consent_required`, wrong key or user), a user info naming another
`base_uri`, envelopes whose status, decline or void reason changes behind the app's back.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import ipaddress
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ACCOUNT_ID = "fake-account-1"
#: Every token the fake issues starts with this (each grant gets a new one).
ACCESS_TOKEN = "fake-access-token"


def rsa_key_pem() -> tuple[str, Any]:
    """A fresh RSA private key (PEM text, as DOCUSIGN_PRIVATE_KEY) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert file, key file)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-docusign.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "fake-docusign.pem"
    key_path = directory / "fake-docusign.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the fake answered (0: no answer, the connection was dropped)

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Failure:
    # "500", "429", "401", "slow" (before the work), "slow_answer" (after it), or "pass"
    # (answer normally: lets a later queued failure hit the next matching request instead)
    kind: str
    method: str | None = None
    path_contains: str = ""
    delay: float = 0.0
    query_contains: str = ""  # e.g. "custom_field": only the search for an earlier attempt
    retry_after: str | None = "0"  # the 429's Retry-After header (None: no header)
    rate_limit_reset: str | None = None  # the 429's X-RateLimit-Reset (epoch seconds)


@dataclass
class Envelope:
    envelope_id: str
    definition: dict
    status: str = "sent"
    custom_fields: dict[str, str] = field(default_factory=dict)
    declined_reason: str = ""
    voided_reason: str = ""


class FakeDocuSign:
    def __init__(self, workdir: Path, public_key) -> None:
        self.public_key = public_key
        self.received: list[Received] = []
        self.envelopes: dict[str, Envelope] = {}
        self.failures: list[Failure] = []
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token → monotonic expiry
        self.issued = 0
        self._defaults()
        self.cert_path, key_path = self_signed_cert(workdir)
        self.rest = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(tls=False))
        self.oauth = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(tls=True))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self.oauth.socket = context.wrap_socket(self.oauth.socket, server_side=True)
        self.threads = [
            threading.Thread(target=server.serve_forever, daemon=True)
            for server in (self.rest, self.oauth)
        ]
        for thread in self.threads:
            thread.start()

    # --- what tests use -------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest.server_address[1]}/restapi"

    @property
    def oauth_host(self) -> str:
        return f"127.0.0.1:{self.oauth.server_address[1]}"

    def stop(self) -> None:
        for server in (self.rest, self.oauth):
            server.shutdown()
            server.server_close()

    def _defaults(self) -> None:
        self.token_lifetime = 3600  # the grant's expires_in
        self.grant_error: dict | None = None  # e.g. {"error": "consent_required"}
        self.userinfo_base_uri: str | None = None  # None: this server's own REST URL
        self.extra_accounts: list[dict] = []

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.envelopes.clear()
            self.failures.clear()
            self.tokens.clear()
            self._defaults()

    def fail(
        self,
        kind: str,
        times: int = 1,
        *,
        method=None,
        path_contains="",
        delay=0.0,
        query_contains="",
        retry_after: str | None = "0",
        rate_limit_reset: str | None = None,
    ):
        with self.lock:
            self.failures.extend(
                Failure(
                    kind,
                    method,
                    path_contains,
                    delay,
                    query_contains,
                    retry_after,
                    rate_limit_reset,
                )
                for _ in range(times)
            )

    def revoke_tokens(self) -> None:
        """DocuSign revoked every token it issued (calls with them now answer 401)."""
        with self.lock:
            self.tokens.clear()

    def expire_tokens(self) -> None:
        """Every issued token has run out (as if its `expires_in` had passed)."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def token_valid(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def grants(self) -> list[Received]:
        return self.requests("POST", "/oauth/token")

    def requests(self, method: str | None = None, contains: str = "") -> list[Received]:
        return [
            r
            for r in self.received
            if (method is None or r.method == method) and contains in r.path
        ]

    def set_status(self, envelope_id: str, status: str) -> None:
        self.envelopes[envelope_id].status = status

    def decline(self, envelope_id: str, reason: str) -> None:
        """The signer declined in DocuSign, writing `reason`."""
        envelope = self.envelopes[envelope_id]
        envelope.status = "declined"
        envelope.declined_reason = reason

    def void(self, envelope_id: str, reason: str) -> None:
        """Someone voided the envelope in DocuSign's web app."""
        envelope = self.envelopes[envelope_id]
        envelope.status = "voided"
        envelope.voided_reason = reason

    def copy_envelope(self, envelope_id: str) -> str:
        """A second envelope with the same document and custom fields (as a send that was
        retried blindly would have made); returns its id."""
        original = self.envelopes[envelope_id]
        new_id = str(uuid.uuid4())
        self.envelopes[new_id] = Envelope(
            new_id, original.definition, "sent", dict(original.custom_fields)
        )
        return new_id

    def answered(self, status: int) -> list[Received]:
        return [r for r in self.received if r.status == status]

    def live_envelopes(self, **custom_fields: str) -> list[Envelope]:
        """Envelopes a signer could still sign (optionally with these custom field values)."""
        return [
            e
            for e in self.envelopes.values()
            if e.status in ("created", "sent", "delivered")
            and all(e.custom_fields.get(k) == v for k, v in custom_fields.items())
        ]

    # --- the server -------------------------------------------------------------------

    def _take_failure(self, method: str, path: str, query: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if (
                    failure.method in (None, method)
                    and failure.path_contains in path
                    and failure.query_contains in query
                ):
                    self.failures.remove(failure)
                    return failure
        return None

    def _handler(self, *, tls: bool):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, status: int, payload: Any = None, *, raw=None, ctype=None):
                data = raw if raw is not None else json.dumps(payload or {}).encode()
                self.current.status = status
                if getattr(self, "delay_answer", 0):
                    time.sleep(self.delay_answer)  # the work is done; the answer comes late
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                received = Received(
                    method, parts.path, parse_qs(parts.query), dict(self.headers), body
                )
                fake.received.append(received)
                self.current = received
                failure = fake._take_failure(method, parts.path, parts.query)
                if failure is not None and failure.kind != "pass":
                    if failure.kind == "slow":
                        time.sleep(failure.delay)  # the client gave up; nothing is done
                        self.close_connection = True
                        return None
                    elif failure.kind == "slow_answer":
                        self.delay_answer = failure.delay
                    elif failure.kind == "401":
                        return self._answer(
                            401,
                            {
                                "errorCode": "USER_AUTHENTICATION_FAILED",
                                "message": "The access token is not valid.",
                            },
                        )
                    elif failure.kind == "429":
                        received.status = 429
                        self.send_response(429)
                        if failure.retry_after is not None:
                            self.send_header("Retry-After", failure.retry_after)
                        if failure.rate_limit_reset is not None:
                            self.send_header("X-RateLimit-Reset", failure.rate_limit_reset)
                        self.send_header("X-RateLimit-Limit", "1000")
                        self.send_header("X-RateLimit-Remaining", "0")
                        data = b'{"errorCode":"HOURLY_APIINVOCATION_LIMIT_EXCEEDED"}'
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    else:
                        return self._answer(
                            500, {"errorCode": "UNSPECIFIED_ERROR", "message": "Boom"}
                        )
                try:
                    if tls:
                        return fake._oauth(self, received)
                    return fake._rest(self, received)
                except BrokenPipeError:
                    return None

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

        return Handler

    def _oauth(self, handler, received: Received):
        if received.path == "/oauth/token" and received.method == "POST":
            form = parse_qs(received.body.decode())
            try:
                claims = jwt.decode(
                    form["assertion"][0],
                    self.public_key,
                    algorithms=["RS256"],
                    audience=self.oauth_host,
                )
            except jwt.InvalidSignatureError:
                return handler._answer(
                    400,
                    {"error": "invalid_grant", "error_description": "no_valid_keys_or_signatures"},
                )
            except (KeyError, jwt.PyJWTError) as exc:
                return handler._answer(400, {"error": "invalid_grant", "detail": str(exc)})
            received.claims = claims  # type: ignore[attr-defined]
            if self.grant_error is not None:
                return handler._answer(400, self.grant_error)
            with self.lock:
                self.issued += 1
                token = f"{ACCESS_TOKEN}-{self.issued}"
                self.tokens[token] = time.monotonic() + self.token_lifetime
            return handler._answer(
                200,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                },
            )
        if received.path == "/oauth/userinfo" and received.method == "GET":
            if not self.token_valid(received.headers.get("Authorization")):
                return handler._answer(401, {"error": "invalid_token"})
            return handler._answer(
                200,
                {
                    "sub": "user",
                    "accounts": [
                        {
                            "account_id": "other-account",
                            "is_default": "false",
                            "base_uri": "http://unused.invalid",
                        },
                        {
                            "account_id": ACCOUNT_ID,
                            "is_default": "True",
                            "base_uri": self.userinfo_base_uri
                            or self.rest_url.removesuffix("/restapi"),
                        },
                        *self.extra_accounts,
                    ],
                },
            )
        return handler._answer(404, {"error": "not_found"})

    def _rest(self, handler, received: Received):
        if not self.token_valid(received.headers.get("Authorization")):
            return handler._answer(
                401,
                {
                    "errorCode": "USER_AUTHENTICATION_FAILED",
                    "message": "The access token provided is expired, revoked or malformed.",
                },
            )
        prefix = f"/restapi/v2.1/accounts/{ACCOUNT_ID}/envelopes"
        path = received.path
        if not path.startswith(prefix):
            return handler._answer(404, {"errorCode": "ACCOUNT_LACKS_PERMISSIONS"})
        rest = path[len(prefix) :].strip("/").split("/") if path != prefix else []
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        if not rest and received.method == "POST":
            definition = received.json
            envelope_id = str(uuid.uuid4())
            fields = {
                f["name"]: f["value"]
                for f in (definition.get("customFields") or {}).get("textCustomFields", [])
            }
            self.envelopes[envelope_id] = Envelope(envelope_id, definition, "sent", fields)
            return handler._answer(
                201,
                {
                    "envelopeId": envelope_id,
                    "status": "sent",
                    "statusDateTime": now,
                    "uri": f"/envelopes/{envelope_id}",
                },
            )
        if not rest and received.method == "GET":
            found = list(self.envelopes.values())
            ids = received.query.get("envelope_ids")
            if ids:
                wanted = set(ids[0].split(","))
                found = [e for e in found if e.envelope_id in wanted]
            custom = received.query.get("custom_field")
            if custom:
                name, _, value = custom[0].partition("=")
                found = [e for e in found if e.custom_fields.get(name) == value]
            envelopes = [
                {"envelopeId": e.envelope_id, "status": e.status, "statusChangedDateTime": now}
                for e in found
            ]
            return handler._answer(
                200,
                {
                    "envelopes": envelopes or None,
                    "resultSetSize": str(len(envelopes)),
                    "totalSetSize": str(len(envelopes)),
                },
            )
        envelope = self.envelopes.get(rest[0])
        if envelope is None:
            return handler._answer(404, {"errorCode": "ENVELOPE_DOES_NOT_EXIST"})
        if len(rest) == 1 and received.method == "GET":
            return handler._answer(200, self._envelope_json(envelope, received))
        if len(rest) == 1 and received.method == "PUT":
            change = received.json
            if change.get("status") == "voided":
                if envelope.status == "completed":
                    return handler._answer(
                        400,
                        {
                            "errorCode": "ENVELOPE_CANNOT_VOID_INVALID_STATE",
                            "message": "Only envelopes in the 'Sent' or 'Delivered' states "
                            "may be voided.",
                        },
                    )
                envelope.status = "voided"
                envelope.voided_reason = change.get("voidedReason") or ""
            return handler._answer(200, {"envelopeId": envelope.envelope_id})
        if rest[1:] == ["documents", "combined"] and received.method == "GET":
            return handler._answer(200, raw=self.signed_pdf(envelope), ctype="application/pdf")
        if rest[1:] == ["views", "recipient"] and received.method == "POST":
            return handler._answer(
                201, {"url": f"http://127.0.0.1/fake-signing/{envelope.envelope_id}"}
            )
        return handler._answer(404, {"errorCode": "NOT_FOUND"})

    def _envelope_json(self, envelope: Envelope, received: Received) -> dict:
        """GET …/envelopes/{id}: recipients and custom fields only when `include` asks."""
        include = ",".join(received.query.get("include", [])).split(",")
        data: dict[str, Any] = {"envelopeId": envelope.envelope_id, "status": envelope.status}
        if envelope.voided_reason:
            data["voidedReason"] = envelope.voided_reason
        if "recipients" in include:
            signer_status = {"completed": "completed", "declined": "declined"}.get(
                envelope.status, "sent"
            )
            signers = []
            for signer in envelope.definition["recipients"]["signers"]:
                entry = {
                    "email": signer["email"],
                    "name": signer["name"],
                    "recipientId": signer["recipientId"],
                    "status": signer_status,
                }
                if envelope.status == "declined":
                    entry["declinedReason"] = envelope.declined_reason
                signers.append(entry)
            data["recipients"] = {"signers": signers}
        if "custom_fields" in include:
            data["customFields"] = {
                "textCustomFields": [
                    {"name": k, "value": v, "show": "false"}
                    for k, v in envelope.custom_fields.items()
                ]
            }
        return data

    def signed_pdf(self, envelope: Envelope) -> bytes:
        """The document sent, with a page saying DocuSign completed it."""
        from pypdf import PdfReader, PdfWriter
        from reportlab.pdfgen import canvas

        original = base64.b64decode(envelope.definition["documents"][0]["documentBase64"])
        writer = PdfWriter()
        for page in PdfReader(io.BytesIO(original)).pages:
            writer.add_page(page)
        certificate = io.BytesIO()
        sheet = canvas.Canvas(certificate)
        sheet.drawString(72, 720, f"Certificate of completion {envelope.envelope_id}")
        sheet.save()
        writer.add_page(PdfReader(io.BytesIO(certificate.getvalue())).pages[0])
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
