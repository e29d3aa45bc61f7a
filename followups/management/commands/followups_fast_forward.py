"""Demo: make follow-ups due `--days` earlier, and optionally dispatch them right away."""

from django.core.management.base import BaseCommand, CommandError

from deals.models import Deal
from deals.services import DealError
from followups import services


class Command(BaseCommand):
    help = (
        "Pull scheduled follow-ups N days earlier (ignoring working hours) so the running "
        "worker sends those now due at its next tick. --now enqueues a tick immediately."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=1.0, help="How many days to skip.")
        parser.add_argument("--deal", type=int, help="Only this deal's follow-ups (its id).")
        parser.add_argument(
            "--now", action="store_true", help="Enqueue a dispatcher tick instead of waiting."
        )

    def handle(self, *args, days: float, deal: int | None, now: bool, **options):
        target = None
        if deal is not None:
            target = Deal.objects.filter(pk=deal).first()
            if target is None:
                raise CommandError(f"No deal with id {deal}.")
        try:
            moved = services.reminders_fast_forward(days=days, deal=target)
        except DealError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{moved} scheduled follow-up(s) moved {days:g} day(s) earlier.")
        if now:
            from followups.tasks import dispatch_due_reminders

            dispatch_due_reminders.delay()
            self.stdout.write("Dispatcher tick enqueued: the worker sends what is due now.")
        else:
            self.stdout.write("Beat's next tick (within a minute) sends what is due.")
