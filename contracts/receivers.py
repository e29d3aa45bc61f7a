"""How the contracts app reacts to deal events (deals never calls contracts' services).

Receivers run inside the sender's transaction, so the paperwork settles atomically with
the deal's change; calls to the e-signature provider are deferred to after commit.
"""

from __future__ import annotations

from deals.models import DealState

from . import services


def settle_when_closed(sender, *, deal, event=None, by=None, **kwargs) -> None:
    """Lost or won by a manager's override: nothing may stay out for signature."""
    if deal.state == DealState.CLOSED_LOST:
        services.contracts_settle_for_closed_deal(deal=deal, by=by, why="the deal is lost.")
    elif deal.state == DealState.CLOSED_WON:
        services.contracts_settle_for_closed_deal(deal=deal, by=by, why="the deal is won.")


def settle_when_archived(sender, *, deal, by=None, **kwargs) -> None:
    if deal.state != DealState.CLOSED_WON:
        services.contracts_settle_for_closed_deal(deal=deal, by=by, why="the deal is archived.")


def revise_for_concession(sender, *, deal, concession, by=None, **kwargs) -> None:
    services.contract_revise_for_concession(concession=concession, by=by)
