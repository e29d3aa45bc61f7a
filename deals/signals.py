"""Signals the deals app sends for other apps to react to (deals never imports their services).

Every signal is sent inside the transaction that made the change, so receivers make their
own database writes atomically with it (the follow-up app cancels reminders of a closed
deal; the contracts app voids what is still out for signature). Receivers with outside
effects must defer them with `transaction.on_commit`.
"""

from django.dispatch import Signal

# The deal's state changed. kwargs: deal, event (DealEvent), by (User or None)
deal_state_changed = Signal()
# The deal was archived (it keeps its state but leaves every list). kwargs: deal, by
deal_archived = Signal()
# A give-get concession was accepted and the deal's terms changed with it.
# kwargs: deal, concession, by
concession_accepted = Signal()

# The deal got a new owner. kwargs: deal, previous_owner (User), by (User or None).
# Sent by the service that reassigns deals (the notifications app tells the new owner).
deal_reassigned = Signal()
