"""Is this PDF one of our sealed contracts, unmodified? (The verify pages' one question.)

The upload is untrusted: its size is capped before it is read whole, it must look like a
PDF, and pyHanko's validator reads it without fetching anything. It is matched to a
contract version by the stored SHA-256 of the sealed file, and its seal is validated
against the product's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from . import documents, sealing
from .models import ContractVersion


class UploadRefused(ValueError):
    """The upload is not something we check (too big, not a PDF); the message says why."""


#: What the pages say.
UNMODIFIED = "unmodified"  # one of our sealed contracts, byte for byte
MODIFIED = "modified"  # it carries our seal, but it was changed after sealing
UNKNOWN = "unknown"  # sealed with our certificate and intact, but no contract has its hash
NOT_OURS = "not_ours"  # no seal of ours at all


@dataclass(frozen=True)
class Verification:
    outcome: str
    sha256: str
    version: ContractVersion | None = None
    check: sealing.SealCheck | None = None

    @property
    def signers(self) -> list:
        if self.version is None:
            return []
        return list(self.version.signers.all())


def read_upload(upload) -> bytes:
    """The uploaded file's bytes, refused when too large or not a PDF."""
    if upload is None:
        raise UploadRefused(_("Choose a PDF file to check."))
    limit = settings.VERIFY_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise UploadRefused(
            _("The file is larger than %(mb)s MB: signed contracts are much smaller.")
            % {"mb": limit // (1024 * 1024)}
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(
            _("The file is larger than %(mb)s MB: signed contracts are much smaller.")
            % {"mb": limit // (1024 * 1024)}
        )
    if b"%PDF-" not in data[:1024]:
        raise UploadRefused(_("This is not a PDF file. Upload the signed contract's PDF."))
    return data


def verify_pdf(data: bytes) -> Verification:
    sha = documents.sha256_hex(data)
    check = sealing.check_pdf(data)
    version = (
        ContractVersion.objects.select_related("deal", "deal__account", "deal__team")
        .filter(signed_sha256=sha, sealed_at__isnull=False)
        .first()
    )
    if version is not None and check.valid:
        return Verification(UNMODIFIED, sha, version, check)
    if check.ours and not check.valid:
        return Verification(MODIFIED, sha, None, check)
    if check.valid:
        return Verification(UNKNOWN, sha, None, check)
    return Verification(NOT_OURS, sha, None, check)
