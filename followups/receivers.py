"""Signal receivers: other apps' events start and stop cadences. They only call services.

Both signals are sent inside the sender's transaction, so the reminders commit (or roll
back) together with the contract or state change.
"""

from __future__ import annotations

from . import services


def start_cadence(sender, *, version, by=None, **kwargs) -> None:
    services.reminders_start(version=version, by=by)


def cancel_for_version(sender, *, version, reason="", **kwargs) -> None:
    services.reminders_cancel_for_version(version=version, reason=reason)


def cancel_when_closed(sender, *, deal, by=None, **kwargs) -> None:
    services.on_deal_state_changed(deal=deal, by=by)


def close_send_tasks(sender, *, version, **kwargs) -> None:
    services.rep_tasks_close_sent(version=version)


def task_send_revision(sender, *, version, by=None, **kwargs) -> None:
    services.rep_task_send_revision(version=version, by=by)


def tasks_late_signature(sender, *, version, **kwargs) -> None:
    services.rep_tasks_late_signature(version=version)


def cancel_when_archived(sender, *, deal, by=None, **kwargs) -> None:
    services.on_deal_archived(deal=deal, by=by)
