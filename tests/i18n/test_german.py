"""The product in German: the catalogue is complete, the main pages show no English string
from it, the English UI stays English, and the language follows the user's setting."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from contracts import services as contract_services
from contracts.esign.builtin import signing_url
from deals import services as deal_services
from deals.management.commands.compile_translations import compile_catalogues
from notifications.models import Kind, Notification
from notifications.services import notify

PO_PATH = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES" / "django.po"

#: Entries whose German is the English on purpose: product and technical names, codes,
#: currencies, anglicisms German sales teams use as they are ("Deal", "Pipeline", "Coaching").
SAME_IN_GERMAN = {
    "%(words)s Version %(number)s: %(status)s.",
    "EUR (€)",
    "USD ($)",
    "GBP (£)",
    "CHF",
    "Chat",
    "smtp, http, anymail:…, app",
    "Commit",
    "Name",
    "Pipeline",
    "in %(currency)s",
    "manage.py docusign_check",
    "docs/docusign.md",
    "CSV",
    "JSON",
    "&rsaquo;",
    "&rsaquo; %(title)s",
    "Board",
    "Deals",
    "Dashboard",
    "Import",
    "Version",
    "Plan",
    "Phase",
    "Version %(n)s",
    "Version %(number)s",
    "Status",
    "v%(number)s",
    "&lt;%(signer_email)s&gt;",
    "SHA-256",
    "+ Deal",
    "Deal",
    "Website",
    "Team",
    "Onboarding",
    "System",
    "make graph",
    "Problem",
    "Optional",
    "Dashboards",
    "Coaching",
    "M Y",
    "Median",
    "Deal (Z–A)",
}

PLACEHOLDER = re.compile(r"%\([A-Za-z_0-9]+\)s|%%|\{\{[^}]*\}\}")


def catalogue() -> polib.POFile:
    return polib.pofile(str(PO_PATH))


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


# --- the catalogue ---------------------------------------------------------------------


def test_every_entry_has_a_german_translation():
    po = catalogue()
    assert len(po) > 1000, "the catalogue looks truncated"
    problems = []
    for entry in po:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        if entry.msgid_plural:
            forms = [entry.msgstr_plural.get(0, ""), entry.msgstr_plural.get(1, "")]
            if not all(forms):
                problems.append(f"untranslated plural: {entry.msgid!r}")
            for form, english in zip(forms, [entry.msgid, entry.msgid_plural], strict=True):
                if _placeholders(form) != _placeholders(english) and "%(count" not in english:
                    problems.append(f"placeholders differ: {english!r} → {form!r}")
            continue
        if not entry.msgstr:
            problems.append(f"untranslated: {entry.msgid!r}")
        elif (
            entry.msgstr == entry.msgid
            and entry.msgid not in SAME_IN_GERMAN
            and _has_words(entry.msgid)
        ):
            problems.append(f"German equals English: {entry.msgid!r}")
        elif _placeholders(entry.msgstr) != _placeholders(entry.msgid):
            problems.append(f"placeholders differ: {entry.msgid!r} → {entry.msgstr!r}")
    assert not problems, "\n".join(problems)


def _has_words(text: str) -> bool:
    """Whether `text` has a word to translate once its placeholders are taken out
    ("%(who)s, %(when)s" and "Q%(quarter)s %(year)s" have none)."""
    return re.search(r"[A-Za-z]{2,}", re.sub(r"%\(\w+\)[sd]", "", text)) is not None


def test_the_javascript_catalogue_is_german_too(client):
    po = polib.pofile(str(PO_PATH.with_name("djangojs.po")))
    assert po and all(e.msgstr and "fuzzy" not in e.flags for e in po)
    catalogue_js = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Der Server war nicht erreichbar." in catalogue_js


def test_the_header_is_german_with_two_plural_forms():
    po = catalogue()
    assert po.metadata["Language"] == "de"
    assert po.metadata["Plural-Forms"].startswith("nplurals=2;")
    assert not po.metadata_is_fuzzy


def test_compile_translations_writes_mo_files_without_gnu_gettext(tmp_path, settings):
    """A fresh machine has no msgfmt: the command compiles with polib, only when stale."""
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.po").write_text(PO_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    settings.LOCALE_PATHS = [tmp_path]
    assert compile_catalogues() == [folder / "django.mo"]
    assert compile_catalogues() == []  # up to date: nothing to do
    mo = polib.mofile(str(folder / "django.mo"))
    assert mo.find("Log out").msgstr == "Abmelden"


# --- rendering pages ------------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """The text a reader sees (and hears: titles, labels, placeholders), without scripts."""

    ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.nodes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.ATTRIBUTES and value:
                self.nodes.append(" ".join(value.split()))
            if tag == "input" and name == "value" and dict(attrs).get("type") == "submit":
                self.nodes.append(value or "")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.nodes.append(" ".join(data.split()))


def visible_nodes(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return parser.nodes


def _fragments(msgid: str) -> list[str]:
    """The literal pieces of a msgid between its placeholders."""
    return [p.strip(" .,:;()“”") for p in PLACEHOLDER.split(msgid) if p.strip(" .,:;()“”")]


def stored_texts() -> list[str]:
    """Texts stored when they happened (the audit log's reasons), in the writer's language:
    they are records, not UI, and stay as written."""
    from deals.models import DealEvent

    return [r for r in DealEvent.objects.values_list("reason", flat=True) if r]


def english_leftovers(html: str) -> list[str]:
    """Every catalogue string that shows in English on a page that should be German: a whole
    text node equal to a msgid (buttons, labels, headings), or a msgid's literal piece of two
    or more words inside the text (sentences with values in them)."""
    stored = stored_texts()
    nodes = [n for n in visible_nodes(html) if not any(n in s or s in n for s in stored)]
    text = " ¦ ".join(nodes)
    node_set = set(nodes)
    german = " ".join(
        e.msgstr or " ".join(e.msgstr_plural.values()) for e in catalogue() if not e.obsolete
    )
    found = []
    for entry in catalogue():
        for english in filter(None, [entry.msgid, entry.msgid_plural]):
            if english in SAME_IN_GERMAN:
                continue
            if english in node_set and english not in german:
                found.append(english)
                continue
            for piece in _fragments(english):
                if len(piece) >= 12 and " " in piece and piece not in german and piece in text:
                    found.append(f"{piece}  (from {english!r})")
    return sorted(set(found))


@pytest.fixture
def contract_deal(deal, signer, rep, run_on_commit):
    """A deal with a contract out for signature, a note and a notification: the panels fill."""
    deal.next_step = "Call the buyer"
    deal.save()
    version = contract_services.contract_generate(deal=deal, by=rep)
    run_on_commit(contract_services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    deal_services.deal_note_add(deal=deal, by=rep, text="Spoke with procurement.")
    notify(
        recipient=rep,
        kind=Kind.CONTRACT_VIEWED,
        deal=deal,
        key="i18n-test",
        text="Ann Buyer opened the contract.",
    )
    return deal, version


def main_pages(deal) -> list[str]:
    return [
        reverse("home"),
        reverse("deals:board"),
        reverse("deals:deal_list"),
        reverse("deals:deal_detail", args=[deal.pk]),
        reverse("pipeline:dashboard"),
        reverse("pipeline:coaching"),
        reverse("notifications:list"),
        reverse("notifications:preferences"),
        deal.account.get_absolute_url(),
        deal.stakeholders.first().contact.get_absolute_url(),
        reverse("deals:state_machine"),
        reverse("deals:search") + "?q=ac",
    ]


def _get(client, url, **headers):
    response = client.get(url, **headers)
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.mark.parametrize("how", ["accept_language", "user_setting"])
def test_the_main_pages_are_entirely_german(client, rep, contract_deal, how):
    deal, _version = contract_deal
    headers = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}
    if how == "user_setting":
        deal_services.user_language_set(user=rep, language="de")
        headers = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}  # the setting wins
    client.force_login(rep)
    problems = {}
    for url in main_pages(deal):
        html = _get(client, url, **headers)
        assert '<html lang="de">' in html, url
        leftovers = english_leftovers(html)
        if leftovers:
            problems[url] = leftovers
    assert not problems, problems


def test_the_deal_page_speaks_german(client, rep, contract_deal):
    deal, _version = contract_deal
    client.force_login(rep)
    html = _get(client, deal.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="de")
    for german in ["Nächste beste Aktion", "Vertrag", "Abmelden", "Mein Tag", "Kaufsignale"]:
        assert german in html


def test_the_pages_merged_last_are_german_too(client, rep, manager, contract_deal, plan_template):
    """The features merged after the catalogue was made (quotas, what works, the close plan
    and buyer room, the verify pages) speak German on every page they show up on: the
    manager's pages, the rep's My day, and the buyer's room (Accept-Language)."""
    from django.utils import timezone

    from rooms import services as rooms

    deal, _version = contract_deal
    rooms.plan_create_from_template(deal=deal, by=rep)
    link = rooms.room_link_issue(deal=deal, by=rep, contact=deal.stakeholders.first().contact)
    for kind in ("quarter", "month"):
        deal_services.quota_set(
            by=manager,
            rep=rep,
            period_kind=kind,
            period_start=timezone.localdate(),
            currency=rep.team.currency,
            amount=90000,
        )
    for user in (rep, manager):
        deal_services.user_language_set(user=user, language="de")
    problems = {}
    client.force_login(manager)
    for url in [
        reverse("deals:quotas"),
        reverse("pipeline:dashboard"),
        reverse("pipeline:coaching"),
        reverse("contracts:verify"),
        reverse("verify_public"),
        deal.get_absolute_url(),
    ]:
        problems[url] = english_leftovers(_get(client, url))
    client.force_login(rep)
    home = _get(client, reverse("home"))
    assert "Meine Quote" in home
    problems["home"] = english_leftovers(home)
    client.logout()
    room = _get(
        client, rooms.room_url(link).removeprefix(settings.SITE_URL), HTTP_ACCEPT_LANGUAGE="de"
    )
    assert '<html lang="de">' in room
    # Plan step titles are the team's template data (stored as written), not catalogue UI.
    steps = set(deal.plan_steps.values_list("title", flat=True))
    problems["room"] = [found for found in english_leftovers(room) if found not in steps]
    assert not {url: found for url, found in problems.items() if found}, problems


def test_anonymous_pages_follow_accept_language(client, contract_deal):
    _deal, version = contract_deal
    for url in [reverse("login"), signing_url(version).removeprefix(settings.SITE_URL)]:
        html = _get(client, url, HTTP_ACCEPT_LANGUAGE="de")
        assert '<html lang="de">' in html
        assert not english_leftovers(html), (url, english_leftovers(html))
    login = _get(client, reverse("login"), HTTP_ACCEPT_LANGUAGE="de")
    assert "Anmelden" in login and "Passwort" in login


def test_the_english_ui_is_unchanged(client, rep, contract_deal):
    """English stays the default (no Accept-Language, or English): no German string shows."""
    deal, version = contract_deal
    client.force_login(rep)
    german_pieces = [
        p
        for e in catalogue()
        if e.msgstr and e.msgid not in SAME_IN_GERMAN
        for p in _fragments(e.msgstr)
        if len(p) >= 12 and " " in p and p not in e.msgid
    ]
    for headers in ({}, {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}):
        for url in main_pages(deal):
            html = _get(client, url, **headers)
            assert '<html lang="en' in html, url
            text = " ".join(visible_nodes(html))
            shown = [p for p in german_pieces if p in text]
            assert not shown, (url, shown[:5])
    home = _get(client, reverse("home"))
    for english in ["My day", "Log out", "Next steps due", "Contracts awaiting signature"]:
        assert english in home
    page = _get(client, deal.get_absolute_url())
    for english in ["Next best action", "Buying signals", "Contract history", "Send"]:
        assert english in page


# --- the language setting ---------------------------------------------------------------------


def test_the_switcher_saves_the_users_language_and_sets_the_cookie(client, rep):
    client.force_login(rep)
    response = client.post(
        reverse("notifications:language"), {"language": "de", "next": reverse("home")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    rep.refresh_from_db()
    assert rep.language == "de"
    html = _get(client, reverse("home"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Mein Tag" in html and "Ihre Sprache ist gespeichert." in html
    client.post(reverse("notifications:language"), {"language": "", "next": "/"})
    rep.refresh_from_db()
    assert rep.language == ""


def test_the_switcher_refuses_unknown_languages_and_foreign_redirects(client, rep):
    client.force_login(rep)
    response = client.post(reverse("notifications:language"), {"language": "xx"})
    assert response.status_code == 400
    rep.refresh_from_db()
    assert rep.language == ""
    response = client.post(
        reverse("notifications:language"), {"language": "de", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_the_service_refuses_a_language_the_product_does_not_ship(rep):
    with pytest.raises(deal_services.DealError):
        deal_services.user_language_set(user=rep, language="fr")


def test_the_admin_edits_the_users_language(client, admin_user, rep):
    client.force_login(admin_user)
    html = _get(client, reverse("admin:deals_user_change", args=[rep.pk]))
    assert 'name="language"' in html


def test_a_notification_is_written_in_the_recipients_language(rep, deal):
    """The text is stored once: in the reader's language, whoever caused it."""
    deal_services.user_language_set(user=rep, language="de")
    with translation.override("en"):
        notify(
            recipient=rep,
            kind=Kind.DEAL_STALLED,
            deal=deal,
            key="lang-test",
            text=lambda: translation.gettext("“%(deal)s” is yours now.") % {"deal": deal.title},
        )
    assert Notification.objects.get(key="lang-test").text == f"„{deal.title}“ gehört jetzt Ihnen."


def test_money_and_dates_follow_the_locale():
    import datetime as dt
    from decimal import Decimal

    from deals.templatetags.crm_format import day_text, money_text

    with translation.override("en"):
        assert money_text(Decimal("1250.50"), "EUR") == "1,250.50 EUR"
        assert money_text(Decimal("120000"), "EUR") == "120,000 EUR"
        assert day_text(dt.date(2020, 12, 13)) == "13 Dec 2020"
    with translation.override("de"):
        assert money_text(Decimal("1250.50"), "EUR") == "1.250,50 EUR"
        assert money_text(Decimal("120000"), "EUR") == "120.000 EUR"
        assert day_text(dt.date(2020, 12, 13)) == "13. Dez 2020"
