"""The repositories on PostgreSQL: the contact keeps an operator's correction, due rows are claimed once
(two senders at the same time), oldest first and one at a time per order and recipient."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from notification_support import Story

from notification_service.adapters.tables import MessageRow, MessageStatus
from notification_service.domain.delivery import message_key
from notification_service.service_layer.unit_of_work import SqlNotificationUnitOfWork

pytestmark = pytest.mark.component

UnitOfWork = Callable[[], SqlNotificationUnitOfWork]


def _row(order_id: uuid.UUID, at: datetime, kind: str = "server_ready") -> MessageRow:
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    return MessageRow(
        id=message_key(event_id, kind, "customer"),
        event_id=event_id,
        event_type="ServerInstalled",
        order_id=order_id,
        kind=kind,
        role="customer",
        status=MessageStatus.PENDING,
        facts={},
        event_body=b"{}",
        occurred_at=at,
        next_attempt_at=now - timedelta(seconds=1),
        created_at=now,
        updated_at=now,
    )


async def test_a_late_snapshot_does_not_undo_an_operators_correction(sql_unit_of_work: UnitOfWork) -> None:
    story = Story(email="typo@example.test", locale="de")
    async with sql_unit_of_work() as uow:
        await uow.contacts.remember(story.snapshot())
        await uow.commit()
    async with sql_unit_of_work() as uow:
        contact = await uow.contacts.lock(story.order_id)
        assert contact is not None and contact.locale == "de"
        contact.email, contact.email_corrected_at = "right@example.test", datetime.now(UTC)
        await uow.contacts.save(contact)
        await uow.commit()
    async with sql_unit_of_work() as uow:
        await uow.contacts.remember(story.snapshot())
        await uow.commit()
    async with sql_unit_of_work() as uow:
        contact = await uow.contacts.get(story.order_id)
        assert contact is not None and contact.email == "right@example.test"


async def test_a_row_is_recorded_once(sql_unit_of_work: UnitOfWork) -> None:
    row = _row(uuid.uuid4(), datetime.now(UTC))
    async with sql_unit_of_work() as uow:
        assert await uow.emails.add(row)
        await uow.commit()
    async with sql_unit_of_work() as uow:
        assert not await uow.emails.add(_row(row.order_id, row.occurred_at).model_copy(update={"id": row.id}))
        await uow.commit()


async def test_two_senders_claim_each_row_once_oldest_first_one_per_order(sql_unit_of_work: UnitOfWork) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    orders = [uuid.uuid4() for _ in range(6)]
    async with sql_unit_of_work() as uow:
        for n, order in enumerate(orders):
            await uow.emails.add(_row(order, base + timedelta(seconds=n)))
            await uow.emails.add(_row(order, base + timedelta(seconds=60 + n), kind="payment_failed"))
        await uow.commit()

    async def claim() -> list[MessageRow]:
        async with sql_unit_of_work() as uow:
            rows = await uow.emails.claim_due(now=datetime.now(UTC), lease=timedelta(minutes=5), limit=100)
            await asyncio.sleep(0.2)  # hold the locks while the other sender claims
            await uow.commit()
            return [r for r in rows if r.order_id in orders]

    first, second = await asyncio.gather(claim(), claim())
    claimed = first + second
    assert sorted(r.order_id for r in claimed) == sorted(orders), "each order's first e-mail, once"
    assert {r.kind for r in claimed} == {"server_ready"}, "the later one waits for the earlier"
    assert all(r.status == MessageStatus.SENDING for r in claimed)
    async with sql_unit_of_work() as uow:
        again = await uow.emails.claim_due(now=datetime.now(UTC), lease=timedelta(minutes=5), limit=100)
        assert [r for r in again if r.order_id in orders] == [], "leased: not due again before the lease ends"
        await uow.commit()
