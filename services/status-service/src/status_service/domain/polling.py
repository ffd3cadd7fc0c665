"""How soon a polling client should ask again, by phase.

Thousands of customers keep the order page open; the interval is what keeps them from hammering the
service while still showing a change within a few seconds when one is due. The numbers follow how fast
each phase moves: a paid order becomes a server within seconds, an installation takes a minute or more,
a delayed bank payment may take days, and final phases rarely change again (a replay or a refund). A
browser that wants the moment of change uses the event stream instead.

The interval is part of the response body, so it must depend on the read model only (the ETag is a
hash of the body); clients add their own jitter.
"""

from __future__ import annotations

from .projection import Phase

POLL_AFTER_SECONDS: dict[Phase, int] = {
    Phase.AWAITING_PAYMENT: 3,
    Phase.PAYMENT_PROCESSING: 30,
    Phase.PAID: 2,
    Phase.PROVISIONING: 5,
    Phase.INSTALLING: 3,
    Phase.READY: 300,
    Phase.FAILED: 30,
    Phase.PAYMENT_FAILED: 300,
    Phase.EXPIRED: 300,
    Phase.REFUNDED: 300,
}


def poll_after(phase: Phase) -> int:
    """Seconds a polling client should wait before its next request."""
    return POLL_AFTER_SECONDS[phase]
