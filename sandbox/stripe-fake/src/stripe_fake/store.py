"""In-memory state of the fake: sessions, payments, refunds and the expiry schedule.

All mutations happen on the server's event loop without awaiting in between, so each API call is
atomic with respect to the others without locks. The expiry schedule is a heap keyed by ``expires_at``
so the periodic sweep costs O(expired) rather than O(all sessions) under benchmark load.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from stripe_fake.models import Charge, CheckoutSession, PaymentIntent, Refund


@dataclass(slots=True)
class Store:
    """The objects the fake has created, indexed by id (insertion order = creation order)."""

    sessions: dict[str, CheckoutSession] = field(default_factory=dict)
    payment_intents: dict[str, PaymentIntent] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    session_by_payment_intent: dict[str, str] = field(default_factory=dict)
    _expiry_heap: list[tuple[int, str]] = field(default_factory=list)

    def add_session(self, session: CheckoutSession) -> None:
        """Keep a new session and schedule its expiry check."""
        self.sessions[session.id] = session
        heapq.heappush(self._expiry_heap, (session.expires_at, session.id))

    def due_for_expiry(self, now: float) -> list[CheckoutSession]:
        """Open sessions whose ``expires_at`` has passed, removed from the schedule."""
        due: list[CheckoutSession] = []
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            _, session_id = heapq.heappop(heap)
            session = self.sessions.get(session_id)
            if session is not None and session.status == "open":
                due.append(session)
        return due

    def link_payment_intent(self, session: CheckoutSession, intent: PaymentIntent) -> None:
        """Remember which session a PaymentIntent belongs to."""
        self.payment_intents[intent.id] = intent
        self.session_by_payment_intent[intent.id] = session.id
        session.payment_intent_id = intent.id

    def clear(self) -> None:
        """Forget everything (``DELETE /_fake/data``)."""
        self.sessions.clear()
        self.payment_intents.clear()
        self.charges.clear()
        self.refunds.clear()
        self.session_by_payment_intent.clear()
        self._expiry_heap.clear()
