"""Reads of the notifications app: the bell's count and a user's list."""

from __future__ import annotations

from deals.models import User

from .models import Notification


def unread_count(user: User) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_for(user: User, *, unread_only: bool = False):
    queryset = Notification.objects.filter(recipient=user).select_related("deal")
    if unread_only:
        queryset = queryset.unread()
    return queryset.order_by("-created_at", "-pk")
