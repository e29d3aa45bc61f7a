"""Signals the deals app sends for other apps to react to.

`deal_state_changed` is sent inside the transaction that changed the state, so
receivers can make their own database writes atomically with it (the follow-up
app cancels reminders of a closed deal). Receivers with outside effects must
defer them with `transaction.on_commit`.
"""

from django.dispatch import Signal

# kwargs: deal, event (DealEvent), by (User or None)
deal_state_changed = Signal()

# The deal got a new owner. kwargs: deal, previous_owner (User), by (User or None).
# Sent by the service that reassigns deals (the notifications app tells the new owner).
deal_reassigned = Signal()
# Personal data requests about one contact (GDPR access and erasure); kwargs: contact, by.
# Other apps keep personal data about contacts too (contract signers, follow-up recipients)
# and answer for it here, so that deals never imports their services.
# - `contact_data_collect`: each receiver returns {section name: list of plain dicts} for
#   the contact's export.
# - `contact_data_erase`: sent inside the erasing transaction, before the contact row is
#   anonymised (its name and email are still readable). Each receiver erases what its app
#   holds and returns {section name: summary}; it raises deals.services.DealError to refuse
#   (the whole erasure rolls back).
contact_data_collect = Signal()
contact_data_erase = Signal()
