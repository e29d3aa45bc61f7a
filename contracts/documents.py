"""Contract documents: the deal's terms, the template sandbox, the PDF and the signature stamp.

Templates are written by admins, so they are rendered by a restricted Django template
engine: no loaders (no `include`/`extends`), no `{% load %}`-able libraries, no `{% debug %}`,
`{% url %}` or `{% csrf_token %}`, and a context that is a plain dict of strings and lists
built here from the deal. Nothing in it can reach settings, models or the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from decimal import Decimal
from typing import Any

from django import template
from django.template import Context, Engine, defaultfilters, defaulttags
from django.utils import timezone

#: Anchor strings DocuSign places tabs on (white, tiny text in the PDF).
SIGN_ANCHOR = "/sn1/"
DATE_ANCHOR = "/dt1/"

#: Tags an admin-written template may use (everything else in Django's builtins is left out).
_SAFE_TAGS = [
    "autoescape",
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "regroup",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
]

sandbox_library = template.Library()
for _name in _SAFE_TAGS:
    sandbox_library.tag(_name, defaulttags.register.tags[_name])
for _name, _func in defaultfilters.register.filters.items():
    sandbox_library.filters[_name] = _func


class _SandboxEngine(Engine):
    # Only our whitelisted library; Django's full builtins (debug, load, url…) are not loaded.
    default_builtins = ["contracts.documents"]


# Engine builtins are module paths with a `register` attribute.
register = sandbox_library

SANDBOX = _SandboxEngine(
    dirs=[],
    app_dirs=False,
    loaders=[],
    libraries={},
    builtins=[],
    autoescape=True,
    string_if_invalid="",
    debug=False,
)


class TemplateProblem(ValueError):
    """The template text cannot be compiled or rendered; the message is for the admin."""


def compile_template(body: str):
    try:
        return SANDBOX.from_string(body)
    except template.TemplateSyntaxError as exc:
        raise TemplateProblem(f"The template has a syntax error: {exc}") from None


def render_template(body: str, terms: dict[str, Any]) -> str:
    compiled = compile_template(body)
    try:
        return compiled.render(Context(terms, autoescape=True))
    except Exception as exc:  # an admin's template must never crash a rep's page
        raise TemplateProblem(f"The template could not be rendered: {exc}") from None


# --- the deal's terms ---------------------------------------------------------


def _money(value: Decimal) -> str:
    return f"{Decimal(value).quantize(Decimal('0.01')):,.2f}"


def _date(value: dt.date | None) -> str:
    return value.strftime("%-d %B %Y") if value else ""


def deal_signer(deal):
    """The contact who signs: the signer stakeholder, else the decision maker, else a contact."""
    from deals.models import Stakeholder

    for role in (Stakeholder.Role.SIGNER, Stakeholder.Role.DECISION_MAKER):
        holder = (
            deal.stakeholders.filter(role=role, contact__archived_at__isnull=True)
            .exclude(contact__email="")
            .select_related("contact")
            .first()
        )
        if holder:
            return holder.contact
    return deal.account.contacts.active().exclude(email="").order_by("pk").first()


def deal_terms(deal, *, number: int) -> dict[str, Any]:
    """Everything a contract template may show, as plain strings and lists (the sandbox)."""
    from deals.models import Concession

    signer = deal_signer(deal)
    items = [
        {
            "description": item.description,
            "quantity": f"{item.quantity.normalize():f}",
            "unit_price": _money(item.unit_price),
            "total": _money(item.total),
        }
        for item in deal.line_items.all()
    ]
    concessions = [
        {"give": c.give, "get": c.get}
        for c in deal.concessions.filter(status=Concession.Status.ACCEPTED).order_by("decided_at")
    ]
    return {
        "contract_number": f"{deal.pk}-{number}",
        "version": str(number),
        "date": _date(timezone.localdate()),
        "seller": deal.team.name,
        "account": {"name": deal.account.name, "website": deal.account.website},
        "deal": {"title": deal.title},
        "signer": {
            "name": signer.full_name if signer else "",
            "email": signer.email if signer else "",
            "title": signer.job_title if signer else "",
        },
        "amount": _money(deal.amount),
        "currency": deal.currency,
        "line_items": items,
        "term_months": str(deal.term_months),
        "start_date": _date(deal.start_date),
        "billing": deal.get_billing_display(),
        "concessions": concessions,
        "discount_percent": f"{deal.discount_percent:f}",
        # The terms as stored on the deal, to compare with it exactly (not shown).
        "agreed": agreed_terms(deal),
        "sign_anchor": SIGN_ANCHOR,
        "date_anchor": DATE_ANCHOR,
    }


#: The deal fields a contract version fixes (compared with the deal after signing).
AGREED_FIELDS = ("amount", "currency", "term_months", "start_date", "billing", "discount_percent")


def agreed_terms(deal) -> dict[str, str]:
    """The deal's commercial terms as exact strings."""
    return {
        "amount": f"{deal.amount:.2f}",
        "currency": deal.currency,
        "term_months": str(deal.term_months),
        "start_date": deal.start_date.isoformat() if deal.start_date else "",
        "billing": deal.billing,
        "discount_percent": f"{deal.discount_percent:.2f}",
    }


def agreed_terms_values(terms: dict) -> dict[str, Any]:
    """The deal field values a version's stored terms fix (empty for old versions)."""
    agreed = (terms or {}).get("agreed")
    if not agreed:
        return {}
    return {
        "amount": Decimal(agreed["amount"]),
        "currency": agreed["currency"],
        "term_months": int(agreed["term_months"]),
        "start_date": dt.date.fromisoformat(agreed["start_date"]) if agreed["start_date"] else None,
        "billing": agreed["billing"],
        "discount_percent": Decimal(agreed["discount_percent"]),
    }


def terms_differences(deal, terms: dict) -> list[str]:
    """The deal fields whose value differs from a version's stored terms."""
    agreed = (terms or {}).get("agreed")
    if not agreed:
        return []
    now = agreed_terms(deal)
    return [field for field in AGREED_FIELDS if field in agreed and agreed[field] != now[field]]


SAMPLE_TERMS = {
    "contract_number": "1-1",
    "version": "1",
    "date": "1 March 2027",
    "seller": "Team North",
    "account": {"name": "Acme GmbH", "website": "acme.example"},
    "deal": {"title": "Acme rollout"},
    "signer": {"name": "Ann Buyer", "email": "ann@acme.example", "title": "COO"},
    "amount": "12,000.00",
    "currency": "EUR",
    "line_items": [
        {
            "description": "Licences",
            "quantity": "10",
            "unit_price": "1,200.00",
            "total": "12,000.00",
        }
    ],
    "term_months": "12",
    "start_date": "1 April 2027",
    "billing": "Annually",
    "concessions": [{"give": "Phased rollout", "get": "Case study"}],
    "sign_anchor": SIGN_ANCHOR,
    "date_anchor": DATE_ANCHOR,
}


# --- PDF ------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def html_to_pdf(html: str) -> bytes:
    """Render HTML/CSS to PDF with xhtml2pdf (pure Python; anchor text stays extractable)."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8", link_callback=_no_links)
    if result.err:
        raise TemplateProblem("The contract could not be turned into a PDF.")
    return out.getvalue()


def _no_links(uri: str, rel: str) -> str:
    """Contracts never fetch images, fonts or stylesheets from anywhere (no network, no disk)."""
    return ""


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _anchor_position(page, anchor: str) -> tuple[float, float] | None:
    found: list[tuple[float, float]] = []

    def visitor(text, cm, tm, font_dict, font_size):
        if anchor in (text or "") and not found:
            found.append((tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]))

    try:
        page.extract_text(visitor_text=visitor)
    except Exception:  # text positions are a nicety; the stamp falls back to the footer
        return None
    return found[0] if found else None


def stamp_signed_pdf(pdf: bytes, *, audit: dict[str, str]) -> bytes:
    """The signed copy: a signature block on the page with the sign anchor, plus an audit page."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)

    target_index, position = len(writer.pages) - 1, None
    for index, page in enumerate(writer.pages):
        position = _anchor_position(page, SIGN_ANCHOR)
        if position:
            target_index = index
            break
    target = writer.pages[target_index]
    width = float(target.mediabox.width)
    height = float(target.mediabox.height)
    # The block sits in the blank space under the anchor (the template leaves room for it).
    box_w, box_h = 80 * mm, 13 * mm
    x, y = position or (20 * mm, 40 * mm)
    x = min(max(x, 10 * mm), width - box_w - 10 * mm)
    y = min(max(y + 6 - box_h, 10 * mm), height - box_h - 10 * mm)

    block = io.BytesIO()
    sheet = canvas.Canvas(block, pagesize=(width, height))
    sheet.setStrokeColorRGB(0.1, 0.3, 0.6)
    sheet.setFillColorRGB(0.94, 0.96, 1)
    sheet.roundRect(x, y, box_w, box_h, 1.5 * mm, stroke=1, fill=1)
    sheet.setFillColorRGB(0.1, 0.2, 0.45)
    sheet.setFont("Helvetica-Oblique", 12)
    sheet.drawString(x + 2.5 * mm, y + 7.8 * mm, audit["name"][:40])
    sheet.setFont("Helvetica", 6.5)
    sheet.drawString(x + 2.5 * mm, y + 4.4 * mm, f"Signed electronically {audit['signed_at']}")
    sheet.drawString(
        x + 2.5 * mm, y + 1.6 * mm, f"Document SHA-256 {audit['document_sha256'][:32]}…"
    )
    sheet.save()
    target.merge_page(PdfReader(io.BytesIO(block.getvalue())).pages[0])

    page_buf = io.BytesIO()
    sheet = canvas.Canvas(page_buf, pagesize=A4)
    sheet.setFont("Helvetica-Bold", 16)
    sheet.drawString(20 * mm, 270 * mm, "Signature audit trail")
    sheet.setFont("Helvetica", 10)
    rows = [
        ("Contract", audit.get("contract", "")),
        ("Signed by", audit["name"]),
        ("Email", audit["email"]),
        ("Consent", audit.get("consent", "")),
        ("Link sent", audit.get("sent_at", "")),
        ("First opened", audit.get("viewed_at", "")),
        ("Signed at", audit["signed_at"]),
        ("IP address", audit["ip"]),
        ("User agent", audit["user_agent"]),
        ("Document SHA-256", audit["document_sha256"]),
    ]
    y = 255 * mm
    for label, value in rows:
        sheet.setFont("Helvetica-Bold", 10)
        sheet.drawString(20 * mm, y, label)
        sheet.setFont("Helvetica", 9)
        text = str(value)
        chunks = [text[i : i + 90] for i in range(0, len(text), 90)] or [""]
        for chunk in chunks[:4]:
            sheet.drawString(62 * mm, y, chunk)
            y -= 5 * mm
        y -= 2 * mm
    sheet.setFont("Helvetica-Oblique", 8)
    sheet.drawString(
        20 * mm,
        y - 6 * mm,
        "The SHA-256 above is the hash of the unsigned contract the signer reviewed.",
    )
    sheet.save()
    writer.add_page(PdfReader(io.BytesIO(page_buf.getvalue())).pages[0])
    writer.add_metadata({"/Title": audit.get("contract", "Signed contract")})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
