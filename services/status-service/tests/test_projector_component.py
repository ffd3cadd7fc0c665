"""Component tests of the projector against the real PostgreSQL: incremental projection in any order,
with duplicates and concurrent deliveries, matches the pure projection; a delivery waits for its order's
lock and then sees every event committed before; several events of one order in one transaction (the kit's
group commit) project as they would one by one; ``rebuild`` reproduces every row exactly; a drifted or
orphaned row is found by ``--check`` and repaired by ``rebuild``."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from status_service_support import OrderStory, on, redelivered
from test_projection_properties import histories

from spawnpoint_contracts import DesiredServerState, Event, RentalCause, RentalPhase
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.testing import eventually
from status_service.domain.projection import project
from status_service.queues import STATUS_PROJECTION
from status_service.service_layer.handlers import apply_event, projection_subscription
from status_service.service_layer.projector import CONSUMER, project_event, project_events, rebuild
from status_service.service_layer.unit_of_work import SqlStatusUnitOfWork

pytestmark = pytest.mark.component


async def _rows(engine: AsyncEngine, table: str, order_ids: list[uuid.UUID] | None = None) -> list[dict[str, Any]]:
    where = " WHERE order_id = ANY(:ids)" if order_ids is not None else ""
    order = "order_id, version" if table == "order_status_changes" else "order_id"
    async with engine.connect() as conn:
        result = await conn.execute(sa.text(f"SELECT * FROM {table}{where} ORDER BY {order}"), {"ids": order_ids})
        return [dict(row._mapping) for row in result]


UnitOfWorkFactory = Callable[[], SqlStatusUnitOfWork]


async def _deliver(unit_of_work: UnitOfWorkFactory, arrival: list[Event], concurrency: int) -> None:
    """Deliver in arrival order, ``concurrency`` at a time (as competing consumers would)."""
    for start in range(0, len(arrival), concurrency):
        await asyncio.gather(*(apply_event(unit_of_work, e) for e in arrival[start : start + concurrency]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    stories=st.lists(histories(), min_size=1, max_size=3),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    concurrency=st.sampled_from([1, 4]),
)
async def test_incremental_projection_in_any_order_equals_the_pure_projection_and_rebuild_changes_nothing(
    engine: AsyncEngine,
    unit_of_work: UnitOfWorkFactory,
    stories: list[list[Event]],
    seed: int,
    concurrency: int,
) -> None:
    rng = random.Random(seed)
    arrival = [e for events in stories for e in events]
    arrival += [redelivered(rng.choice(arrival)) for _ in range(3)]
    rng.shuffle(arrival)
    await _deliver(unit_of_work, arrival, concurrency)

    order_ids = [events[0].order_id for events in stories]
    status_rows = {row["order_id"]: row for row in await _rows(engine, "order_status", order_ids)}
    for events in stories:
        expected = project(events)
        assert expected is not None
        row = status_rows[expected.order_id]
        assert (row["status"], row["phase"], row["message"]) == (
            expected.status.value,
            expected.phase.value,
            expected.message,
        )
        assert (row["server_id"], row["connect_path"], row["user_id"]) == (
            expected.server_id,
            expected.connect_path,
            expected.user_id,
        )
        assert row["updated_at"] == expected.updated_at
        assert row["events_applied"] == len(events)
    changes = await _rows(engine, "order_status_changes", order_ids)
    for order_id, row in status_rows.items():
        versions = [c["version"] for c in changes if c["order_id"] == order_id]
        assert versions == list(range(1, row["version"] + 1))  # one logged change per version, no gaps
        last = next(c for c in changes if c["order_id"] == order_id and c["version"] == row["version"])
        assert (last["status"], last["phase"], last["updated_at"]) == (row["status"], row["phase"], row["updated_at"])

    before = await _rows(engine, "order_status")
    before_changes = await _rows(engine, "order_status_changes")
    report = await rebuild(unit_of_work, batch_size=7)
    assert report.identical, report
    assert await _rows(engine, "order_status") == before  # every row, every column, versions included
    assert await _rows(engine, "order_status_changes") == before_changes


async def _assert_projected(engine: AsyncEngine, events: list[Event]) -> dict[str, Any]:
    """The order's row is the pure projection of ``events``, with one logged change per version, no gaps."""
    expected = project(events)
    assert expected is not None
    [row] = await _rows(engine, "order_status", [expected.order_id])
    assert (row["status"], row["phase"], row["message"], row["updated_at"]) == (
        expected.status.value,
        expected.phase.value,
        expected.message,
        expected.updated_at,
    )
    assert (row["server_id"], row["decided_by"], row["last_event_id"]) == (
        expected.server_id,
        expected.decided_by,
        expected.last_event_id,
    )
    assert row["events_applied"] == len(events)
    changes = await _rows(engine, "order_status_changes", [expected.order_id])
    assert [c["version"] for c in changes] == list(range(1, row["version"] + 1))
    assert (changes[-1]["phase"], changes[-1]["updated_at"]) == (row["phase"], row["updated_at"])
    return row


async def _waiting_for_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
        )
        return int(waiting.scalar_one()) > 0


async def test_a_delivery_waits_for_its_orders_lock_and_then_sees_the_event_committed_meanwhile(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    """The lock and the insert are one statement; the events are read by the next one, whose snapshot is
    taken once the lock is granted: a read in the locking statement would miss the event just committed."""
    s = OrderStory()
    paid, created = s.paid(), s.server_created()
    first = unit_of_work()
    async with first:
        assert await first.claim(CONSUMER, str(paid.event_id), event_type=paid.event_type, order_id=s.order_id)
        await project_event(paid, first)
        second = asyncio.create_task(apply_event(unit_of_work, created))
        await eventually(lambda: _waiting_for_a_lock(engine), timeout=10, what="the second delivery to wait")
        assert not second.done()
        await first.commit()
    applied = await asyncio.wait_for(second, 10)
    assert applied.outcome is not None and applied.outcome.changed
    row = await _assert_projected(engine, [paid, created])
    assert (row["phase"], row["version"]) == ("installing", 2)


async def test_several_events_of_one_order_in_one_transaction_project_as_one_by_one(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    """What the kit's group commit does with deliveries that arrive together: each later event reads the row
    and the events the earlier ones wrote in the same, uncommitted, transaction."""
    s = OrderStory()
    events: list[Event] = [s.created(), s.paid(), s.server_created(), s.installed()]
    uow = unit_of_work()
    async with uow:
        for event in [*events, redelivered(events[1])]:
            if await uow.claim(CONSUMER, str(event.event_id), event_type=event.event_type, order_id=s.order_id):
                await project_event(event, uow)
        assert [o.changed for o in uow.projected] == [True, True, True, True]
        await uow.commit()
    row = await _assert_projected(engine, events)
    assert (row["status"], row["version"]) == ("CREATED", 4)
    assert (await rebuild(unit_of_work)).identical


async def test_a_batch_of_events_projects_each_order_once_to_what_one_by_one_ends_with(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    """``project_events`` (the batch handler): one statement stores every event of the batch and locks their
    orders, each order is recomputed once; its row is what projecting the events one by one ends with, at
    one new version (the versions in between would have committed together: no one could read them)."""
    s, t = OrderStory(), OrderStory()
    events: list[Event] = [s.created(), t.created(), s.paid(), s.server_created(), t.paid(), s.installed()]
    uow = unit_of_work()
    async with uow:
        await project_events(events, uow)
        assert sorted(o.order_id for o in uow.projected) == sorted([s.order_id, t.order_id])
        await uow.commit()
    row = await _assert_projected(engine, [e for e in events if e.order_id == s.order_id])
    assert (row["status"], row["version"]) == ("CREATED", 1)
    other = await _assert_projected(engine, [e for e in events if e.order_id == t.order_id])
    assert (other["status"], other["version"]) == ("PAID", 1)
    assert len(await _rows(engine, "order_status_changes", [s.order_id])) == 1
    uow = unit_of_work()
    async with uow:  # the batch again (an inbox pruned): duplicates only, counted, nothing projected
        await project_events([events[0], events[2]], uow)
        assert uow.projected == []
        await uow.commit()
    assert (await _rows(engine, "order_status", [s.order_id]))[0]["version"] == 1
    assert (await rebuild(unit_of_work)).identical


def _batches() -> tuple[float, float, float]:
    """Group commit's batches on the projection queue so far: how many, their deliveries, how many failed."""
    labels = {"queue": STATUS_PROJECTION.name}
    return (
        REGISTRY.get_sample_value("consumer_batch_size_count", labels) or 0.0,
        REGISTRY.get_sample_value("consumer_batch_size_sum", labels) or 0.0,
        REGISTRY.get_sample_value("consumer_batch_failures_total", labels) or 0.0,
    )


async def test_deliveries_batched_by_group_commit_end_in_the_pure_projection(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    """The service's one subscription, every delivery of three orders in flight at once (any order, a few
    doubled): batches form with several events of one order in them."""
    stories = [OrderStory() for _ in range(3)]
    histories = [[s.created(), s.paid(), s.retry(), s.server_created(), s.installed()] for s in stories]
    rng = random.Random(14)
    arrival = [e for events in histories for e in events]
    arrival += [redelivered(rng.choice(arrival)) for _ in range(4)]
    rng.shuffle(arrival)
    subscription = projection_subscription(unit_of_work)
    assert subscription.batched
    before = _batches()
    await asyncio.gather(*(subscription.handle(e, Delivery.of(e, STATUS_PROJECTION.name)) for e in arrival))
    batches, deliveries, failed = (after - was for after, was in zip(_batches(), before, strict=True))
    assert deliveries > batches > 0 and failed == 0, "the deliveries shared transactions and none failed"
    for events in histories:
        await _assert_projected(engine, events)
    assert (await rebuild(unit_of_work)).identical


async def test_duplicates_count_as_deliveries_and_change_nothing(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    s = OrderStory()
    created, paid = s.created(), s.paid()
    first = await apply_event(unit_of_work, created)
    assert not first.duplicate and first.outcome is not None and first.outcome.changed
    await apply_event(unit_of_work, paid)
    again = await apply_event(unit_of_work, redelivered(paid))
    assert again.duplicate
    [row] = await _rows(engine, "order_status", [s.order_id])
    assert (row["status"], row["version"]) == ("PAID", 2)
    async with engine.connect() as conn:
        deliveries = (
            await conn.execute(
                sa.text("SELECT deliveries FROM order_events WHERE event_id = :id"), {"id": paid.event_id}
            )
        ).scalar_one()
    assert deliveries == 2


async def test_rebuild_check_finds_drift_and_rebuild_repairs_it(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    good, drifted, lost = OrderStory(), OrderStory(), OrderStory()
    for story in (good, drifted, lost):
        for event in (story.created(), story.paid(), story.server_created()):
            await apply_event(unit_of_work, event)
    orphan = uuid.uuid4()
    async with engine.begin() as conn:
        # What a projection bug, a hand edit and a lost write would leave behind:
        await conn.execute(
            sa.text("UPDATE order_status SET phase = 'paid', message = 'stale' WHERE order_id = :id"),
            {"id": drifted.order_id},
        )
        await conn.execute(sa.text("DELETE FROM order_status WHERE order_id = :id"), {"id": lost.order_id})
        await conn.execute(
            sa.text(
                "INSERT INTO order_status (order_id, status, phase, message, updated_at, last_event_id, "
                "events_applied, version) VALUES (:id, 'PAID', 'paid', 'x', now(), :id, 1, 1)"
            ),
            {"id": orphan},
        )
    [good_before] = await _rows(engine, "order_status", [good.order_id])
    [drifted_before] = await _rows(engine, "order_status", [drifted.order_id])

    check = await rebuild(unit_of_work, check=True)
    assert not check.identical
    assert check.changed >= 2 and check.removed >= 1
    [still_drifted] = await _rows(engine, "order_status", [drifted.order_id])
    assert still_drifted["message"] == "stale"  # --check writes nothing

    repaired = await rebuild(unit_of_work)
    assert repaired.changed >= 2 and repaired.removed >= 1
    [drifted_after] = await _rows(engine, "order_status", [drifted.order_id])
    [lost_after] = await _rows(engine, "order_status", [lost.order_id])
    assert (drifted_after["phase"], drifted_after["version"]) == ("installing", drifted_before["version"] + 1)
    assert lost_after["phase"] == "installing"
    assert await _rows(engine, "order_status", [orphan]) == []
    assert await _rows(engine, "order_status", [good.order_id]) == [good_before]
    assert (await rebuild(unit_of_work)).identical


async def test_rentals_in_any_order_store_the_newest_rental_and_rebuild_changes_nothing(
    engine: AsyncEngine, unit_of_work: UnitOfWorkFactory
) -> None:
    C, P = RentalCause, RentalPhase
    s = OrderStory()
    events: list[Event] = [
        s.created(),
        s.paid(),
        s.server_created(),
        s.installed(),
        s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1)),
        s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, next_payment_attempt=on(12, 3), grace_until=on(12, 16)),
        s.rental(3, P.LAPSED, C.LAPSED, terminate_at=on(12, 9)),
        s.desired(3, DesiredServerState.SUSPENDED, C.LAPSED),
        s.suspended(3),
    ]
    arrival = [*events, redelivered(events[5])]
    random.Random(7).shuffle(arrival)
    await _deliver(unit_of_work, arrival, 3)
    expected = project(events)
    assert expected is not None and expected.rental is not None
    [row] = await _rows(engine, "order_status", [s.order_id])
    assert row["rental"] == expected.rental.public()
    assert row["rental"]["phase"] == "suspended" and row["rental"]["server_state"] == "suspended"
    changes = await _rows(engine, "order_status_changes", [s.order_id])
    assert changes[-1]["rental"] == row["rental"]
    assert (await rebuild(unit_of_work)).identical
