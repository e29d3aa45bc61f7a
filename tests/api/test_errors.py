"""Errors under /api/: one JSON shape, documented in the schema, for every way a request fails."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient

from api import exceptions as api_exceptions
from deals.models import Deal

DEALS = "/api/v1/deals/"


def _is_error(body: dict, code: str) -> bool:
    return isinstance(body.get("detail"), str) and body["detail"] and body.get("code") == code


# --- JSON everywhere under /api/ ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/deals/abc/",
        "/api/v1/deals/null%2Cnull/asks/",
        "/api/v1/deals/1/contracts/%C2%84/",
        "/api/v1/accounts/-1/",
        "/api/v2/deals/",
    ],
)
def test_a_malformed_id_under_api_is_a_json_404(rep, api_client, path):
    """A URL under /api/ that matches no route answers the JSON error body, not an HTML page."""
    response = api_client(rep).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert _is_error(response.json(), "not_found")


def test_pages_outside_the_api_keep_their_html_404(client, rep):
    """The JSON error pages are for /api/ only: the site's own 404 is still a page."""
    client.force_login(rep)
    response = client.get("/deals/not-a-number/nothing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_server_errors_under_api_are_json():
    """The 500 handler answers JSON under /api/ and the HTML page elsewhere."""
    factory = RequestFactory()
    response = api_exceptions.server_error(factory.get("/api/v1/deals/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert b'"code": "server_error"' in response.content
    page = api_exceptions.server_error(factory.get("/deals/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@override_settings(DEBUG=False)
def test_without_credentials_the_answer_is_a_json_401(db):
    """No token: 401 with the error body and a WWW-Authenticate challenge."""
    response = APIClient().get(DEALS)
    assert response.status_code == 401
    assert _is_error(response.json(), "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_body_that_is_not_json_is_a_415(rep, deal, api_client):
    """Form bodies are not read: the API takes JSON only, and says so."""
    response = api_client(rep).post(
        f"{DEALS}{deal.pk}/notes/", "text=hello", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert _is_error(response.json(), "unsupported_media_type")


# --- validation errors: fields, named -------------------------------------------------------


def test_field_errors_come_in_the_error_body(rep, deal, api_client):
    """Field messages sit under `fields` (nested ones dotted), with a summary in `detail`."""
    response = api_client(rep).post(
        f"{DEALS}{deal.pk}/asks/",
        {
            "channel": "call",
            "statement": "Shall we start?",
            "answer": "not_yet",
            "objection": {"category": "weather", "detail": "x"},
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert _is_error(body, "invalid")
    assert list(body["fields"]) == ["objection.category"]
    assert body["detail"].startswith("objection.category: ")


def test_a_field_called_detail_does_not_clash_with_the_message(rep, deal, api_client):
    """An objection's own `detail` field errors under `fields`, never as the body's message."""
    response = api_client(rep).post(f"{DEALS}{deal.pk}/objections/", {"category": "price"})
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["fields"] == {"detail": ["This field is required."]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": 123}, "title"),  # DRF alone would store "123"
        ({"title": "   "}, "title"),  # only spaces: blank once trimmed
        ({"title": "\x85\u3000"}, "title"),  # Unicode spaces are trimmed too
        ({"title": "a\x00b"}, "title"),
        ({"next_step": "x" * 200 + " "}, "next_step"),  # the limit counts what is sent
        ({"amount": 15000}, "amount"),  # amounts are strings, as in responses
        ({"amount": "1e5"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"term_months": "12"}, "term_months"),
        ({"term_months": True}, "term_months"),
        ({"expected_close_date": 20270101}, "expected_close_date"),
    ],
)
def test_values_must_have_the_documented_json_type(rep, deal, api_client, payload, field):
    """A value of another JSON type or form than the schema's is a 400 naming the field."""
    response = api_client(rep).patch(f"{DEALS}{deal.pk}/", payload)
    assert response.status_code == 400, response.json()
    assert list(response.json()["fields"]) == [field]
    assert Deal.objects.get(pk=deal.pk).title == deal.title


def test_booleans_are_true_or_false(rep, deal, api_client):
    """`1` is not a boolean: a generated client sends true or false."""
    client = api_client(rep)
    response = client.post(f"{DEALS}{deal.pk}/readiness/", {"ready_needs_understood": 1})
    assert response.status_code == 400
    assert response.json()["fields"] == {"ready_needs_understood": ["Must be true or false."]}
    response = client.post(f"{DEALS}{deal.pk}/readiness/", {"ready_needs_understood": True})
    assert response.status_code == 200


def test_an_id_in_the_body_you_cannot_see_is_a_404(rep, other_rep, deal, api_client):
    """An unknown or other team's contact in the body is the same 404 as in the path."""
    from deals import services

    foreign = services.account_create(by=other_rep, team=other_rep.team, name="Foreign")
    theirs = services.contact_create(
        by=other_rep, account=foreign, first_name="Ann", last_name="Other"
    )
    client = api_client(rep)
    for contact_id in (theirs.pk, 987654):
        response = client.post(
            f"{DEALS}{deal.pk}/stakeholders/", {"contact": contact_id, "role": "signer"}
        )
        assert response.status_code == 404
        assert _is_error(response.json(), "not_found")
        assert list(response.json()["fields"]) == ["contact"]


# --- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page_size=null",
        "page_size=0",
        "page_size=201",
        "page_size=-1",
        "page_size=1.5",
        "page_size=",
        "page_size=5&page_size=6",
    ],
)
def test_a_bad_page_size_is_refused(rep, deal, api_client, query):
    """page_size is a whole number from 1 to 200, given once; anything else is a 400."""
    response = api_client(rep).get(f"{DEALS}?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["page_size"]


def test_a_good_page_size_is_used(rep, make_deal, api_client):
    """page_size=1 gives one deal and a link to the next page."""
    make_deal(title="One")
    make_deal(title="Two")
    body = api_client(rep).get(f"{DEALS}?page_size=1").json()
    assert len(body["results"]) == 1 and body["next"]


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", base64.b64encode(b"p=abc").decode(), base64.b64encode(b"o=x&r=1").decode()],
)
def test_a_cursor_the_api_did_not_give_is_a_404(rep, deal, api_client, cursor):
    """A forged cursor (even one that decodes) is a JSON 404, never a server error."""
    response = api_client(rep).get(DEALS, {"cursor": cursor})
    assert response.status_code == 404
    assert _is_error(response.json(), "invalid_cursor")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=", "state"),
        ("state=open&state=closed", "state"),
        ("team=0", "team"),
        ("account=abc", "account"),
        ("account=%205", "account"),
        ("owner=me%0A", "owner"),
        ("close=2026-1", "close"),
    ],
)
def test_bad_filters_are_refused(rep, deal, api_client, query, field):
    """A deal-list filter outside its documented form is a 400 naming it."""
    response = api_client(rep).get(f"{DEALS}?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


def test_a_blank_text_search_is_no_filter(rep, deal, api_client):
    """`q=` (blank) filters nothing, as the schema's blank alternative says."""
    body = api_client(rep).get(f"{DEALS}?q=").json()
    assert [d["id"] for d in body["results"]] == [deal.pk]


# --- business refusals -----------------------------------------------------------------------


def test_a_refusal_by_the_rules_is_a_409(rep, deal, api_client):
    """A well-formed request the deal's rules refuse is a 409, not a 400."""
    response = api_client(rep).post(f"{DEALS}{deal.pk}/follow-ons/", {"title": "x", "need": "y"})
    assert response.status_code == 409
    assert _is_error(response.json(), "refused")


# --- the schema says all of this ------------------------------------------------------------


def _schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def test_every_operation_documents_its_errors_with_the_one_error_body(client):
    """401/403/429 everywhere, 404 on lookups, 400 on input, 409 on writes: all `Error`."""
    schema = _schema(client)
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            codes = {code for code in responses if code.startswith("4")}
            assert {"401", "403", "429"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if method in {"post", "patch", "delete"}:
                assert "409" in codes, (method, path)
            if operation.get("parameters") and any(
                p["in"] == "query" for p in operation["parameters"]
            ):
                assert "400" in codes, (method, path)
            for code in codes:
                assert responses[code]["content"] == {"application/json": {"schema": error}}
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}


def test_the_schema_allows_the_blanks_and_nulls_the_api_returns(client):
    """Stored blanks and nulls are documented: "" beside enums, null actors, blank emails."""
    components = _schema(client)["components"]["schemas"]
    blank = {"$ref": "#/components/schemas/BlankEnum"}
    for component, field in [
        ("Deal", "closing_technique"),
        ("Deal", "loss_reason"),
        ("DealEvent", "from_state"),
        ("Ask", "technique"),
    ]:
        assert blank in components[component]["properties"][field]["oneOf"], (component, field)
    assert components["DealEvent"]["properties"]["actor"]["nullable"] is True
    assert {"type": "string", "maxLength": 0} in components["Contact"]["properties"]["email"][
        "oneOf"
    ]


def test_text_the_api_trims_to_nothing_is_outside_the_documented_pattern(client):
    """Every character the API trims away leaves a required text schema-invalid, alone."""
    title = _schema(client)["components"]["schemas"]["DealCreateRequest"]["properties"]["title"]
    pattern = re.compile(title["pattern"])
    spaces = [c for c in map(chr, range(0x10000)) if c.isspace()]
    assert not [c for c in spaces if pattern.fullmatch(c * 2)]
    assert pattern.fullmatch(" Rollout ") and not pattern.fullmatch("Roll\x00out")


def test_the_schema_documents_the_query_rules(client):
    """page_size has its bounds; the deal filters carry their bounds, patterns and enums."""
    schema = _schema(client)
    parameters = {p["name"]: p["schema"] for p in schema["paths"][DEALS]["get"]["parameters"]}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert parameters["team"]["minimum"] == 1
    assert parameters["owner"]["pattern"] == "^(me|[0-9]{1,12})$"
    assert "" not in parameters["state"]["enum"]


def test_a_discount_above_100_percent_is_outside_the_schema_and_refused(rep, deal, api_client):
    """The schema states the 0–100 bound the model enforces, so a generated client never
    sends a schema-valid discount that the API then refuses."""
    from api.serializers import DealEditSerializer
    from api.validation import money_pattern

    pattern = money_pattern(DealEditSerializer().fields["discount_percent"])
    assert [v for v in ["0", "12.5", "100", "100.00"] if not re.fullmatch(pattern, v)] == []
    assert [v for v in ["100.01", "101", "475", "-1"] if re.fullmatch(pattern, v)] == []
    response = api_client(rep).patch(
        f"/api/v1/deals/{deal.pk}/", {"discount_percent": "475"}, format="json"
    )
    assert response.status_code == 400
    assert "discount_percent" in response.json()["fields"]
