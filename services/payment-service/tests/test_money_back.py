"""Refunds made in Stripe's Dashboard and disputes: the policy's outcome once, whatever order the
dispute's events arrive in (each is read again from Stripe: its current status decides)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from payment_service.adapters.tables import PaymentRow, RefundRow
from payment_service.domain.payment import PaymentStatus
from payment_service.domain.refunds import RefundState
from payment_service.domain.rental import RentalPolicy
from payment_service.service_layer.money_back import MoneyBack, apply
from payment_service.service_layer.rentals import start_fixed_term
from payment_service.testing import FakePaymentDatabase, Orders
from spawnpoint_contracts import DesiredServerState, DesiredServerStateChanged, RentalChanged, RentalPhase

pytestmark = pytest.mark.unit

POLICY = RentalPolicy()


async def _active_rental(db: FakePaymentDatabase) -> PaymentRow:
    snapshot = Orders().new(amount=1500).snapshot
    payment = PaymentRow(
        order_id=snapshot.order_id,
        user_id=snapshot.user_id,
        email=snapshot.email,
        amount=1500,
        currency="eur",
        status=PaymentStatus.PAID,
        order_snapshot=snapshot.model_dump(mode="json"),
        correlation_id="c-1",
        payment_intent="pi_1",
    )
    db.payments.rows[payment.order_id] = payment
    uow = db.unit_of_work()
    async with uow:
        await start_fixed_term(uow, payment, policy=POLICY)
        await uow.commit()
    return payment


def _refund(order_id: uuid.UUID, *, full: bool = True) -> MoneyBack:
    return MoneyBack("refund", "ch_1", "pi_1", order_id, None, refunded_in_full=full)


def _dispute(order_id: uuid.UUID, status: str) -> MoneyBack:
    return MoneyBack("dispute", "dp_1", "pi_1", order_id, None, dispute_status=status)


async def _apply(db: FakePaymentDatabase, money: MoneyBack) -> str:
    uow = db.unit_of_work()
    async with uow:
        outcome, _ = await apply(uow, money, policy=POLICY)
        await uow.commit()
    return outcome


def _phase(db: FakePaymentDatabase, payment: PaymentRow) -> RentalPhase:
    return db.rentals.rows[payment.order_id].phase


async def test_a_dashboard_refund_suspends_once() -> None:
    db = FakePaymentDatabase()
    payment = await _active_rental(db)
    assert await _apply(db, _refund(payment.order_id)) == "refunded"
    assert await _apply(db, _refund(payment.order_id)) == "no_change"
    assert _phase(db, payment) == RentalPhase.LAPSED
    states = [e.payload.state for e in db.events(DesiredServerStateChanged)]
    assert states == [DesiredServerState.RUNNING, DesiredServerState.SUSPENDED]


async def test_a_partial_refund_or_one_we_made_ourselves_changes_nothing() -> None:
    db = FakePaymentDatabase()
    payment = await _active_rental(db)
    assert await _apply(db, _refund(payment.order_id, full=False)) == "partial_refund"
    db.refunds.rows[uuid.uuid4()] = RefundRow(
        order_id=payment.order_id,
        idempotency_key="k",
        kind="order",
        reason="provisioning_failed",
        status=RefundState.SUCCEEDED,
        amount=1500,
        currency="eur",
        due_at=datetime.now(UTC),
    )
    assert await _apply(db, _refund(payment.order_id)) == "own_refund"
    assert _phase(db, payment) == RentalPhase.ACTIVE


async def test_a_dispute_opened_suspends_and_won_gives_the_server_back() -> None:
    db = FakePaymentDatabase()
    payment = await _active_rental(db)
    assert await _apply(db, _dispute(payment.order_id, "needs_response")) == "dispute_opened"
    assert _phase(db, payment) == RentalPhase.LAPSED
    assert await _apply(db, _dispute(payment.order_id, "won")) == "dispute_won"
    assert await _apply(db, _dispute(payment.order_id, "won")) == "no_change"  # the closed event twice
    assert _phase(db, payment) == RentalPhase.ACTIVE
    causes = [e.payload.cause for e in db.events(RentalChanged)]
    assert causes == ["activated", "dispute_opened", "dispute_won"]


async def test_a_dispute_whose_opening_arrives_after_it_was_won_changes_nothing() -> None:
    db = FakePaymentDatabase()
    payment = await _active_rental(db)
    assert await _apply(db, _dispute(payment.order_id, "won")) == "no_change"
    assert await _apply(db, _dispute(payment.order_id, "won")) == "no_change"  # created, re-read: won
    assert _phase(db, payment) == RentalPhase.ACTIVE


async def test_a_dispute_lost_ends_the_rental_even_if_its_opening_was_never_seen() -> None:
    db = FakePaymentDatabase()
    payment = await _active_rental(db)
    assert await _apply(db, _dispute(payment.order_id, "lost")) == "dispute_lost"
    assert _phase(db, payment) == RentalPhase.ENDED
    rental = db.rentals.rows[payment.order_id]
    assert rental.terminate_at is not None and rental.terminate_at - datetime.now(UTC) < timedelta(days=8)
