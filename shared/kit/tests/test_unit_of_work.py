"""The real unit of work against PostgreSQL: the effect, the inbox row and the outbox rows commit together,
or none of them does; the handler table runs every handler of an event in that one transaction."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.db import execute_sql
from spawnpoint_kit.messaging.delivery import DeadLetter, Delivery
from spawnpoint_kit.messaging.handlers import Subscription
from spawnpoint_kit.messaging.inbox import InboxEntry
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.unit_of_work import SqlUnitOfWork

pytestmark = pytest.mark.component


class Effects:
    """A stand-in repository: one row per handled order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, order_id: uuid.UUID) -> None:
        await execute_sql(self._session, sa.text("INSERT INTO uow_effects (order_id) VALUES (:o)"), {"o": order_id})


class EffectsUnitOfWork(SqlUnitOfWork):
    effects: Effects

    def _repositories(self, session: AsyncSession) -> None:
        self.effects = Effects(session)


class Boom(Exception):
    pass


def _event(order_id: uuid.UUID | None = None) -> PaymentProcessing:
    return PaymentProcessing(
        order_id=order_id or uuid.uuid4(),
        correlation_id="c-uow",
        producer="test",
        payload=PaymentProcessingPayload(session_id="cs_test_uow"),
    )


def _delivery(event: Event) -> Delivery:
    return Delivery.of(event, "uow.work")


@pytest.fixture(scope="module")
async def effects_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS uow_effects (order_id uuid NOT NULL)"))


async def _counts(engine: AsyncEngine, order_id: uuid.UUID) -> tuple[int, int, int]:
    async with engine.connect() as conn:
        effects = await conn.execute(sa.text("SELECT count(*) FROM uow_effects WHERE order_id = :o"), {"o": order_id})
        inbox = await conn.execute(sa.text("SELECT count(*) FROM inbox WHERE order_id = :o"), {"o": order_id})
        outbox = await conn.execute(sa.text("SELECT count(*) FROM outbox WHERE order_id = :o"), {"o": order_id})
        return int(effects.scalar_one()), int(inbox.scalar_one()), int(outbox.scalar_one())


async def test_a_failure_after_staging_leaves_no_effect_no_inbox_row_and_no_outbox_row(
    effects_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = _event()
    uow = EffectsUnitOfWork(sessions, Topology("tu."))

    async def handle_then_fail() -> None:
        async with uow:
            assert await uow.claim("uow-test", str(event.event_id), order_id=event.order_id)
            await uow.effects.record(event.order_id)
            uow.publish(event)
            uow.dead_letter("because", "a copy as well", delivery=_delivery(event))
            raise Boom

    with pytest.raises(Boom):
        await handle_then_fail()
    assert await _counts(engine, event.order_id) == (0, 0, 0)

    async with uow:  # the same unit of work, entered again: a new transaction, nothing left over
        assert uow.published == [] and uow.sent == []
        assert await uow.claim("uow-test", str(event.event_id), order_id=event.order_id)
        await uow.effects.record(event.order_id)
        uow.publish(event)
        await uow.commit()
    assert await _counts(engine, event.order_id) == (1, 1, 1)


async def test_a_commit_that_fails_runs_no_after_commit_step(
    effects_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = _event()
    ran: list[str] = []

    async def after() -> None:
        ran.append("after")

    uow = EffectsUnitOfWork(sessions, Topology("tu."))
    async with uow:
        await uow.claim("uow-test", str(event.event_id), order_id=event.order_id)
        uow.publish(event)
        uow.publish(event)  # the same event id twice: the outbox's primary key refuses the commit
        uow.after_commit(after)
        with pytest.raises(sa.exc.IntegrityError):
            await uow.commit()
    assert ran == []
    assert await _counts(engine, event.order_id) == (0, 0, 0)


async def test_every_handler_of_an_event_commits_together_and_a_redelivery_does_nothing(
    effects_table: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    calls: list[str] = []

    async def record(event: PaymentProcessing, uow: EffectsUnitOfWork) -> None:
        calls.append("record")
        await uow.effects.record(event.order_id)

    async def announce(event: PaymentProcessing, uow: EffectsUnitOfWork) -> None:
        calls.append("announce")
        uow.publish(_event(event.order_id))

    async def fail(event: PaymentProcessing, uow: EffectsUnitOfWork) -> None:
        raise Boom

    subscription = Subscription(
        QueueSpec("uow.work", ()),
        {PaymentProcessing: [record, announce]},
        unit_of_work=lambda: EffectsUnitOfWork(sessions, Topology("tu.")),
    )
    event = _event()
    await subscription.handle(event, _delivery(event))
    await subscription.handle(event, _delivery(event))  # a redelivery
    assert calls == ["record", "announce"]
    assert await _counts(engine, event.order_id) == (1, 1, 1)

    failing = Subscription(
        QueueSpec("uow.work", ()),
        {PaymentProcessing: [record, announce, fail]},
        unit_of_work=lambda: EffectsUnitOfWork(sessions, Topology("tu.")),
    )
    other = _event()
    with pytest.raises(Boom):
        await failing.handle(other, _delivery(other))
    assert await _counts(engine, other.order_id) == (0, 0, 0)


async def test_an_event_type_the_table_does_not_name_is_dead_lettered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    subscription: Subscription[EffectsUnitOfWork] = Subscription(
        QueueSpec("uow.work", ()), {}, unit_of_work=lambda: EffectsUnitOfWork(sessions, Topology("tu."))
    )
    event = _event()
    with pytest.raises(DeadLetter) as raised:
        await subscription.handle(event, _delivery(event))
    assert raised.value.reason == "unexpected_event"


async def test_a_row_read_in_a_block_left_without_commit_stays_readable(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A use case that only reads (a replayed order, an owner check) returns the row after the block; a
    rollback would have expired it and the caller would get DetachedInstanceError (a 500)."""
    event = _event()
    async with SqlUnitOfWork(sessions, Topology("tu.")) as uow:
        assert await uow.claim("uow-read", str(event.event_id), event_type="E", order_id=event.order_id)
        await uow.commit()
    async with SqlUnitOfWork(sessions, Topology("tu.")) as uow:
        row = await uow.session.get(InboxEntry, ("uow-read", str(event.event_id)))
    assert row is not None and row.event_type == "E" and row.order_id == event.order_id


async def test_inbox_rows_older_than_the_retention_are_pruned_and_recent_ones_kept(
    engine: AsyncEngine, database_url: str
) -> None:
    """Finding 10: the inbox was never pruned; it grows by one row per handled message for ever."""
    from spawnpoint_kit.runtime import ServiceRuntime
    from spawnpoint_kit.settings import CommonSettings

    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO inbox (consumer, message_key, processed_at) VALUES "
                "('prune-test', :old, now() - interval '31 days'), ('prune-test', :recent, now() - interval '1 day')"
            ),
            {"old": old, "recent": recent},
        )
    runtime = ServiceRuntime(CommonSettings(), service="kit-tests", database_url=database_url)
    try:
        assert await runtime.prune_inbox() is False
        assert "inbox-pruning" in runtime.job_names
    finally:
        await runtime.engine.dispose()
    async with engine.connect() as conn:
        left = (await conn.execute(sa.text("SELECT message_key FROM inbox WHERE consumer = 'prune-test'"))).scalars()
        assert list(left) == [recent]


async def _in_a_transaction(uow: EffectsUnitOfWork) -> bool:
    """Whether the open unit of work's statements share a transaction (the same transaction id twice)."""
    ids = [(await execute_sql(uow.session, sa.text("SELECT txid_current()"))).scalar_one() for _ in range(2)]
    return bool(ids[0] == ids[1])


async def test_a_reading_unit_of_work_opens_no_transaction_refuses_to_write_and_the_next_one_is_a_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    uow = EffectsUnitOfWork(sessions, Topology("tu."))
    async with uow.reading():
        assert uow.read_only
        assert not await _in_a_transaction(uow)
        with pytest.raises(RuntimeError, match="only reads"):
            uow.publish(_event())
        with pytest.raises(RuntimeError, match="only reads"):
            await uow.claim("uow.reading", "k1")
        with pytest.raises(RuntimeError, match="only reads"):
            await uow.commit()
    assert not uow.read_only
    async with uow:
        assert await _in_a_transaction(uow)
        await uow.commit()
