"""Contract documents: the deal's terms, the template sandbox, the PDF and the signature stamp.

Templates are written by admins, so they are rendered by a restricted Django template
engine with allow-lists of tags and filters: nothing that turns escaping off (`safe`,
`safeseq`, `autoescape`), no loaders (`include`/`extends`), no `{% load %}`, `{% debug %}`,
`{% url %}` or `{% csrf_token %}`. A refused tag or filter is named, with the reason, when the
template is saved and again when it is rendered. The context is a plain dict of strings and
lists built here from the deal: nothing in it can reach settings, models or the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from decimal import Decimal
from typing import Any

from django import template
from django.template import Context, Engine, defaultfilters, defaulttags
from django.template.base import Lexer, TokenType
from django.utils import timezone
from django.utils.translation import gettext

#: Anchor strings DocuSign places tabs on (white, tiny text in the PDF).
SIGN_ANCHOR = "/sn1/"
DATE_ANCHOR = "/dt1/"

#: Tags an admin-written template may use, with the words that close or split them.
ALLOWED_TAGS = (
    "comment",
    "cycle",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "regroup",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
_TAG_WORDS = {
    *ALLOWED_TAGS,
    "else",
    "elif",
    "empty",
    *(f"end{tag}" for tag in ALLOWED_TAGS),
}
#: Filters an admin-written template may use: each returns plain values or escaped text.
ALLOWED_FILTERS = (
    "add",
    "capfirst",
    "center",
    "cut",
    "date",
    "default",
    "default_if_none",
    "dictsort",
    "dictsortreversed",
    "divisibleby",
    "escape",
    "filesizeformat",
    "first",
    "floatformat",
    "force_escape",
    "get_digit",
    "iriencode",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "ljust",
    "lower",
    "make_list",
    "phone2numeric",
    "pluralize",
    "rjust",
    "slice",
    "slugify",
    "stringformat",
    "time",
    "timesince",
    "timeuntil",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
    "yesno",
)
#: Why the best-known refused tags and filters are refused (the rest: "not allowed").
REFUSED_BECAUSE = {
    "safe": "it turns off HTML escaping, so a rep's text could become markup",
    "safeseq": "it turns off HTML escaping, so a rep's text could become markup",
    "autoescape": "it turns off HTML escaping, so a rep's text could become markup",
    "filter": "it applies filters to a whole block; put the filters on the values",
    "escapejs": "contracts contain no JavaScript",
    "json_script": "contracts contain no scripts",
    "urlize": "it turns text into live links",
    "urlizetrunc": "it turns text into live links",
    "striptags": "it marks half-cleaned markup as safe",
    "truncatechars_html": "it passes markup through",
    "truncatewords_html": "it passes markup through",
    "unordered_list": "it builds markup from data",
    "pprint": "it prints Python internals",
    "random": "a contract must read the same every time it is rendered",
    "load": "it loads tag libraries",
    "include": "it reads other template files",
    "extends": "it reads other template files",
    "ssi": "it reads files from the server",
    "debug": "it prints the whole context",
    "csrf_token": "it belongs to our own forms, not to documents",
    "url": "it reveals the site's internal addresses",
    "querystring": "it reads the web request",
    "block": "templates do not extend one another",
    "lorem": "a contract holds no placeholder text",
}

sandbox_library = template.Library()
for _name in ALLOWED_TAGS:
    sandbox_library.tag(_name, defaulttags.register.tags[_name])
for _name in ALLOWED_FILTERS:
    sandbox_library.filters[_name] = defaultfilters.register.filters[_name]


class _SandboxEngine(Engine):
    # Only our allow-listed library; Django's full builtins (debug, load, url…) are not loaded.
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


_STRING_LITERAL = re.compile(r"""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_FILTER_NAME = re.compile(r"\|\s*(\w+)")


def _refusal(kind: str, name: str) -> str:
    because = REFUSED_BECAUSE.get(name, f"it is not one of the {kind}s templates may use")
    return f"The {kind} “{name}” is not allowed: {because}."


def template_refusals(body: str) -> list[str]:
    """Why this template text is refused: each tag or filter outside the allow-lists, once.

    Read from Django's own lexer, so `{{ x|safe }}`, `{% if x|safe %}` and `{% with a=x|safe %}`
    are all seen; text inside string literals and `{% comment %}` blocks is not."""
    problems: list[str] = []
    in_comment = False
    for token in Lexer(body).tokenize():
        if token.token_type not in (TokenType.BLOCK, TokenType.VAR):
            continue
        words = token.contents.split()
        if token.token_type == TokenType.BLOCK:
            name = words[0] if words else ""
            if in_comment:
                in_comment = name != "endcomment"
                continue
            if name == "comment":
                in_comment = True
            elif name.startswith("end") and name[3:] in defaulttags.register.tags:
                pass  # the closing word of a refused tag: the opening one is reported
            elif name and name not in _TAG_WORDS:
                problems.append(_refusal("tag", name))
        elif in_comment:
            continue
        for name in _FILTER_NAME.findall(_STRING_LITERAL.sub('""', token.contents)):
            if name not in ALLOWED_FILTERS:
                problems.append(_refusal("filter", name))
    return list(dict.fromkeys(problems))


def compile_template(body: str):
    """Compile an admin-written template in the sandbox; TemplateProblem says what is wrong.

    Used when a template is saved and again each time one is rendered, so a template stored
    before a tag or filter was refused cannot use it either."""
    refusals = template_refusals(body)
    if refusals:
        lists = []
        if any("The tag" in r for r in refusals):
            lists.append(f"Allowed tags: {', '.join(ALLOWED_TAGS)}.")
        if any("The filter" in r for r in refusals):
            lists.append(f"Allowed filters: {', '.join(ALLOWED_FILTERS)}.")
        raise TemplateProblem(" ".join(refusals + lists))
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
    """The contact who signs: the buying group's signer, chosen by the rep (or None).

    Never guessed from the decision maker or the account's contacts: the person who signs
    is often someone else (procurement, legal, a CFO), so the rep is asked.
    """
    from deals.models import Stakeholder

    holder = (
        deal.stakeholders.filter(role=Stakeholder.Role.SIGNER, contact__archived_at__isnull=True)
        .exclude(contact__email="")
        .select_related("contact")
        .order_by("pk")
        .first()
    )
    return holder.contact if holder else None


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


def signed_on_text(signed_at: str) -> str:
    """ "2026-11-30 06:41:02 UTC" → "30 November 2026" (the contract's own date style)."""
    try:
        return _date(dt.date.fromisoformat(signed_at[:10]))
    except ValueError:
        return signed_at


def signed_html(html: str, *, name: str, signed_at: str) -> str:
    """The contract's HTML as signed: the signature and date lines filled in (for the buyer's
    page after signing; the signed PDF is the binding copy)."""
    from django.utils.html import escape

    signature = (
        f'<span class="signed-by" style="color:#1e3a8a;font-style:italic;font-size:14pt">'
        f"{escape(name)}</span><br><small>Signed electronically {escape(signed_at)}</small>"
    )
    date = f'<span style="color:#1e3a8a">{escape(signed_on_text(signed_at))}</span>'
    for anchor, filled in ((SIGN_ANCHOR, signature), (DATE_ANCHOR, date)):
        html = re.sub(rf'<span class="anchor">\s*{re.escape(anchor)}\s*</span>', filled, html)
        html = html.replace(anchor, filled)
    return html


def _signature_block(sheet, x, y, box_w, box_h, person: dict[str, str]) -> None:
    from reportlab.lib.units import mm

    sheet.setStrokeColorRGB(0.1, 0.3, 0.6)
    sheet.setFillColorRGB(0.94, 0.96, 1)
    sheet.roundRect(x, y, box_w, box_h, 1.5 * mm, stroke=1, fill=1)
    sheet.setFillColorRGB(0.1, 0.2, 0.45)
    sheet.setFont("Helvetica-Oblique", 12)
    sheet.drawString(x + 2.5 * mm, y + 7.8 * mm, person["name"][:40])
    sheet.setFont("Helvetica", 6.5)
    role = person.get("role_label", "")
    signed = f"Signed electronically {person['signed_at']}" + (f" ({role})" if role else "")
    sheet.drawString(x + 2.5 * mm, y + 4.4 * mm, signed[:80])
    sheet.drawString(
        x + 2.5 * mm, y + 1.6 * mm, f"Document SHA-256 {person['document_sha256'][:32]}…"
    )


def stamp_signed_pdf(
    pdf: bytes,
    *,
    audit: dict[str, str],
    signers: list[dict[str, str]] | None = None,
    seal_fingerprint: str = "",
) -> bytes:
    """The signed copy: a signature block per signer on the page with the sign anchor (the
    first where the template put it, the others under it, then beside it), plus the
    certificate of completion: every signer (name, email, IP, user agent, times, consent),
    the SHA-256 of the document they signed, and the sealing certificate's fingerprint.

    `audit` is the contract-wide part (contract, sent_at, document_sha256); `signers` the
    people in signing order (default: `audit` itself, a single signer).
    """
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    signers = signers or [audit]
    for person in signers:
        person.setdefault("document_sha256", audit["document_sha256"])
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
    # The blocks sit in the blank space under the anchor (the template leaves room for it).
    box_w, box_h = 80 * mm, 13 * mm
    x0, y0 = position or (20 * mm, 40 * mm)
    x0 = min(max(x0, 10 * mm), width - box_w - 10 * mm)
    y0 = min(max(y0 + 6 - box_h, 10 * mm), height - box_h - 10 * mm)

    block = io.BytesIO()
    sheet = canvas.Canvas(block, pagesize=(width, height))
    x, y = x0, y0
    for person in signers:
        _signature_block(sheet, x, y, box_w, box_h, person)
        y -= box_h + 2 * mm
        if y < 10 * mm:  # no room below: the next column
            x = x + box_w + 4 * mm if x + 2 * box_w + 4 * mm < width - 10 * mm else 10 * mm
            y = y0
    # The "Date:" line gets the date of the last signature where the template put it.
    date_position = _anchor_position(target, DATE_ANCHOR)
    if date_position:
        dx = min(max(date_position[0], 10 * mm), width - 60 * mm)
        dy = min(max(date_position[1] + 6 - 9 * mm, 10 * mm), height - 20 * mm)
        sheet.setFont("Helvetica", 11)
        sheet.setFillColorRGB(0.1, 0.2, 0.45)
        sheet.drawString(dx + 2.5 * mm, dy + 4 * mm, signed_on_text(signers[-1]["signed_at"]))
    sheet.save()
    target.merge_page(PdfReader(io.BytesIO(block.getvalue())).pages[0])

    page_buf = io.BytesIO()
    sheet = canvas.Canvas(page_buf, pagesize=A4)
    state = {"y": 0.0}

    def heading() -> None:
        sheet.setFont("Helvetica-Bold", 16)
        sheet.drawString(20 * mm, 275 * mm, gettext("Certificate of completion"))
        sheet.setFont("Helvetica", 10)
        sheet.drawString(20 * mm, 269 * mm, gettext("Signature audit trail"))
        state["y"] = 258 * mm

    def row(label: str, value: str, *, bold_value: bool = False) -> None:
        text = str(value)
        chunks = [text[i : i + 90] for i in range(0, len(text), 90)] or [""]
        chunks = chunks[:4]
        if state["y"] - 5 * mm * len(chunks) < 20 * mm:
            sheet.showPage()
            heading()
        y = state["y"]
        sheet.setFont("Helvetica-Bold", 9)
        sheet.drawString(20 * mm, y, label)
        sheet.setFont("Helvetica-Bold" if bold_value else "Helvetica", 8.5)
        for chunk in chunks:
            sheet.drawString(62 * mm, y, chunk)
            y -= 4.2 * mm
        state["y"] = y - 1.2 * mm

    heading()
    row("Contract", audit.get("contract", ""))
    row("Sent for signature", audit.get("sent_at", ""))
    row("Document SHA-256", audit["document_sha256"])
    row("Signers", str(len(signers)))
    for number, person in enumerate(signers, start=1):
        state["y"] -= 2 * mm
        role = person.get("role_label", "")
        row(
            f"Signer {number}",
            f"{person['name']}" + (f" · {role}" if role else ""),
            bold_value=True,
        )
        row("Email", person["email"])
        if person.get("order"):
            row("Signing order", person["order"])
        row("Typed name", person.get("typed_name", person["name"]))
        row("Consent", person.get("consent", ""))
        row("Link sent", person.get("due_at", "") or audit.get("sent_at", ""))
        row("First opened", person.get("viewed_at", ""))
        row("Signed at", person["signed_at"])
        row("IP address", person["ip"])
        row("User agent", person["user_agent"])
    state["y"] -= 3 * mm
    if seal_fingerprint:
        row("Sealed by", "Closing CRM (PAdES signature over the whole completed file)")
        row("Seal certificate SHA-256", seal_fingerprint)
    if state["y"] < 30 * mm:
        sheet.showPage()
        heading()
    sheet.setFont("Helvetica-Oblique", 7.5)
    sheet.drawString(
        20 * mm,
        state["y"] - 4 * mm,
        gettext(
            "The document SHA-256 is the hash of the unsigned contract the signers reviewed. "
            "Any change after sealing breaks the seal."
        ),
    )
    sheet.save()
    for page in PdfReader(io.BytesIO(page_buf.getvalue())).pages:
        writer.add_page(page)
    writer.add_metadata({"/Title": audit.get("contract", gettext("Signed contract"))})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
