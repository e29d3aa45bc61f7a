"""Hardening: CSRF everywhere, throttles, production settings, headers, template sandboxes."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from deals import services

ROOT = Path(__file__).resolve().parent.parent

#: Views that take POSTs without a CSRF token on purpose, and what authenticates them instead.
CSRF_EXEMPT_BY_DESIGN = {
    "contracts:docusign_webhook": "DocuSign Connect, verified by its HMAC signature",
    "inbound_email": "raw inbound mail, X-Inbound-Secret (constant-time); off while unset",
    **{
        f"anymail:{pattern.name}": "ESP webhook (django-anymail), HTTP basic auth; 404 until "
        "ANYMAIL_WEBHOOK_SECRET is set"
        for pattern in __import__("anymail.urls", fromlist=["urlpatterns"]).urlpatterns
    },
}

_CONVERTER_SAMPLES = {
    "int": "1",
    "str": "x",
    "slug": "x",
    "path": "x",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _route_urls(resolvers=None, prefix="", namespace=""):
    """(url, name, view) for every `path()` route of the project (admin and DRF routers are
    regex-based and checked separately), with sample values for the converters."""
    for entry in resolvers if resolvers is not None else get_resolver().url_patterns:
        pattern = entry.pattern
        if not isinstance(pattern, RoutePattern):
            continue
        route = re.sub(
            r"<(?:(\w+):)?\w+>",
            lambda m: _CONVERTER_SAMPLES.get(m.group(1) or "str", "x"),
            str(pattern),
        )
        if isinstance(entry, URLResolver):
            space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _route_urls(entry.url_patterns, prefix + route, space)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + route, f"{namespace}{entry.name}", entry.callback


@pytest.fixture
def csrf_client(manager):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    return client


def test_every_page_refuses_a_post_without_csrf_token(csrf_client, deal):
    """Each route of every app (pages, admin, API with a session) answers a token-less POST
    with 403, except the documented webhook that authenticates by signature."""
    urls = list(_route_urls())
    assert len(urls) > 20
    checked = []
    for url, name, view in urls:
        # DRF views are exempt from Django's middleware but check CSRF themselves for
        # session-authenticated requests (token clients need none).
        is_api = hasattr(view, "cls")
        if getattr(view, "csrf_exempt", False) and not is_api:
            assert name in CSRF_EXEMPT_BY_DESIGN, f"{name} ({url}) is csrf_exempt"
            continue
        response = csrf_client.post(url, {"anything": "1"})
        assert response.status_code == 403, f"{name} {url} → {response.status_code}"
        if not is_api:
            assert b"CSRF verification failed" in response.content, name
        checked.append(name)
    for must in ("deals:import", "logout", "login", "api:deal-transition", "admin:index"):
        assert must in checked


def test_a_post_with_the_token_gets_through(csrf_client):
    """The same client with the token from a form is let through (the check is real)."""
    page = csrf_client.get("/import/")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else None
    token = token or csrf_client.cookies["csrftoken"].value
    response = csrf_client.post("/import/", {"csrfmiddlewaretoken": token, "kind": "deals"})
    assert response.status_code == 400  # the form's own error (no file), not CSRF
    assert b"CSRF verification failed" not in response.content


def test_admin_and_api_session_writes_need_csrf(csrf_client, admin_user, deal):
    """The admin and the API with a browser session also refuse token-less writes."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(f"/admin/deals/deal/{deal.pk}/change/", {}).status_code == 403
    response = csrf_client.post("/api/v1/deals/", {"title": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- throttles ---------------------------------------------------------------------------


@pytest.fixture
def clean_cache():
    cache.clear()
    yield
    cache.clear()


def test_login_locks_out_after_repeated_failures(client, rep, clean_cache, settings):
    """After AXES_FAILURE_LIMIT wrong passwords the login answers 429 with a clear page,
    even for the right password, until the cool-off passes."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/accounts/login/", {"username": "rita", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": "rita", "password": "wrong"})
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed log-ins" in html and "rita" in html
    response = client.post("/accounts/login/", {"username": "rita", "password": "pw"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_public_signing_links_are_throttled(client, settings, clean_cache):
    """A signing link hammered from one address gets 429 (guessing links is not practical)."""
    settings.CONTRACT_LINK_THROTTLE = 5
    statuses = [client.get("/sign/not-a-real-link/").status_code for _ in range(7)]
    assert statuses[:5] == [403] * 5
    assert statuses[5:] == [429, 429]


def test_api_throttle_triggers(rep, settings, clean_cache):
    """The API answers 429 past the per-user rate."""
    from rest_framework.authtoken.models import Token

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "2/minute", "anon": "2/minute"},
    }
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rep).key}")
    assert [client.get("/api/v1/deals/").status_code for _ in range(3)] == [200, 200, 429]


# --- production settings -------------------------------------------------------------------

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "ALLOWED_HOSTS": "crm.example.com",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECRET_KEY"))}
    clean.pop("PYTEST_CURRENT_TEST", None)
    # The browser tests set this for Playwright in the test process; production never does.
    clean.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_environment():
    """`manage.py check --deploy` reports nothing, even at warning level, in production."""
    secret = secrets.token_urlsafe(50)[:50]
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, SECRET_KEY=secret
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    """Secrets come only from the environment: without SECRET_KEY and DEBUG off, nothing runs."""
    result = _manage("check", **PRODUCTION_ENV)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_production_settings_values():
    """Secure cookies, HSTS with subdomains and preload, HTTPS behind the proxy header."""
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD,"
        " s.SECURE_PROXY_SSL_HEADER, s.X_FRAME_OPTIONS, s.DEBUG)"
    )
    result = _manage("shell", "-c", code, **PRODUCTION_ENV, SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "True True True 31536000 True True ('HTTP_X_FORWARDED_PROTO', 'https') DENY False"
    )


def test_pages_carry_csp_and_frame_headers(client, rep):
    """Every page has a Content-Security-Policy allowing scripts from our origin only, and
    refuses to be framed by other sites."""
    client.force_login(rep)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.content.decode()


def test_no_secret_is_hard_coded_in_settings():
    """Every credential-like setting is read from the environment."""
    text = (ROOT / "closing_crm" / "settings.py").read_text()
    for name in ("SECRET_KEY", "EMAIL_HOST_PASSWORD", "DOCUSIGN_PRIVATE_KEY"):
        assignments = re.findall(rf"^{name} = (.+)$", text, flags=re.M)
        assert assignments, name
        assert all("os.environ" in a for a in assignments), (name, assignments)


# --- logging: expected refusals are one line, server errors keep their traceback -------------


def _request_records(caplog):
    return [r for r in caplog.records if r.name.startswith(("django.request", "django.security"))]


def test_expected_403_and_404_are_logged_without_traceback(client, rep, other_rep, deal, caplog):
    """A rep opening the import page (403, PermissionDenied) or another team's deal (404) is
    one warning line with the path and the reason, with no traceback."""
    client.force_login(rep)
    with caplog.at_level("WARNING"):
        assert client.get("/import/").status_code == 403
        client.force_login(other_rep)
        assert client.get(f"/deals/{deal.pk}/").status_code == 404
    records = _request_records(caplog)
    assert [r.levelname for r in records] == ["WARNING", "WARNING"]
    forbidden, not_found = (r.getMessage() for r in records)
    assert (
        forbidden
        == "Forbidden (Permission denied): /import/ (Only managers and admins can import.)"
    )
    assert not_found == f"Not Found: /deals/{deal.pk}/"
    assert all(r.exc_info is None and not r.exc_text for r in records)
    assert "Traceback" not in caplog.text


def test_a_suspicious_request_is_logged_without_traceback(caplog, settings):
    """A forged Host header (SuspiciousOperation, 400) is one line in django.security."""
    client = Client()
    with caplog.at_level("WARNING"):
        assert client.get("/accounts/login/", HTTP_HOST="evil.example").status_code == 400
    records = _request_records(caplog)
    assert records and records[0].name == "django.security.DisallowedHost"
    assert "Invalid HTTP_HOST header: 'evil.example'" in records[0].getMessage()
    assert all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text


def test_server_errors_keep_their_traceback():
    """The filter leaves 5xx records as they are: a real failure still shows where it broke."""
    import logging

    from closing_crm.logging import ExpectedClientErrors

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/x",), exc_info
    )
    record.status_code = 500
    assert ExpectedClientErrors().filter(record)
    assert record.exc_info is exc_info


# --- the API schema ---------------------------------------------------------------------------


def test_the_api_schema_is_public_but_every_operation_needs_credentials(db, rep, deal):
    """Decision (README, Security): /api/schema/ and /api/docs/ are public. The schema is the
    same for every installation and holds no data; every operation in it requires a token or
    a session, and answers an anonymous caller with 401/403."""
    client = Client()
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert client.get("/api/docs/").status_code == 200
    text = response.content.decode()
    assert deal.title not in text and rep.username not in text and rep.email not in text
    schemes = schema["components"]["securitySchemes"]
    assert "tokenAuth" in schemes
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) > 10
    anonymous = set()
    for path, method, operation in operations:
        security = operation.get("security", schema.get("security", []))
        if not security or {} in security:
            anonymous.add(path)
            continue
        if method == "get" and "{" not in path:
            assert client.get(path).status_code in (401, 403), path
    assert anonymous <= {"/api/schema/"}, f"anonymous operations: {anonymous}"


# --- user-supplied templates ------------------------------------------------------------------

PROBES = [
    "{% load static %}",
    "{% debug %}",
    '{% include "base.html" %}',
    '{% extends "base.html" %}',
    '{% url "home" %}',
    "{% csrf_token %}",
    '{% ssi "/etc/passwd" %}',
    "{{ deal.title|safe }}",
    "{{ line_items|safeseq }}",
    "{% autoescape off %}{{ deal.title }}{% endautoescape %}",
    "{% filter force_escape %}{{ deal.title }}{% endfilter %}",
    "{% with t=deal.title|safe %}{{ t }}{% endwith %}",
    "{% if deal.title|safe %}x{% endif %}",
    "{% for t in line_items|safeseq %}{{ t }}{% endfor %}",
    '{{ deal.title|default:"x"|safe }}',
    "{{ deal.title|escapejs }}",
    '{{ deal.title|json_script:"x" }}',
    "{{ deal.title|urlize }}",
    "{{ deal.title|striptags }}",
]

#: A rep's markup in the deal title: it must reach the contract escaped, whatever the template.
MARKUP = '<img src=x onerror="alert(1)">'


@pytest.mark.parametrize("probe", PROBES)
def test_contract_templates_cannot_use_dangerous_tags(probe):
    """Tags that reach files, URLs, libraries or the context dump are not available."""
    from contracts.documents import TemplateProblem, render_template

    with pytest.raises(TemplateProblem):
        render_template(probe, {})


@pytest.mark.parametrize(
    "body, named",
    [
        ("{{ deal.title|safe }}", "The filter “safe” is not allowed: it turns off HTML escaping"),
        ("{% autoescape off %}{% endautoescape %}", "The tag “autoescape” is not allowed"),
        ("{% load static %}", "The tag “load” is not allowed: it loads tag libraries"),
        ("{{ x|random }}", "The filter “random” is not allowed"),
    ],
)
def test_a_refused_tag_or_filter_is_named_with_the_reason(body, named):
    """The admin reads which tag or filter is refused, why, and what is allowed instead."""
    from contracts.documents import TemplateProblem, compile_template

    with pytest.raises(TemplateProblem) as problem:
        compile_template(body)
    assert named in str(problem.value)
    assert "Allowed " in str(problem.value)


def test_allowed_tags_and_filters_still_render_escaped():
    """The allow-list keeps what templates need; string literals and comments are not
    mistaken for filters."""
    from contracts.documents import SAMPLE_TERMS, render_template

    out = render_template(
        '{% comment %}{{ x|safe }}{% endcomment %}{{ "a|safe"|upper }} '
        "{% for item in line_items %}{{ forloop.counter }}{% empty %}none{% endfor %} "
        '{{ deal.title|default:"-"|truncatechars:40|upper }} {{ markup|linebreaksbr }}',
        {**SAMPLE_TERMS, "markup": "<b>\nx"},
    )
    assert out.startswith("A|SAFE ")
    assert "ACME ROLLOUT" in out
    assert "&lt;b&gt;<br>x" in out


def test_saving_a_template_with_safe_in_the_admin_is_refused(client, admin_user):
    """The admin form shows the refusal with the reason and saves nothing."""
    from contracts.models import ContractTemplate

    client.force_login(admin_user)
    before = ContractTemplate.objects.count()
    response = client.post(
        "/admin/contracts/contracttemplate/add/",
        {"name": "Sneaky", "body": "<p>{{ deal.title|safe }}</p>", "is_active": "on"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The filter “safe” is not allowed: it turns off HTML escaping" in html
    assert ContractTemplate.objects.count() == before


def test_a_stored_template_with_safe_is_refused_at_render_time(rep, deal, contact):
    """A template saved before the allow-list (straight into the table) cannot print a rep's
    markup unescaped: generating the contract is refused, naming the filter."""
    from contracts import services as contract_services
    from contracts.models import ContractTemplate, ContractVersion

    services.deal_update(deal=deal, by=rep, title=MARKUP)
    template = ContractTemplate.objects.create(
        name="Old", body="<h1>{{ deal.title|safe }}</h1>", version=1, is_active=True
    )
    with pytest.raises(services.DealError) as problem:
        contract_services.contract_generate(deal=deal, by=rep, template=template, signer=contact)
    assert "“safe” is not allowed" in problem.value.message
    assert not ContractVersion.objects.filter(deal=deal).exists()


def test_cadence_texts_refuse_safe_when_saved_and_when_sent(rep, deal):
    """Follow-up texts use the same allow-list: a cadence step with `|safe` does not
    validate, and a stored one is refused when rendered."""
    from django.core.exceptions import ValidationError

    from followups.models import Cadence, CadenceStep
    from followups.services import PermanentSendError, _render

    cadence = Cadence.objects.first()  # the default cadence the migration ships
    step = CadenceStep(cadence=cadence, offset_days=2, subject="Hi", body="{{ deal.title|safe }}")
    with pytest.raises(ValidationError) as problem:
        step.full_clean()
    assert "“safe” is not allowed" in str(problem.value.message_dict["body"])
    with pytest.raises(PermanentSendError):
        _render("{{ deal.title|safe }}", {"deal": deal})


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_contract_template_context_reaches_no_model_or_setting(rep, deal, contact, settings):
    """The contract context is plain data: no model to walk to users, tokens or the database,
    and nothing of the settings."""
    from contracts.documents import deal_terms, render_template

    terms = deal_terms(deal, number=1)
    assert _plain(terms)
    leaks = render_template(
        "{{ settings.SECRET_KEY }}|{{ deal.owner.password }}|{{ account.owner.password }}"
        "|{{ account.deals.all }}|{{ request }}",
        terms,
    )
    assert leaks == "||||"
    assert settings.SECRET_KEY not in render_template("{{ SECRET_KEY }}{{ settings }}", terms)


def test_follow_up_templates_reach_no_secret(rep, deal):
    """A follow-up template cannot print a user's password hash or load tag libraries."""
    from followups.services import _render

    context = {"deal": deal, "account": deal.account, "rep": rep}
    assert _render("{{ rep.password }}{{ deal.owner.password }}", context) == ""
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do
        _render("{% load static %}{% debug %}", context)


# --- nothing lost ---------------------------------------------------------------------------


def test_the_admin_deletes_no_deal_account_contact_or_event(client, admin_user, deal, contact):
    """Deals, accounts, contacts and events have no delete in the admin; archiving keeps rows."""
    from deals.models import Account, Contact, Deal, DealEvent

    client.force_login(admin_user)
    for model, obj in [
        ("deal", deal),
        ("account", deal.account),
        ("contact", contact),
        ("dealevent", deal.events.first()),
    ]:
        response = client.post(f"/admin/deals/{model}/{obj.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403, model
    response = client.post(
        "/admin/deals/deal/",
        {"action": "archive_deals", "_selected_action": [deal.pk]},
    )
    assert response.status_code == 302
    response = client.post(
        "/admin/deals/contact/",
        {"action": "archive_contacts", "_selected_action": [contact.pk]},
    )
    assert response.status_code == 302
    assert Deal.objects.get(pk=deal.pk).archived_at is not None
    assert Contact.objects.get(pk=contact.pk).archived_at is not None
    assert Account.objects.filter(pk=deal.account_id).exists()
    assert DealEvent.objects.filter(deal=deal, data__archived=True).count() == 1


def test_events_refuse_update_and_delete_in_code(deal):
    """The audit log is append-only in the model and its queryset too."""
    from deals.models import AppendOnlyError, DealEvent

    event = DealEvent.objects.filter(deal=deal).first()
    event.reason = "rewritten"
    for attempt in (
        event.save,
        event.delete,
        lambda: DealEvent.objects.filter(pk=event.pk).update(reason="x"),
        lambda: DealEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(AppendOnlyError):
            attempt()
    assert DealEvent.objects.get(pk=event.pk).reason == ""
