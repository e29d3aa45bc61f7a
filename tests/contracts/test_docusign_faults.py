"""DocuSign as a customer's real account behaves: revoked and short-lived tokens, sends that
time out after DocuSign created the envelope, lookups that fail, webhooks DocuSign does not
confirm, reasons, consent and configuration mistakes, other hosts, rate limits.

All against the fake DocuSign server with the real docusign-esign SDK.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from celery.signals import task_retry
from django.core.cache import cache
from django.urls import reverse

from contracts import services, tasks
from contracts.esign import docusign as docusign_module
from contracts.esign import get_provider
from contracts.models import ContractVersion, WebhookDelivery
from deals.models import DealState
from tests.fakes.docusign import ACCOUNT_ID, rsa_key_pem

from .test_webhooks import _body, _sig

Status = ContractVersion.Status
URL = "/contracts/webhooks/docusign/"


def _send(run_on_commit, deal, rep, **kwargs) -> ContractVersion:
    version = services.contract_generate(deal=deal, by=rep)
    run_on_commit(services.contract_send, version=version, by=rep, **kwargs)
    version.refresh_from_db()
    return version


@pytest.fixture
def sent(docusign, termed_deal, rep, run_on_commit):
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    return version


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    def _deliver(event, envelope_id):
        body = _body(event, envelope_id)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                URL,
                data=body,
                content_type="application/json",
                HTTP_X_DOCUSIGN_SIGNATURE_1=_sig(body),
            )

    return _deliver


@pytest.fixture
def retry_waits():
    """The countdowns Celery tasks asked for when they retried (not wall-clock time)."""
    waits: list[float] = []

    def on_retry(sender=None, reason=None, **kwargs):
        waits.append(reason.when)

    task_retry.connect(on_retry, weak=False)
    yield waits
    task_retry.disconnect(on_retry)


# --- tokens ---------------------------------------------------------------------------


def test_a_token_revoked_mid_run_is_refreshed_once_and_the_send_succeeds(
    docusign, sent, termed_deal, rep, run_on_commit
):
    """DocuSign revokes the token: the next call answers 401, one new grant, the call again."""
    assert len(docusign.grants()) == 1
    docusign.revoke_tokens()
    v2 = _send(run_on_commit, termed_deal, rep)
    assert v2.status == Status.SENT
    assert v2.envelope_id in docusign.envelopes
    assert len(docusign.grants()) == 2
    assert len(docusign.answered(401)) == 1  # only the first call with the dead token
    sent.refresh_from_db()
    assert sent.status == Status.VOIDED
    assert docusign.envelopes[sent.envelope_id].status == "voided"  # the void used it too


def test_a_401_on_the_retried_call_is_an_error_not_a_loop(docusign, sent):
    """Refresh once: if DocuSign still refuses, the call fails (and is retried later)."""
    docusign.fail("401", times=2, method="GET", path_contains=sent.envelope_id)
    with pytest.raises(docusign_module.ProviderError) as caught:
        get_provider("docusign").status(sent)
    assert caught.value.status == 401 and caught.value.transient
    assert len(docusign.grants()) == 2


def test_a_token_that_expires_in_5_seconds_is_refreshed_by_later_calls(docusign, sent):
    """A 5-second token has less than a minute left at once: each later call gets a new
    grant before calling, so no call goes out with an expired token."""
    docusign.token_lifetime = 5
    docusign.expire_tokens()
    cache.clear()
    provider = get_provider("docusign")
    assert provider.status(sent) == Status.SENT
    grants = len(docusign.grants())
    docusign.expire_tokens()  # the 5 seconds passed
    assert provider.status(sent) == Status.SENT
    assert len(docusign.grants()) == grants + 1
    assert docusign.answered(401) == []


def test_the_token_is_refreshed_a_minute_before_docusign_says_it_expires(
    docusign, sent, monkeypatch
):
    """expires_in=3600: reused for 3539 s, refreshed when less than 60 s are left."""
    import time

    start = time.time()
    provider = get_provider("docusign")
    monkeypatch.setattr(docusign_module, "clock", lambda: start + 3500)
    provider.status(sent)
    assert len(docusign.grants()) == 1
    monkeypatch.setattr(docusign_module, "clock", lambda: start + 3545)
    provider.status(sent)
    assert len(docusign.grants()) == 2


def test_the_token_is_shared_through_the_cache(docusign, sent):
    """Every worker process reads the token from the shared cache (Redis in production)."""
    entry = cache.get(docusign_module._token_cache_key())
    assert entry["token"].startswith("fake-access-token-")
    fresh = docusign_module.DocuSignProvider()  # another process would build its own
    assert fresh.status(sent) == Status.SENT
    assert len(docusign.grants()) == 1
    assert docusign.requests("GET", sent.envelope_id)[-1].headers["Authorization"] == (
        f"Bearer {entry['token']}"
    )


def _in_another_process(docusign, settings, envelope_id: str) -> str:
    """Read an envelope's status from a separate Python process (as another worker would),
    configured through the environment like production, sharing only Redis."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "SECRET_KEY": "another-process",
        "DOCUSIGN_OAUTH_HOST": settings.DOCUSIGN_OAUTH_HOST,
        "DOCUSIGN_INTEGRATION_KEY": settings.DOCUSIGN_INTEGRATION_KEY,
        "DOCUSIGN_USER_ID": settings.DOCUSIGN_USER_ID,
        "DOCUSIGN_ACCOUNT_ID": settings.DOCUSIGN_ACCOUNT_ID,
        "DOCUSIGN_BASE_URL": settings.DOCUSIGN_BASE_URL,
        "DOCUSIGN_PRIVATE_KEY": settings.DOCUSIGN_PRIVATE_KEY,
        "DOCUSIGN_CA_BUNDLE": settings.DOCUSIGN_CA_BUNDLE,
    }
    code = (
        "import django; django.setup();"
        "from contracts.esign.docusign import DocuSignProvider;"
        f"print(DocuSignProvider().envelope_details({envelope_id!r}).status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DJANGO_SETTINGS_MODULE": "closing_crm.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_worker_processes_share_one_token_and_its_replacement(docusign, sent, settings, redis_url):
    """Another process uses the token this one got (no second grant); when DocuSign revokes
    it, the process that meets the 401 replaces it for everyone."""
    assert settings.CACHES["default"]["LOCATION"] == redis_url
    assert _in_another_process(docusign, settings, sent.envelope_id) == "sent"
    assert len(docusign.grants()) == 1
    docusign.revoke_tokens()
    assert _in_another_process(docusign, settings, sent.envelope_id) == "sent"
    assert len(docusign.grants()) == 2
    assert get_provider("docusign").status(sent) == Status.SENT  # this process: no 401
    assert len(docusign.grants()) == 2
    assert len(docusign.answered(401)) == 1


# --- idempotent sends -------------------------------------------------------------------


def test_timeout_after_create_then_failing_lookups_then_manual_retry_leaves_one_envelope(
    docusign, termed_deal, rep, run_on_commit, settings
):
    """The POST creates the envelope but answers too late; the retries cannot look it up,
    so they create nothing and the version fails; "Retry sending" finds and adopts it."""
    settings.DOCUSIGN_READ_TIMEOUT = 0.3
    docusign.fail("pass", method="GET", query_contains="custom_field")  # first search: fine
    docusign.fail("slow_answer", method="POST", path_contains="/envelopes", delay=0.8)
    docusign.fail("500", times=2, method="GET", query_contains="custom_field")
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "look for an earlier attempt" in version.status_reason
    assert len(docusign.live_envelopes()) == 1
    run_on_commit(services.contract_resend, version=version, by=rep)
    version.refresh_from_db()
    live = docusign.live_envelopes()
    assert len(live) == 1
    assert version.status == Status.SENT and version.envelope_id == live[0].envelope_id
    assert len(docusign.requests("POST", f"/accounts/{ACCOUNT_ID}/envelopes")) == 1
    assert version.deal.events.filter(reason__contains="earlier attempt").exists()


def test_every_attempt_searches_before_creating(docusign, sent):
    """Even the first attempt looks for this version's envelope by its custom field."""
    search, create = docusign.requests("GET", "/envelopes")[0], docusign.requests("POST")[-1]
    assert search.query["custom_field"] == [f"contract_version_id={sent.pk}"]
    assert docusign.received.index(search) < docusign.received.index(create)


def test_a_second_live_envelope_found_at_send_is_voided(
    docusign, termed_deal, rep, run_on_commit, django_capture_on_commit_callbacks
):
    """Two envelopes carry the version's field (a blind retry of old): one is kept, the
    other voided with a reason."""
    version = _send(run_on_commit, termed_deal, rep)
    twin = docusign.copy_envelope(version.envelope_id)
    ContractVersion.objects.filter(pk=version.pk).update(status=Status.SENDING)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_version.apply(args=[version.pk])
    version.refresh_from_db()
    assert version.status == Status.SENT
    assert docusign.envelopes[twin].status == "voided"
    assert "Duplicate of envelope" in docusign.envelopes[twin].voided_reason
    assert len(docusign.live_envelopes()) == 1


def test_webhook_for_an_orphan_of_a_failed_send_is_adopted_and_applied(
    docusign, termed_deal, rep, run_on_commit, settings, deliver
):
    """The send failed (lookups down) but DocuSign had the envelope; the buyer signs it:
    the webhook names an envelope we do not know, DocuSign says it carries our version's
    field, so it is adopted and the signed contract wins the deal."""
    settings.DOCUSIGN_READ_TIMEOUT = 0.3
    docusign.fail("pass", method="GET", query_contains="custom_field")
    docusign.fail("slow_answer", method="POST", path_contains="/envelopes", delay=0.8)
    docusign.fail("500", times=2, method="GET", query_contains="custom_field")
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED and not version.envelope_id
    orphan = docusign.live_envelopes()[0].envelope_id
    docusign.set_status(orphan, "completed")
    deliver("envelope-completed", orphan)
    version.refresh_from_db()
    version.deal.refresh_from_db()
    assert version.envelope_id == orphan
    assert version.status == Status.COMPLETED and version.signed_pdf
    assert version.deal.state == DealState.CLOSED_WON
    assert WebhookDelivery.objects.get().outcome == WebhookDelivery.Outcome.APPLIED


def test_a_signed_orphan_replaces_the_adopted_envelope_which_is_voided(docusign, sent, deliver):
    """The buyer signed the other envelope of the same version: it is kept, the unsigned
    one is voided, and the deal is won (the signed contract is never lost)."""
    twin = docusign.copy_envelope(sent.envelope_id)
    docusign.set_status(twin, "completed")
    deliver("envelope-completed", twin)
    first = sent.envelope_id
    sent.refresh_from_db()
    assert sent.envelope_id == twin and sent.status == Status.COMPLETED
    assert docusign.envelopes[first].status == "voided"
    assert "signed in envelope" in docusign.envelopes[first].voided_reason
    sent.deal.refresh_from_db()
    assert sent.deal.state == DealState.CLOSED_WON


def test_an_unsigned_orphan_found_through_a_webhook_is_voided(docusign, sent, deliver):
    """A live duplicate envelope reported by Connect is voided; the version keeps its own."""
    twin = docusign.copy_envelope(sent.envelope_id)
    deliver("envelope-delivered", twin)
    first = sent.envelope_id
    sent.refresh_from_db()
    assert sent.envelope_id == first and sent.status == Status.SENT
    assert docusign.envelopes[twin].status == "voided"
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.IGNORED and "duplicate" in delivery.error


# --- confirm before applying ------------------------------------------------------------


def test_a_signed_completed_for_an_envelope_docusign_reports_as_sent_changes_nothing(
    docusign, sent, deliver
):
    """Defence in depth: a correctly signed 'completed' is checked with get_envelope."""
    assert deliver("envelope-completed", sent.envelope_id).status_code == 200
    sent.refresh_from_db()
    sent.deal.refresh_from_db()
    assert sent.status == Status.SENT and not sent.signed_pdf
    assert sent.deal.state == DealState.AGREEMENT_SENT
    assert not docusign.requests("GET", "/documents/combined")
    check = docusign.requests("GET", sent.envelope_id)[-1]
    assert "recipients" in check.query["include"][0]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.IGNORED
    assert "reports the envelope as “sent”" in delivery.error


def test_reconcile_applies_only_what_get_envelope_confirms(docusign, sent):
    """The status listing is a claim too: a decline is applied with the signer's reason."""
    docusign.decline(sent.envelope_id, "The price is above budget.")
    assert tasks.reconcile.apply().get()["applied"] == 1
    sent.refresh_from_db()
    assert sent.status == Status.DECLINED
    assert sent.status_reason == "The price is above budget."


def test_a_decline_reason_is_on_the_version_the_objection_and_the_deal_page(
    docusign, sent, deliver, client, rep
):
    """The buyer's words reach the rep, not "Declined in DocuSign."."""
    docusign.decline(sent.envelope_id, "We need net-60 payment terms.")
    deliver("envelope-declined", sent.envelope_id)
    sent.refresh_from_db()
    assert sent.status == Status.DECLINED
    assert sent.status_reason == "We need net-60 payment terms."
    objection = sent.deal.objections.get()
    assert "We need net-60 payment terms." in objection.detail
    client.force_login(rep)
    page = client.get(sent.deal.get_absolute_url()).content.decode()
    assert "We need net-60 payment terms." in page


def test_a_void_reason_from_docusign_is_kept(docusign, sent, deliver):
    docusign.void(sent.envelope_id, "Sent to the wrong contact")
    deliver("envelope-voided", sent.envelope_id)
    sent.refresh_from_db()
    assert sent.status == Status.VOIDED
    assert "Sent to the wrong contact" in sent.status_reason
    assert sent.deal.events.filter(reason__contains="Sent to the wrong contact").exists()


# --- configuration errors ---------------------------------------------------------------


def test_missing_consent_names_consent_and_the_url_on_the_deal_page_and_in_the_admin(
    docusign, termed_deal, rep, run_on_commit, client, admin_user
):
    """consent_required: a failure at once (no retries) saying what to open."""
    docusign.grant_error = {"error": "consent_required"}
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert version.send_attempts == 1
    url = (
        f"https://{docusign.oauth_host}/oauth/auth?response_type=code"
        "&scope=signature%20impersonation&client_id=integration-key-1"
        "&redirect_uri=https%3A%2F%2Fcrm.example.com%2F"
    )
    assert "consent" in version.status_reason
    assert url in version.status_reason
    client.force_login(rep)
    page = client.get(termed_deal.get_absolute_url()).content.decode()
    assert url.replace("&", "&amp;") in page  # the URL, in full, as a link to open
    assert f'<a href="https://{docusign.oauth_host}/oauth/auth?response_type=code' in page
    client.force_login(admin_user)
    admin_page = client.get(reverse("admin:contracts_contractversion_changelist"), follow=True)
    assert "consent" in admin_page.content.decode()
    check = client.get(reverse("admin:contracts_docusign_check"))
    assert check.status_code == 200
    assert url.replace("&", "&amp;") in check.content.decode()


def test_a_key_that_does_not_match_the_integration_key_is_named(
    docusign, termed_deal, rep, run_on_commit, settings
):
    settings.DOCUSIGN_PRIVATE_KEY = rsa_key_pem()[0]
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "does not belong to integration key integration-key-1" in version.status_reason


def test_a_wrong_account_lists_the_users_accounts(
    docusign, termed_deal, rep, run_on_commit, settings
):
    settings.DOCUSIGN_ACCOUNT_ID = "not-my-account"
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "no access to account not-my-account" in version.status_reason
    assert ACCOUNT_ID in version.status_reason


def test_a_wrong_user_is_named(docusign, termed_deal, rep, run_on_commit):
    docusign.grant_error = {"error": "invalid_grant", "error_description": "user_not_found"}
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.FAILED
    assert "does not know user user-guid-1 (DOCUSIGN_USER_ID)" in version.status_reason


# --- base URI ----------------------------------------------------------------------------


def test_calls_go_to_the_base_uri_user_info_names_not_docusign_base_url(
    docusign, termed_deal, rep, run_on_commit, settings
):
    """The account lives on another host than DOCUSIGN_BASE_URL says: user info wins, and
    the discovery is cached (one user info call for several sends)."""
    port = docusign.rest.server_address[1]
    settings.DOCUSIGN_BASE_URL = f"http://127.0.0.1:{port}/restapi"
    docusign.userinfo_base_uri = f"http://localhost:{port}"
    v1 = _send(run_on_commit, termed_deal, rep)
    v2 = _send(run_on_commit, termed_deal, rep)
    assert v1.status == Status.SENT and v2.status == Status.SENT
    rest = [r for r in docusign.received if r.path.startswith("/restapi/")]
    assert rest and {r.headers["Host"] for r in rest} == {f"localhost:{port}"}
    assert len(docusign.requests("GET", "/oauth/userinfo")) == 1


# --- rate limits ----------------------------------------------------------------------


def test_a_429_with_retry_after_waits_that_long(
    docusign, termed_deal, rep, run_on_commit, retry_waits
):
    """HTTP 429 with Retry-After: 7: the task retries no sooner than 7 seconds later."""
    docusign.fail("429", method="POST", path_contains="/envelopes", retry_after="7")
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert retry_waits == [7.0]


def test_a_429_with_only_x_ratelimit_reset_waits_until_the_reset(
    docusign, termed_deal, rep, run_on_commit, retry_waits, monkeypatch
):
    now = 1_800_000_000.0
    monkeypatch.setattr(docusign_module, "clock", lambda: now)
    docusign.fail(
        "429",
        method="POST",
        path_contains="/envelopes",
        retry_after=None,
        rate_limit_reset=str(int(now + 42)),
    )
    version = _send(run_on_commit, termed_deal, rep)
    assert version.status == Status.SENT
    assert retry_waits == [42.0]


def test_a_429_on_a_read_is_not_silently_slept_on_by_urllib3(docusign, sent):
    """GETs answered 429 come back to us at once (urllib3 would sleep Retry-After)."""
    docusign.fail("429", method="GET", path_contains=sent.envelope_id, retry_after="30")
    with pytest.raises(docusign_module.ProviderError) as caught:
        get_provider("docusign").status(sent)
    assert caught.value.retry_after == 30.0
    assert len(docusign.requests("GET", sent.envelope_id)) == 1


# --- in-person signing ------------------------------------------------------------------


def test_in_person_return_url_is_read_by_the_server_and_updates_the_page(
    docusign, termed_deal, rep, client, django_capture_on_commit_callbacks
):
    """The return URL has no '#', so DocuSign's ?event= reaches the server; the page shows
    the signed contract at once, from the envelope's status."""
    client.force_login(rep)
    version = services.contract_generate(deal=termed_deal, by=rep)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/contracts/versions/{version.pk}/send/",
            {"embedded": "1", "expected_state": termed_deal.state},
        )
    version.refresh_from_db()
    client.post(f"/contracts/versions/{version.pk}/signing-view/")
    return_url = docusign.requests("POST", "/views/recipient")[0].json["returnUrl"]
    assert "#" not in return_url
    assert urlsplit(return_url).path == reverse("contracts:signing_return", args=[version.pk])
    docusign.set_status(version.envelope_id, "completed")  # the buyer signed on the tablet
    back = urlsplit(return_url)
    response = client.get(back.path, {"event": "signing_complete"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "The buyer signed in DocuSign." in page
    version.refresh_from_db()
    version.deal.refresh_from_db()
    assert version.status == Status.COMPLETED and version.signed_pdf
    assert version.deal.state == DealState.CLOSED_WON
    assert "Signed PDF" in page


def test_in_person_cancel_changes_nothing(docusign, termed_deal, rep, client, run_on_commit):
    version = _send(run_on_commit, termed_deal, rep, embedded=True)
    client.force_login(rep)
    url = reverse("contracts:signing_return", args=[version.pk])
    page = client.get(url, {"event": "cancel"}, follow=True).content.decode()
    assert "left the signing session" in page
    version.refresh_from_db()
    assert version.status == Status.SENT


# --- the demo seed ----------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_never_sends_through_docusign(docusign, settings):
    """With ESIGN_PROVIDER=docusign the demo seed still uses the built-in signer."""
    from django.core.management import call_command

    settings.DEMO_MODE = True
    call_command("seed_demo")
    assert docusign.received == []
    providers = set(
        ContractVersion.objects.exclude(status="draft").values_list("provider", flat=True)
    )
    assert providers == {"builtin"}


def test_consent_url_is_built_from_the_settings(docusign):
    query = parse_qs(urlsplit(docusign_module.consent_url()).query)
    assert query == {
        "response_type": ["code"],
        "scope": ["signature impersonation"],
        "client_id": ["integration-key-1"],
        "redirect_uri": ["https://crm.example.com/"],
    }


# --- manage.py docusign_check -----------------------------------------------------------


def test_docusign_check_passes_on_a_working_setup(docusign, capsys):
    """Every step against the fake: key, grant, account and base URI, REST, HMAC, URL."""
    from django.core.management import call_command

    call_command("docusign_check")
    out = capsys.readouterr().out
    for step in ("Private key", "JWT grant", "Account", "REST API", "Connect HMAC keys"):
        assert f"OK    {step}" in out
    assert f"account {ACCOUNT_ID}, REST calls go to {docusign.rest_url}" in out
    assert "DocuSign is ready." in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"grant_error": {"error": "consent_required"}}, "oauth/auth?response_type=code"),
        ({"DOCUSIGN_PRIVATE_KEY": "/nowhere/docusign.pem"}, "/nowhere/docusign.pem"),
        ({"DOCUSIGN_ACCOUNT_ID": "not-mine"}, "no access to account not-mine"),
        ({"DOCUSIGN_CONNECT_HMAC_KEYS": []}, "DOCUSIGN_CONNECT_HMAC_KEYS is empty"),
        (
            {"DOCUSIGN_WEBHOOK_URL": "https://crm.example.com/contracts/webhooks/docusign"},
            "with the trailing slash",
        ),
        ({"DOCUSIGN_WEBHOOK_URL": "http://crm.example.com/contracts/webhooks/docusign/"}, "https"),
    ],
    ids=["consent", "key-file", "account", "hmac", "no-trailing-slash", "plain-http"],
)
def test_docusign_check_fails_with_what_to_fix(docusign, settings, capsys, change, expected):
    from django.core.management import call_command

    for name, value in change.items():
        if name == "grant_error":
            docusign.grant_error = value
        else:
            setattr(settings, name, value)
    with pytest.raises(SystemExit) as exited:
        call_command("docusign_check")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and expected in out
    assert "docs/docusign.md" in out
