"""Signals the follow-up app sends, inside the transaction that recorded the event."""

from django.dispatch import Signal

# A buyer's reply was matched to a deal (not an auto-reply). kwargs: deal, email (InboundEmail)
buyer_replied = Signal()
# Email to a buyer bounced; the deal's follow-ups were paused.
# kwargs: deal, address, key (unique per bounce report), reason
email_bounced = Signal()
