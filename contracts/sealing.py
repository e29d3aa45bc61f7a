"""Sealing completed contracts with the product's certificate (PAdES, pyHanko), and checking
uploaded PDFs against it.

The seal is the last thing written into a completed contract: the signature blocks and the
certificate of completion are stamped first, then the whole file is signed, so any later
change (even one byte, or an incremental update) breaks the signature in every PDF reader.

The certificate and key are PEM files: `SIGNING_CERT_FILE`, `SIGNING_KEY_FILE` (with
`SIGNING_KEY_PASSWORD` when the key is encrypted). A new installation makes a self-signed
pair with `manage.py signing_certificate_create` (`make run` does it when it is missing);
production configures its own. With `SIGNING_TSA_URL` an RFC 3161 timestamp is added.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

#: The signature field the seal goes into (also how we recognise our seal in a damaged file).
SEAL_FIELD = "ClosingCRMSeal"
SEAL_NAME = "Closing CRM"
#: id-kp-documentSigning (RFC 9336).
DOCUMENT_SIGNING_OID = "1.3.6.1.5.5.7.3.36"


class SealingUnavailable(Exception):
    """No usable signing certificate is configured; the message says what to do."""


@dataclass(frozen=True)
class SealCertificate:
    cert_file: Path
    key_file: Path
    password: bytes | None

    @property
    def pem(self) -> bytes:
        return self.cert_file.read_bytes()

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (DER), as hex: printed on the certificate of completion."""
        return certificate_fingerprint(self.pem)


def certificate_fingerprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def seal_certificate() -> SealCertificate:
    """The configured certificate and key, or SealingUnavailable saying what is missing."""
    cert_file = Path(settings.SIGNING_CERT_FILE)
    key_file = Path(settings.SIGNING_KEY_FILE)
    for what, path in (("certificate", cert_file), ("key", key_file)):
        if not path.is_file():
            raise SealingUnavailable(
                f"The signing {what} {path} does not exist: run "
                "`manage.py signing_certificate_create`, or set SIGNING_CERT_FILE and "
                "SIGNING_KEY_FILE."
            )
    password = settings.SIGNING_KEY_PASSWORD
    return SealCertificate(cert_file, key_file, password.encode() if password else None)


def create_self_signed(
    *,
    cert_file: Path,
    key_file: Path,
    common_name: str = "Closing CRM document seal",
    organization: str = SEAL_NAME,
    days: int = 3650,
    password: str = "",
) -> str:
    """A new RSA-3072 key and a self-signed certificate for document seals; returns the
    certificate's SHA-256 fingerprint. The key file is readable by its owner only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    DOCUMENT_SIGNING = ObjectIdentifier(DOCUMENT_SIGNING_OID)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    key_file.touch(mode=0o600, exist_ok=True)
    key_file.chmod(0o600)
    key_file.write_bytes(key_bytes)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certificate_fingerprint(cert_file.read_bytes())


def _off_the_event_loop(func, *args, **kwargs):
    """pyHanko's synchronous calls run their own asyncio loop: from a thread that already
    runs one (an async view, a test driving a browser) they run in a helper thread."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return func(*args, **kwargs)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(func, *args, **kwargs).result()


def _timestamper():
    """An RFC 3161 client when SIGNING_TSA_URL is set; None otherwise (no request is made)."""
    url = settings.SIGNING_TSA_URL
    if not url:
        return None
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(url, timeout=settings.SIGNING_TSA_TIMEOUT)


def seal_pdf(pdf: bytes, *, certificate: SealCertificate, reason: str, location: str = "") -> bytes:
    """The PDF with a PAdES signature by the product's certificate over the whole file."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    signer = signers.SimpleSigner.load(
        str(certificate.key_file),
        str(certificate.cert_file),
        key_passphrase=certificate.password,
    )
    if signer is None:
        raise SealingUnavailable(
            "The signing key or certificate could not be read (check SIGNING_KEY_PASSWORD)."
        )
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason[:200],
        location=location[:200] or None,
        name=SEAL_NAME,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=_timestamper())
    out = _off_the_event_loop(pdf_signer.sign_pdf, writer)
    return out.getvalue()


# --- checking an uploaded PDF -------------------------------------------------------------


@dataclass(frozen=True)
class SealCheck:
    """What pyHanko's validator says about a PDF, against the product's certificate."""

    ours: bool  # sealed with the product's certificate (even if broken since)
    intact: bool  # the signed bytes are unchanged and the whole file is covered
    signed_at: dt.datetime | None = None
    problem: str = ""

    @property
    def valid(self) -> bool:
        return self.ours and self.intact


def check_pdf(data: bytes) -> SealCheck:
    """Validate the PDF's seal. Never raises on a bad upload: the file is untrusted input."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        certificate = seal_certificate()
    except SealingUnavailable as exc:
        return SealCheck(ours=False, intact=False, problem=str(exc))
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(certificate.pem).public_bytes(serialization.Encoding.DER)
    root = asn1_x509.Certificate.load(der)
    mentions_seal = SEAL_FIELD.encode() in data
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_signatures)
    except Exception as exc:  # noqa: BLE001 - any parse failure of an untrusted file
        return SealCheck(ours=mentions_seal, intact=False, problem=f"unreadable PDF ({exc})")
    for embedded in signatures:
        try:
            cert = embedded.signer_cert
        except Exception:  # noqa: BLE001
            cert = None
        is_ours = cert is not None and cert.dump() == der
        if not is_ours and embedded.field_name != SEAL_FIELD:
            continue
        if not is_ours:
            return SealCheck(ours=False, intact=False, problem="sealed by another certificate")
        try:
            status = _off_the_event_loop(
                validate_pdf_signature,
                embedded,
                ValidationContext(trust_roots=[root], allow_fetching=False),
            )
        except Exception as exc:  # noqa: BLE001 - a damaged signature is a failed check
            return SealCheck(ours=True, intact=False, problem=f"the seal cannot be checked ({exc})")
        from pyhanko.sign.validation.status import SignatureCoverageLevel

        whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        intact = bool(status.intact and status.valid and status.trusted and whole)
        problem = ""
        if not status.intact:
            problem = "the signed content was changed"
        elif not whole:
            problem = "content was added after sealing"
        elif not (status.valid and status.trusted):
            problem = "the seal's certificate is not valid"
        return SealCheck(
            ours=True, intact=intact, signed_at=status.signer_reported_dt, problem=problem
        )
    return SealCheck(ours=mentions_seal, intact=False, problem="no seal of ours")
