"""Every write of the notifications app: notify, read, email, digest, stalled deals.

`notify` is called inside the transaction of the event that causes it (by the receivers in
`receivers.py`, or directly by another app's service): the notification commits or rolls
back with its event. Its `key` names that event, so running the event's code again (a
retried task, a webhook delivered twice) finds the row instead of adding a second one.
Email leaves through Celery after commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from deals.addressing import mail_domain
from deals.models import OPEN_STATES, Deal, User, in_sentence, language_of

from .models import (
    DEFAULT_DELIVERY,
    Delivery,
    DigestSent,
    Kind,
    Notification,
    NotificationPreference,
)

log = logging.getLogger(__name__)


class NotificationError(Exception):
    """A refused change; the message is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- preferences -----------------------------------------------------------------


def delivery_for(*, user: User, kind: str) -> str:
    chosen = (
        NotificationPreference.objects.filter(user=user, kind=kind)
        .values_list("delivery", flat=True)
        .first()
    )
    return chosen or DEFAULT_DELIVERY.get(kind, Delivery.IN_APP)


def preferences_for(user: User) -> dict[str, str]:
    """Every kind with the delivery that applies to `user` (their choice or the default)."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("kind", "delivery"))
    return {kind: chosen.get(kind, DEFAULT_DELIVERY[kind]) for kind in Kind.values}


@transaction.atomic
def preferences_set(*, user: User, choices: dict[str, str]) -> dict[str, str]:
    """Save `user`'s delivery per kind (all or nothing: an unknown value changes nothing)."""
    for kind, delivery in choices.items():
        if kind not in Kind.values:
            raise NotificationError(
                gettext("“%(kind)s” is not a kind of notification.") % {"kind": kind}
            )
        if delivery not in Delivery.values:
            raise NotificationError(
                gettext("“%(delivery)s” is not a way to deliver notifications.")
                % {"delivery": delivery}
            )
    for kind, delivery in choices.items():
        NotificationPreference.objects.update_or_create(
            user=user, kind=kind, defaults={"delivery": delivery}
        )
    return preferences_for(user)


# --- notify ------------------------------------------------------------------------


def notify(
    *,
    recipient: User | None,
    kind: str,
    text: str,
    key: str,
    deal: Deal | None = None,
    link: str = "",
) -> Notification | None:
    """Tell `recipient` about one event, once (per `key`), the way they chose for `kind`.

    Call it inside the transaction of the causing event. Returns the notification (the
    existing one when the event already notified), or None when there is nobody to tell
    or the recipient turned the kind off. Email ("at once") is sent after commit.
    """
    if kind not in Kind.values:
        raise NotificationError(
            gettext("“%(kind)s” is not a kind of notification.") % {"kind": kind}
        )
    if recipient is None or not recipient.is_active:
        return None
    if callable(text):
        # Stored text: written once, in the recipient's language (not the actor's).
        with translation.override(language_of(recipient)):
            text = str(text())
    delivery = delivery_for(user=recipient, kind=kind)
    if delivery == Delivery.OFF:
        return None
    if not link and deal is not None:
        link = deal.get_absolute_url()
    with transaction.atomic():
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    recipient=recipient,
                    deal=deal,
                    kind=kind,
                    text=text[:300],
                    link=link[:300],
                    key=key[:200],
                    delivery=delivery,
                )
        except IntegrityError:
            return Notification.objects.filter(recipient=recipient, key=key[:200]).first()
        if delivery == Delivery.EMAIL and recipient.email:
            _enqueue_email(notification.pk)
    return notification


def _enqueue_email(notification_id: int) -> None:
    from . import tasks

    def enqueue() -> None:
        try:
            tasks.send_notification_email.delay(notification_id)
        except Exception:  # broker down: the row is there; it shows in the app all the same
            log.exception("Could not enqueue the email of notification %s", notification_id)

    transaction.on_commit(enqueue)


# --- reading -----------------------------------------------------------------------


@transaction.atomic
def notification_mark_read(*, notification: Notification, by: User) -> Notification:
    if notification.recipient_id != by.pk:
        raise NotificationError(gettext("This notification is someone else's."))
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


# --- email ---------------------------------------------------------------------------


def _absolute(link: str) -> str:
    return link if link.startswith("http") else settings.SITE_URL + link


def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification ("email at once"); a second run sends nothing.

    The Message-ID is fixed per notification, so a send repeated after a crash between
    sending and recording is the same message (mail systems de-duplicate it).
    """
    notification = (
        Notification.objects.select_related("recipient", "deal").filter(pk=notification_id).first()
    )
    if notification is None or notification.emailed_at or not notification.recipient.email:
        return False
    recipient = notification.recipient
    with translation.override(language_of(recipient)):
        return _notification_email_send(notification, recipient)


def _notification_email_send(notification: Notification, recipient: User) -> bool:
    body = (
        gettext("Hello %(name)s,") % {"name": recipient.first_name or recipient.username}
        + f"\n\n{notification.text}\n\n"
        + (
            gettext("Open it: %(link)s") % {"link": _absolute(notification.link)} + "\n\n"
            if notification.link
            else ""
        )
        + gettext(
            "You get this email because “%(kind)s” is set to email at once. Change it here: %(url)s"
        )
        % {
            "kind": notification.get_kind_display(),
            "url": f"{settings.SITE_URL}/notifications/preferences/",
        }
        + "\n"
    )
    EmailMessage(
        # One line: a title saved before line breaks were refused must not break the header.
        subject=" ".join(
            f"{notification.get_kind_display()}: {notification.deal or notification.text}".split()
        )[:200],
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={"Message-ID": f"<notification-{notification.pk}@{mail_domain()}>"},
    ).send()
    Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    return True


# --- the daily digest ---------------------------------------------------------------


def _zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def digest_prepare(*, user: User, now: dt.datetime) -> DigestSent | None:
    """Gather `user`'s digest notifications up to today's digest hour (their time) into one
    digest, once per local day; None before the hour, with nothing to send, or when done."""
    local = now.astimezone(_zone(user))
    if local.hour < settings.NOTIFICATIONS_DIGEST_HOUR:
        return None
    day = local.date()
    cutoff = dt.datetime.combine(
        day, dt.time(settings.NOTIFICATIONS_DIGEST_HOUR), tzinfo=_zone(user)
    )
    with transaction.atomic():
        due = Notification.objects.select_for_update().filter(
            recipient=user,
            delivery=Delivery.DIGEST,
            digested_at__isnull=True,
            created_at__lt=cutoff,
        )
        ids = list(due.values_list("pk", flat=True))
        if not ids:
            return None
        try:
            with transaction.atomic():
                digest = DigestSent.objects.create(recipient=user, day=day, count=len(ids))
        except IntegrityError:
            return None  # today's digest is out already; these wait for tomorrow's
        Notification.objects.filter(pk__in=ids).update(digested_at=now, digest=digest)
    return digest


def digest_email_send(*, digest_id: int) -> bool:
    """Email a prepared digest, grouped by deal; a second run sends nothing."""
    digest = DigestSent.objects.select_related("recipient").get(pk=digest_id)
    user = digest.recipient
    if digest.emailed_at or not user.email:
        return False
    with translation.override(language_of(user)):
        return _digest_email_send(digest, user)


def _digest_email_send(digest: DigestSent, user: User) -> bool:
    items = list(digest.items.select_related("deal").order_by("deal_id", "created_at", "pk"))
    by_deal: dict[str, list[Notification]] = defaultdict(list)
    for item in items:
        by_deal[item.deal.title if item.deal else gettext("Other")].append(item)
    zone = _zone(user)
    lines = [
        gettext("Hello %(name)s,") % {"name": user.first_name or user.username},
        "",
        ngettext(
            "What happened on your deals up to %(day)s %(hour)s (%(count)s update):",
            "What happened on your deals up to %(day)s %(hour)s (%(count)s updates):",
            len(items),
        )
        % {
            "day": date_format(digest.day, "l j F"),
            "hour": f"{settings.NOTIFICATIONS_DIGEST_HOUR:02d}:00",
            "count": len(items),
        },
    ]
    for title, group in by_deal.items():
        lines += ["", title]
        link = group[0].link
        for item in group:
            when = timezone.localtime(item.created_at, zone)
            stamp = date_format(when, "D H:i")
            lines.append(f"  - {stamp} {item.get_kind_display()}: {item.text}")
        if link:
            lines.append(f"  {_absolute(link)}")
    lines += [
        "",
        gettext("Choose what reaches you and how: %(url)s")
        % {"url": f"{settings.SITE_URL}/notifications/preferences/"},
    ]
    EmailMessage(
        subject=ngettext(
            "Your deals on %(day)s: %(count)s update",
            "Your deals on %(day)s: %(count)s updates",
            len(items),
        )
        % {"day": date_format(digest.day, "j F"), "count": len(items)},
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Message-ID": f"<digest-{digest.pk}@{mail_domain()}>"},
    ).send()
    DigestSent.objects.filter(pk=digest.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    return True


def digests_send_due(*, now: dt.datetime | None = None) -> int:
    """Beat: every user whose digest hour has come gets today's digest (once)."""
    now = now or timezone.now()
    user_ids = (
        Notification.objects.filter(delivery=Delivery.DIGEST, digested_at__isnull=True)
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    sent = 0
    for user in User.objects.filter(pk__in=list(user_ids), is_active=True):
        digest = digest_prepare(user=user, now=now)
        if digest is not None and digest_email_send(digest_id=digest.pk):
            sent += 1
    # Digests prepared by a run that died before its email went out.
    for digest_id in DigestSent.objects.filter(emailed_at__isnull=True).values_list(
        "pk", flat=True
    )[:500]:
        if digest_email_send(digest_id=digest_id):
            sent += 1
    return sent


# --- stalled deals ---------------------------------------------------------------------


def stalled_deals_notify(*, now: dt.datetime | None = None) -> int:
    """Tell each owner once per stall: the key is the deal's last activity, so the same
    stall never notifies twice and a deal that moves and stalls again notifies again."""
    from deals.selectors.workspace import stall_thresholds

    now = now or timezone.now()
    created = 0
    for state, days in stall_thresholds().items():
        if state not in OPEN_STATES or not days:
            continue
        stalled = list(
            Deal.objects.active()
            .filter(state=state, last_activity_at__lt=now - dt.timedelta(days=days))
            .select_related("owner")
        )
        keys = {
            deal.pk: f"stalled:{deal.pk}:{deal.last_activity_at:%Y%m%dT%H%M%S.%f}"
            for deal in stalled
        }
        known = set(
            Notification.objects.filter(key__in=list(keys.values())).values_list("key", flat=True)
        )
        for deal in stalled:
            if keys[deal.pk] in known:
                continue
            with transaction.atomic():
                if notify(
                    recipient=deal.owner,
                    kind=Kind.DEAL_STALLED,
                    deal=deal,
                    key=keys[deal.pk],
                    text=functools.partial(_stalled_text, deal, (now - deal.last_activity_at).days),
                ):
                    created += 1
    return created


def _stalled_text(deal: Deal, days: int) -> str:
    return ngettext(
        "“%(deal)s” has had no activity for %(days)s day in %(state)s.",
        "“%(deal)s” has had no activity for %(days)s days in %(state)s.",
        days,
    ) % {"deal": deal.title, "days": days, "state": in_sentence(deal.get_state_display())}
