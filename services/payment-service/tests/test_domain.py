"""Unit tests of payment-service's pure rules."""

from __future__ import annotations

import itertools

import pytest

from payment_service.domain.payment import TRANSITIONS, PaymentStatus, PaymentTrigger, next_status

pytestmark = pytest.mark.unit

RANK = {PaymentStatus.PENDING_PAYMENT: 0, PaymentStatus.PAYMENT_PROCESSING: 1, PaymentStatus.PAID: 2}


@pytest.mark.parametrize(("status", "trigger"), list(itertools.product(PaymentStatus, PaymentTrigger)))
def test_every_state_and_trigger_pair_moves_forward_or_not_at_all(
    status: PaymentStatus, trigger: PaymentTrigger
) -> None:
    result = next_status(status, trigger)
    assert result == TRANSITIONS.get((status, trigger))
    if result is not None and status in RANK and result in RANK:
        assert RANK[result] > RANK[status]


def test_nothing_leaves_a_terminal_state_except_towards_a_refund() -> None:
    for status in (PaymentStatus.PAYMENT_FAILED, PaymentStatus.REFUNDED):
        assert all(next_status(status, t) in (None, PaymentStatus.REFUND_PENDING) for t in PaymentTrigger)
    assert next_status(PaymentStatus.EXPIRED, PaymentTrigger.PAID) is None
    assert next_status(PaymentStatus.PAID, PaymentTrigger.EXPIRED) is None
