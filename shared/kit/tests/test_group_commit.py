"""Group commit (``Subscription(batched=True)``) against PostgreSQL: deliveries that arrive together commit
in one transaction, each with its effect, inbox row and outbox row; a poison delivery fails only itself; a
lone delivery and a duplicate behave exactly as without batching."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import BatchHandler, Subscription
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.unit_of_work import SqlUnitOfWork

pytestmark = pytest.mark.component

QUEUE = QueueSpec("gc.work", ("payment.processing.v1",))


class Poison(Exception):
    pass


class CountingUnitOfWork(SqlUnitOfWork):
    """The real unit of work, counting its commits (class-wide: each delivery or batch makes a new one)."""

    commits = 0

    async def _commit(self) -> None:
        await super()._commit()
        CountingUnitOfWork.commits += 1


@pytest.fixture
async def gc_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS gc_effects (order_id uuid NOT NULL)"))


def _event() -> PaymentProcessing:
    return PaymentProcessing(
        order_id=uuid.uuid4(), correlation_id="c-gc", producer="test", payload=PaymentProcessingPayload(session_id="cs")
    )


async def record(event: PaymentProcessing, uow: SqlUnitOfWork) -> None:
    if event.payload.session_id == "cs_poison":
        raise Poison("this one can never be handled")
    await execute_sql(uow.session, sa.text("INSERT INTO gc_effects (order_id) VALUES (:o)"), {"o": event.order_id})
    uow.publish(event.model_copy(update={"event_id": uuid.uuid5(event.event_id, "announce")}))


async def count_duplicate(event: Event, uow: SqlUnitOfWork) -> None:
    await execute_sql(uow.session, sa.text("INSERT INTO gc_effects (order_id) VALUES (:o)"), {"o": uuid.UUID(int=0)})


def _subscription(
    sessions: async_sessionmaker[AsyncSession], batch_handler: BatchHandler[SqlUnitOfWork] | None = None
) -> Subscription[SqlUnitOfWork]:
    return Subscription(
        QUEUE,
        {PaymentProcessing: [record]},
        unit_of_work=lambda: CountingUnitOfWork(sessions, Topology("gc.")),
        on_duplicate=count_duplicate,
        batched=True,
        batch_handler=batch_handler,
    )


async def _counts(engine: AsyncEngine, order_id: uuid.UUID) -> tuple[int, int, int]:
    async with engine.connect() as conn:
        effects = await conn.execute(sa.text("SELECT count(*) FROM gc_effects WHERE order_id = :o"), {"o": order_id})
        inbox = await conn.execute(sa.text("SELECT count(*) FROM inbox WHERE order_id = :o"), {"o": order_id})
        outbox = await conn.execute(sa.text("SELECT count(*) FROM outbox WHERE order_id = :o"), {"o": order_id})
        return int(effects.scalar_one()), int(inbox.scalar_one()), int(outbox.scalar_one())


async def test_deliveries_that_arrive_together_commit_in_one_transaction_each_with_its_rows(
    gc_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    subscription = _subscription(sessions)
    events = [_event() for _ in range(10)]
    before = CountingUnitOfWork.commits
    await asyncio.gather(*(subscription.handle(e, Delivery.of(e, QUEUE.name)) for e in events))
    for event in events:
        assert await _counts(engine, event.order_id) == (1, 1, 1)
    # All ten were waiting before the committer ran: one transaction, one commit.
    assert CountingUnitOfWork.commits - before == 1


async def test_a_lone_delivery_is_handled_alone_and_a_duplicate_in_a_batch_runs_the_duplicate_path(
    gc_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    subscription = _subscription(sessions)
    event = _event()
    await subscription.handle(event, Delivery.of(event, QUEUE.name))
    assert await _counts(engine, event.order_id) == (1, 1, 1)
    again = [event, event, _event()]
    await asyncio.gather(*(subscription.handle(e, Delivery.of(e, QUEUE.name, redelivered=True)) for e in again))
    assert await _counts(engine, event.order_id) == (1, 1, 1), "a duplicate changes nothing of the order"
    assert await _counts(engine, again[2].order_id) == (1, 1, 1)
    assert (await _counts(engine, uuid.UUID(int=0)))[0] >= 2, "each duplicate delivery ran on_duplicate"


handed: list[list[uuid.UUID]] = []
"""The events each call of ``record_all`` was handed, in order."""


async def record_all(events: Sequence[Event], uow: SqlUnitOfWork) -> None:
    """A batch handler: the same effect as ``record`` for each, recorded as one call."""
    handed.append([e.event_id for e in events])
    for event in events:
        assert isinstance(event, PaymentProcessing)
        await record(event, uow)


def _batch_subscription(sessions: async_sessionmaker[AsyncSession]) -> Subscription[SqlUnitOfWork]:
    return _subscription(sessions, record_all)


async def test_a_batch_handler_gets_the_first_time_events_of_a_batch_together_and_duplicates_go_their_own_way(
    gc_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    subscription = _batch_subscription(sessions)
    handled = _event()
    await subscription.handle(handled, Delivery.of(handled, QUEUE.name))
    assert await _counts(engine, handled.order_id) == (1, 1, 1)
    fresh = [_event() for _ in range(5)]
    batch = [fresh[0], handled, fresh[1], fresh[1], *fresh[2:]]  # one handled before, one twice in the batch
    duplicates_before = (await _counts(engine, uuid.UUID(int=0)))[0]
    handed.clear()
    commits = CountingUnitOfWork.commits
    await asyncio.gather(*(subscription.handle(e, Delivery.of(e, QUEUE.name)) for e in batch))
    assert handed == [[e.event_id for e in fresh]], "one call, the first-time events in arrival order"
    assert CountingUnitOfWork.commits - commits == 1
    for event in fresh:
        assert await _counts(engine, event.order_id) == (1, 1, 1)
    assert await _counts(engine, handled.order_id) == (1, 1, 1)
    assert (await _counts(engine, uuid.UUID(int=0)))[0] - duplicates_before == 2, "each duplicate ran on_duplicate"


@pytest.mark.parametrize("batch_handler", [False, True], ids=["table", "batch-handler"])
async def test_a_poison_delivery_fails_alone_and_the_rest_of_its_batch_commits_once(
    gc_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], batch_handler: bool
) -> None:
    """With a batch handler too: the failed batch is handled again one delivery at a time, through the table."""
    subscription = _batch_subscription(sessions) if batch_handler else _subscription(sessions)
    events = [_event() for _ in range(6)]
    poison = PaymentProcessing(
        order_id=uuid.uuid4(),
        correlation_id="c-gc",
        producer="t",
        payload=PaymentProcessingPayload(session_id="cs_poison"),
    )
    batch = [*events[:3], poison, *events[3:]]
    results = await asyncio.gather(
        *(subscription.handle(e, Delivery.of(e, QUEUE.name)) for e in batch), return_exceptions=True
    )
    assert [type(r) for r in results] == [type(None)] * 3 + [Poison] + [type(None)] * 3
    for event in events:
        assert await _counts(engine, event.order_id) == (1, 1, 1)
    assert await _counts(engine, poison.order_id) == (0, 0, 0)
