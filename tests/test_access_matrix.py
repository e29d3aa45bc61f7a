"""Who reaches what: every user-facing URL × every kind of user → the expected status, never 500.

Covers the deals app (workspace, deal page, dashboards, imports) and the rep-facing URLs of
contracts and follow-ups.

The deal, its account and contact belong to Rita (a rep of Team North). Tim is her teammate
(his team lets reps read each other's deals), Mona manages Team North, Otto is a rep of another
team, and root is an admin. Another team's records are 404 (no hint that they exist); records a
user can read but not change are 403 on their edit pages and write endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import NoReverseMatch, get_resolver, reverse
from django.utils import timezone

from deals import services

ROLES = ["anonymous", "owner", "teammate", "other_team_rep", "manager", "admin"]

OK, REDIRECT, FORBIDDEN, NOT_FOUND, BAD = 200, 302, 403, 404, 400


@dataclass(frozen=True)
class Case:
    name: str  # URL name
    args: tuple = ()  # names of objects from the world ("deal", "account", ...) or literals
    method: str = "get"
    data: dict | None = None
    query: str = ""
    #: role -> expected status; roles not listed must simply not get a 500.
    expect: dict | None = None

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}{'?' + self.query if self.query else ''}"


def everyone(status: int, **overrides) -> dict:
    """Anonymous → login redirect; every signed-in role → `status` unless overridden."""
    return {"anonymous": REDIRECT, **dict.fromkeys(ROLES[1:], status), **overrides}


def owned(
    *, reader: int = OK, owner: int = OK, manager: int | None = None, admin: int | None = None
):
    """A record of Rita's: the owner and readers see it, the other team gets 404.

    The team's manager and admins get what the owner gets unless said otherwise.
    """
    return {
        "anonymous": REDIRECT,
        "owner": owner,
        "teammate": reader,
        "other_team_rep": NOT_FOUND,
        "manager": owner if manager is None else manager,
        "admin": owner if admin is None else admin,
    }


def hidden() -> dict:
    """Another team's records are 404; the other roles must simply not get a server error."""
    return {"anonymous": REDIRECT, "other_team_rep": NOT_FOUND}


CASES = [
    # --- workspace (this module's owner) ---
    Case("home", expect=everyone(OK)),
    Case("home", query="mine=1", expect=everyone(OK)),
    Case("deals:board", expect=everyone(OK)),
    Case("deals:board", query="owner=me&close=2030-01&team=1", expect=everyone(OK)),
    Case("deals:board_moves", ("deal",), expect=owned()),
    Case("deals:board_moves", (999999,), expect=everyone(NOT_FOUND)),
    Case("deals:deal_list", expect=everyone(OK)),
    Case("deals:deal_list", query="state=open&sort=-amount&page=9", expect=everyone(OK)),
    Case("deals:search", query="q=acme", expect=everyone(OK)),
    Case("deals:deal_create", expect=everyone(OK)),
    Case("deals:deal_edit", ("deal",), expect=owned(reader=FORBIDDEN)),
    Case(
        "deals:deal_edit",
        ("deal",),
        method="post",
        data={"title": "Hijacked", "amount": "1", "currency": "EUR"},
        expect=owned(reader=FORBIDDEN),
    ),
    # Admins have no team of their own: they create accounts in the admin.
    Case("deals:account_create", expect=everyone(OK, admin=FORBIDDEN)),
    Case("deals:account_detail", ("account",), expect=owned()),
    Case("deals:account_detail", (999999,), expect=everyone(NOT_FOUND)),
    Case("deals:account_edit", ("account",), expect=owned(reader=FORBIDDEN)),
    Case(
        "deals:account_edit",
        ("account",),
        method="post",
        data={"name": ""},
        expect=owned(reader=FORBIDDEN),
    ),
    Case("deals:contact_create", expect=everyone(OK)),
    Case("deals:contact_create", query="account={account}", expect=everyone(OK)),
    Case("deals:contact_detail", ("contact",), expect=owned()),
    Case("deals:contact_edit", ("contact",), expect=owned(reader=FORBIDDEN)),
    # --- the deal page and its endpoints ---
    Case("deals:deal_detail", ("deal",), expect=owned()),
    Case("deals:deal_detail", (999999,), expect=everyone(NOT_FOUND)),
    Case("deals:deal_timeline", ("deal",), query="before=1", expect=owned()),
    Case("deals:deal_timeline", ("deal",), query="before=x", expect=owned(reader=BAD, owner=BAD)),
    Case("deals:state_machine", expect=everyone(OK)),
    Case("deals:deal_transition", ("deal", "mark_lost"), expect=owned(reader=FORBIDDEN)),
    # Asking is made by recording a numbered ask: the move endpoint refuses (409) and
    # points at that step; a reader is still refused first for lack of permission.
    Case("deals:deal_transition", ("deal", "ask"), expect=owned(reader=FORBIDDEN, owner=409)),
    Case(
        "deals:deal_transition",
        ("deal", "override_won"),
        expect=owned(reader=FORBIDDEN, owner=FORBIDDEN, manager=OK, admin=OK),
    ),
    Case(
        "deals:deal_transition",
        ("deal", "no_such_move"),
        expect=owned(reader=NOT_FOUND, owner=NOT_FOUND),
    ),
    Case(
        "deals:deal_transition",
        ("deal", "ask"),
        method="post",
        data={"expected_state": "intent_spotted"},
        expect=owned(reader=FORBIDDEN, owner=409),
    ),
    Case(
        "deals:deal_transition",
        ("deal", "mark_lost"),
        method="post",
        data={"expected_state": "intent_spotted"},
        expect=owned(reader=BAD, owner=BAD),  # no loss reason: refused, nothing changes
    ),
    Case(
        "deals:deal_archive",
        ("deal",),
        method="post",
        data={"reason": "Duplicate"},
        expect=owned(reader=FORBIDDEN, owner=REDIRECT),
    ),
    # Changing the owner is for the team's manager and admins; an empty form is a 400.
    Case(
        "deals:deal_reassign",
        ("deal",),
        method="post",
        data={"new_owner": "", "reason": ""},
        expect=owned(reader=FORBIDDEN, owner=FORBIDDEN, manager=BAD, admin=BAD),
    ),
    Case(
        "deals:deals_bulk",
        method="post",
        data={"action": "reassign", "new_owner": "", "reason": ""},
        expect=everyone(FORBIDDEN, manager=REDIRECT, admin=REDIRECT),
    ),
    # Bulk archive of ids the user cannot see: refused per deal on the job page, never a 500.
    Case(
        "deals:deals_bulk",
        method="post",
        data={"action": "archive", "deal": ["999999"]},
        expect=everyone(REDIRECT),
    ),
    Case("deals:bulk_job", (999999,), expect=everyone(NOT_FOUND)),
    Case("deals:bulk_job_resume", (999999,), method="post", expect=everyone(NOT_FOUND)),
    # Saved views: anyone may save and manage their own; another's view is a 404.
    Case("deals:saved_views", expect=everyone(OK)),
    Case(
        "deals:saved_view_create",
        method="post",
        data={"page": "deal_list", "name": "Mine", "query": "state=open"},
        expect=everyone(REDIRECT),
    ),
    Case(
        "deals:saved_view_change",
        (999999,),
        method="post",
        data={"op": "delete"},
        expect=everyone(NOT_FOUND),
    ),
    Case(
        "deals:deal_note_add",
        ("deal",),
        method="post",
        data={"text": "Spoke to the CFO."},
        expect=owned(reader=FORBIDDEN, owner=REDIRECT),
    ),
    Case(
        "deals:deal_signal_add",
        ("deal",),
        method="post",
        data={"kind": "pricing", "channel": "call", "note": "Asked about annual billing."},
        expect=owned(reader=FORBIDDEN, owner=REDIRECT),
    ),
    Case(
        "deals:deal_next_step_update",
        ("deal",),
        method="post",
        data={"next_step": "Send the deck", "next_step_due": "2031-01-10"},
        expect=owned(reader=FORBIDDEN, owner=REDIRECT),
    ),
    Case("deals:deal_technique_choose", ("deal",), method="post", data={}, expect=hidden()),
    Case(
        "deals:deal_readiness_set",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=FORBIDDEN, owner=REDIRECT),
    ),
    Case(
        "deals:deal_ask_record",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=BAD, owner=BAD),
    ),
    Case(
        "deals:deal_objection_add",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=BAD, owner=BAD),
    ),
    Case(
        "deals:deal_concession_add",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=BAD, owner=BAD),
    ),
    Case(
        "deals:deal_stakeholder_add",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=BAD, owner=BAD),
    ),
    Case(
        "deals:deal_follow_on_create",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=BAD, owner=BAD),
    ),
    Case("deals:deal_objection_resolve", ("deal", 999999), method="post", data={}),
    Case("deals:deal_concession_decide", ("deal", 999999), method="post", data={}),
    Case("deals:deal_stakeholder_remove", ("deal", 999999), method="post", data={}),
    Case("deals:deal_onboarding_complete", ("deal", 999999), method="post", data={}),
    # --- dashboards and imports (scoped to what each user may see) ---
    Case("pipeline:dashboard", expect=everyone(OK)),
    Case("pipeline:coaching", expect=everyone(OK)),
    Case("pipeline:dashboard_deals", query="state=intent_spotted", expect=everyone(OK)),
    Case("pipeline:dashboard_csv", ("pipeline",), expect=everyone(OK)),
    Case("pipeline:dashboard_csv", ("no-such-figure",), expect=everyone(NOT_FOUND)),
    Case("deals:deal_list_csv", query="state=open", expect=everyone(OK)),
    Case(
        "deals:import",
        expect=everyone(FORBIDDEN, manager=OK, admin=OK),
    ),
    Case("deals:import_job", ("no-such-job",)),
    # --- quotas: the team's manager and admins; reps get 403, other teams and periods 404 ---
    Case("deals:quotas", expect=everyone(FORBIDDEN, manager=OK, admin=OK)),
    Case("deals:quotas", query="period=2026-03", expect=everyone(FORBIDDEN, manager=OK, admin=OK)),
    Case(
        "deals:quotas",
        query="period=someday",
        expect=everyone(FORBIDDEN, manager=NOT_FOUND, admin=NOT_FOUND),
    ),
    Case(
        "deals:quotas",
        query="team=999999",
        expect=everyone(FORBIDDEN, manager=NOT_FOUND, admin=NOT_FOUND),
    ),
    Case("deals:import_errors_csv", ("no-such-job",), expect=everyone(NOT_FOUND)),
    # --- audit export: a deal's history for its readers, the whole log for admins ---
    Case("deals:deal_audit_export", ("deal", "csv"), expect=owned()),
    Case("deals:deal_audit_export", ("deal", "json"), expect=owned()),
    Case("deals:deal_audit_export", (999999, "csv"), expect=everyone(NOT_FOUND)),
    Case(
        "deals:audit_export",
        ("csv",),
        query="start=2026-01-01&end=2026-12-31",
        expect=everyone(FORBIDDEN, admin=OK),
    ),
    Case(
        "deals:audit_export",
        ("json",),
        query="start=2026-01-01&end=2026-12-31",
        expect=everyone(FORBIDDEN, admin=OK),
    ),
    Case(
        "deals:audit_export", ("json",), query="start=nope", expect=everyone(FORBIDDEN, admin=BAD)
    ),
    Case("deals:import_start", ("no-such-job",), method="post", data={}),
    # --- contracts (rep-facing) ---
    Case("contracts:preview", ("version",), expect=hidden()),
    Case("contracts:document_html", ("version",), expect=hidden()),
    Case("contracts:pdf", ("version",), expect=hidden()),
    Case("contracts:signed_pdf", ("version",), expect=hidden()),
    Case("contracts:generate", ("deal",), method="post", data={}, expect=hidden()),
    Case("contracts:send", ("version",), method="post", data={}, expect=hidden()),
    Case("contracts:resend", ("version",), method="post", data={}, expect=hidden()),
    Case("contracts:void", ("version",), method="post", data={}, expect=hidden()),
    Case("contracts:signing_view", ("version",), method="post", data={}, expect=hidden()),
    Case(
        "contracts:late_signature_accept",
        ("deal", "version"),
        method="post",
        data={"reason": "x"},
        expect=hidden(),
    ),
    Case("contracts:signing_return", ("version",), query="event=cancel", expect=hidden()),
    # Verify a PDF: any signed-in user; it shows a deal only to who may see it.
    Case("contracts:verify", expect=everyone(OK)),
    # --- the buyer's signing pages: no login; a forged token is refused, for anyone ---
    Case("contracts_public:sign", ("forged-token",), expect=dict.fromkeys(ROLES, FORBIDDEN)),
    Case("contracts_public:document", ("forged-token",), expect=dict.fromkeys(ROLES, FORBIDDEN)),
    Case("contracts_public:pdf", ("forged-token",), expect=dict.fromkeys(ROLES, FORBIDDEN)),
    Case(
        "contracts_public:submit",
        ("forged-token",),
        method="post",
        data={},
        expect=dict.fromkeys(ROLES, FORBIDDEN),
    ),
    Case(
        "contracts_public:decline",
        ("forged-token",),
        method="post",
        data={},
        expect=dict.fromkeys(ROLES, FORBIDDEN),
    ),
    # --- follow-ups ---
    Case("followups:task_complete", ("task",), method="post", data={}, expect=hidden()),
    Case("followups:review_meeting", ("deal",), method="post", data={}, expect=hidden()),
    Case("followups:deal_email", ("deal",), expect=owned(reader=FORBIDDEN)),
    Case(
        "followups:deal_email",
        ("deal",),
        method="post",
        data={},
        expect=owned(owner=BAD, reader=FORBIDDEN),
    ),
    Case("followups:deal_email", (999999,), expect=everyone(NOT_FOUND)),
    Case("notifications:list", expect=everyone(OK)),
    Case("notifications:preferences", expect=everyone(OK)),
    Case("notifications:bell", expect=everyone(OK, anonymous=286)),
    Case("notifications:read_all", method="post", data={}, expect=everyone(REDIRECT)),
    Case("notifications:open", (999999,), method="post", data={}, expect=everyone(NOT_FOUND)),
    Case("followups:reminder_action", (999999, "skip"), method="post", data={}),
    # --- close plan and buyer room (rooms) ---
    Case("rooms:panel", ("deal",), expect=owned()),
    Case("rooms:panel", (999999,), expect=everyone(NOT_FOUND)),
    Case(
        "rooms:plan_from_template",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=FORBIDDEN, owner=409),  # the world's deal has a plan already
    ),
    Case(
        "rooms:step_add",
        ("deal",),
        method="post",
        data={"title": ""},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case(
        "rooms:step_update",
        ("deal", "step"),
        method="post",
        data={"status": "nope"},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case("rooms:step_update", ("deal", 999999), method="post", data={}, expect=hidden()),
    Case("rooms:step_edit", ("deal", "step"), expect=owned(reader=FORBIDDEN)),
    Case(
        "rooms:step_edit",
        ("deal", "step"),
        method="post",
        data={"title": ""},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case("rooms:step_edit", ("deal", 999999), expect=hidden()),
    Case(
        "rooms:step_move",
        ("deal", "step"),
        method="post",
        data={"direction": "sideways"},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case("rooms:step_move", ("deal", 999999), method="post", data={}, expect=hidden()),
    Case(
        "rooms:link_issue",
        ("deal",),
        method="post",
        data={"contact": "x"},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case(
        "rooms:link_revoke",
        ("deal", "room_link"),
        method="post",
        data={},
        expect={**hidden(), "teammate": FORBIDDEN},
    ),
    Case(
        "rooms:question_answer",
        ("deal", "question"),
        method="post",
        data={"answer": ""},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case(
        "rooms:question_objection",
        ("deal", "question"),
        method="post",
        data={},
        expect={**hidden(), "teammate": FORBIDDEN},
    ),
    Case(
        "rooms:file_share",
        ("deal",),
        method="post",
        data={},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case("rooms:file_download", ("deal", "room_file"), expect=owned()),
    Case("rooms:file_download", ("deal", 999999), expect=everyone(NOT_FOUND)),
    Case(
        "rooms:outcome_add",
        ("deal",),
        method="post",
        data={"text": ""},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case(
        "rooms:need_add",
        ("deal",),
        method="post",
        data={"text": ""},
        expect=owned(reader=FORBIDDEN, owner=BAD),
    ),
    Case(
        "rooms:need_follow_on",
        ("deal", "need"),
        method="post",
        data={},
        expect=owned(reader=FORBIDDEN, owner=BAD),  # the deal is not won
    ),
    # The buyer's room: no login; a forged token is refused for everyone alike.
    *[
        Case(
            f"rooms_public:{name}",
            ("forged-token", *extra),
            method=method,
            data={},
            expect=dict.fromkeys(ROLES, FORBIDDEN),
        )
        for name, extra, method in [
            ("room", (), "get"),
            ("step_tick", (1,), "post"),
            ("question_ask", (), "post"),
            ("file_upload", (), "post"),
            ("file_open", (1,), "get"),
            ("contract", (), "get"),
            ("signed_pdf", (), "get"),
            ("outcome_confirm", (1,), "post"),
        ]
    ],
]


@pytest.fixture
def world(rep, teammate, manager, other_rep, admin_user, account, contact, deal):
    from contracts.models import ContractVersion
    from followups.models import RepTask

    version = ContractVersion.objects.create(deal=deal, number=1, html="<p>Terms</p>")
    task = RepTask.objects.create(
        owner=rep, deal=deal, kind=RepTask.Kind.CALL, title="Call Ann", due_at=timezone.now()
    )
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rooms import services as room_services

    services.stakeholder_add(deal=deal, by=rep, contact=contact, role="signer")
    step = room_services.plan_step_add(deal=deal, by=rep, title="Security review")
    room_link = room_services.room_link_issue(deal=deal, by=rep, contact=contact)
    question = room_services.room_question_ask(link=room_link, text="SSO?")
    room_file = room_services.room_file_share(
        deal=deal, by=rep, upload=SimpleUploadedFile("terms.pdf", b"%PDF-1.4")
    )
    need = room_services.deal_need_add(deal=deal, by=rep, text="Reporting")
    return {
        "step": step,
        "room_link": room_link,
        "question": question,
        "room_file": room_file,
        "need": need,
        "users": {
            "anonymous": None,
            "owner": rep,
            "teammate": teammate,
            "other_team_rep": other_rep,
            "manager": manager,
            "admin": admin_user,
        },
        "deal": deal,
        "account": account,
        "contact": contact,
        "version": version,
        "task": task,
    }


def _url(case: Case, world: dict) -> str:
    args = [world[a].pk if isinstance(a, str) and a in world else a for a in case.args]
    try:
        url = reverse(case.name, args=args)
    except NoReverseMatch:
        pytest.fail(f"{case.name} does not reverse with {args}")
    query = case.query.format(**{k: v.pk for k, v in world.items() if hasattr(v, "pk")})
    return f"{url}?{query}" if query else url


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_access(client, world, case, role):
    """Each kind of user gets the expected status on each URL, and never a server error."""
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    url = _url(case, world)
    response = getattr(client, case.method)(url, case.data or {})
    assert response.status_code < 500, f"{role} {case}: {response.status_code}"
    expected = (case.expect or {}).get(role, REDIRECT if role == "anonymous" else None)
    if role == "anonymous" and expected == REDIRECT:
        assert response.status_code == REDIRECT
        assert response.url.startswith(reverse("login"))
    elif expected is not None:
        assert response.status_code == expected, f"{role} {case}: got {response.status_code}"


@pytest.mark.django_db
def test_private_team_hides_teammates_deals(client, team, teammate, deal):
    """When the team keeps deals private, a teammate's deal is a 404 like any other."""
    team.reps_see_team_deals = False
    team.save()
    client.force_login(teammate)
    assert client.get(reverse("deals:deal_detail", args=[deal.pk])).status_code == NOT_FOUND
    assert client.get(reverse("deals:board_moves", args=[deal.pk])).status_code == NOT_FOUND
    assert client.get(reverse("deals:deal_edit", args=[deal.pk])).status_code == NOT_FOUND


@pytest.mark.django_db
def test_other_teams_account_without_deals_stays_hidden(client, other_rep, rep):
    """An account with no deals is still private to its team."""
    theirs = services.account_create(by=other_rep, team=other_rep.team, name="Hidden Co")
    client.force_login(rep)
    assert client.get(reverse("deals:account_detail", args=[theirs.pk])).status_code == 404


def _url_names(namespace: str) -> set[str]:
    resolver = get_resolver().namespace_dict[namespace][1]
    return {f"{namespace}:{name}" for name in resolver.reverse_dict if isinstance(name, str)}


def test_the_matrix_covers_every_user_facing_url():
    """Every named URL of the deals, pipeline, contracts (incl. signing) and follow-ups apps is
    covered."""
    covered = {case.name for case in CASES}
    public = {"contracts:docusign_webhook"}  # machine-to-machine, signed by DocuSign
    names = set().union(
        *map(
            _url_names,
            [
                "deals",
                "pipeline",
                "contracts",
                "contracts_public",
                "followups",
                "rooms",
                "rooms_public",
            ],
        )
    )
    assert names - covered - public == set()
