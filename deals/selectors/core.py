"""Core deal reads: visibility and the state graph."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from ..models import Deal, DealState, DealTotal

__all__ = [
    "deal_get_visible",
    "deal_get_workable",
    "deal_totals_visible",
    "deals_visible",
    "state_graph_edges",
    "state_graph_mermaid",
]


def deals_visible(user):
    """Deals `user` may read, not archived."""
    return Deal.objects.visible_to(user).active()


def deal_totals_visible(user):
    """The running totals (DealTotal rows) of the deals `user` may read: the same scope as
    `Deal.objects.visible_to(user)`, for figures over every deal in it."""
    totals = DealTotal.objects.order_by()
    if not user.is_authenticated:
        return totals.none()
    if user.is_superuser:
        return totals
    team_wide = user.is_manager or (user.team_id and user.team.reps_see_team_deals)
    if user.team_id and team_wide:
        return totals.filter(team_id=user.team_id)
    return totals.filter(owner=user)


def deal_get_visible(user, pk) -> Deal:
    """The deal if `user` may read it; 404 otherwise (no hint that it exists)."""
    return get_object_or_404(deals_visible(user).select_related("account", "owner", "team"), pk=pk)


def deal_get_workable(user, pk) -> Deal:
    return get_object_or_404(
        Deal.objects.workable_by(user).active().select_related("account", "owner", "team"), pk=pk
    )


def state_graph_edges() -> list[tuple[str, str, str]]:
    """(source, target, transition name) for every edge the model declares."""
    field = Deal._meta.get_field("state")
    edges = {
        (t.source, t.target, t.name)
        for t in field.get_all_transitions(Deal)
        if t.source not in ("*", "+") and t.target
    }
    order = {s: i for i, s in enumerate(DealState.values)}
    return sorted(edges, key=lambda e: (order[e[0]], order[e[1]], e[2]))


def state_graph_mermaid() -> str:
    """The deal state machine as a Mermaid state diagram, read from the model itself."""
    lines = ["stateDiagram-v2", f"    [*] --> {DealState.INTENT_SPOTTED}"]
    for source, target, name in state_graph_edges():
        lines.append(f"    {source} --> {target}: {name}")
    lines.append(f"    {DealState.CLOSED_WON} --> [*]")
    return "\n".join(lines)
