"""The webhook worker gives way to the webhooks pouring into its own process
(``service_layer.webhook_pressure``), against the real PostgreSQL: during a flood it applies one event at a
time, a few a second, and all it may once the flood has passed; an ordinary trickle never slows it down."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from payment_service.adapters.repositories import ClaimedEvent
from payment_service.entrypoints.webhook_worker import WebhookWorker
from payment_service.service_layer.event_intake import EventIntake
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.service_layer.webhook_pressure import WebhookPressure
from spawnpoint_kit.testing import eventually

pytestmark = pytest.mark.component


class _Counting:
    """Stands in for the runner: applies an event in a few milliseconds and counts how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peaks: list[int] = []
        self.starts: list[float] = []
        self.done: set[str] = set()

    async def run(self, event: ClaimedEvent) -> bool:
        self.starts.append(time.monotonic())
        self.running += 1
        self.peaks.append(self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        self.done.add(event.id)
        return True


def _event(order_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "checkout.session.completed",
        "data": {"object": {"id": f"cs_test_{uuid.uuid4().hex}", "metadata": {"serverOrderId": str(order_id)}}},
    }


async def _flood(pressure: WebhookPressure, stop: asyncio.Event) -> None:
    """Deliveries at 100/s, as the route marks them, until ``stop``."""
    while not stop.is_set():
        pressure.arrived()
        pressure.answered()
        await asyncio.sleep(0.01)


async def test_the_worker_applies_events_one_by_one_and_paced_during_a_flood_and_all_it_may_after(
    unit_of_work: Callable[[], PaymentUnitOfWork], database_url: str
) -> None:
    pressure = WebhookPressure(busy_rate=20, window_seconds=0.25)
    intake = EventIntake(unit_of_work, pressure=pressure)
    order_id = uuid.uuid4()
    early = [_event(order_id) for _ in range(3)]
    late = [_event(order_id) for _ in range(4)]
    counting = _Counting()
    runner: Any = counting  # the worker only calls run(event)
    worker = WebhookWorker(
        runner,
        unit_of_work,
        database_url=database_url,
        concurrency=4,
        poll_seconds=0.2,
        pressure=pressure,
        busy_concurrency=1,
        busy_events_per_second=5,
    )
    async with unit_of_work() as uow:  # events other tests left due are leased away: only these count here
        await uow.stripe_events.claim_due(limit=100_000)
        await uow.commit()
    stop, flood_over = asyncio.Event(), asyncio.Event()
    flood = asyncio.create_task(_flood(pressure, flood_over))
    running: asyncio.Task[None] | None = None
    try:

        async def flooding() -> bool:
            return pressure.busy()

        await eventually(flooding, timeout=5, what="the flood under way")
        running = asyncio.create_task(worker.run(stop))
        for event in early:
            assert await intake.record(event) == "stored"

        async def early_done() -> bool:
            return {e["id"] for e in early} <= counting.done

        await eventually(early_done, timeout=10, what="the early events applied")
        assert max(counting.peaks) == 1
        gaps = [later - earlier for earlier, later in zip(counting.starts, counting.starts[1:], strict=False)]
        assert min(gaps) >= 0.15  # paced: five a second at most
        flood_over.set()

        async def quiet() -> bool:
            return not pressure.busy()

        await eventually(quiet, timeout=5, what="the flood over")
        counting.peaks.clear()
        for event in late:
            assert await intake.record(event) == "stored"

        async def late_done() -> bool:
            return {e["id"] for e in late} <= counting.done

        await eventually(late_done, timeout=10, what="the late events applied")
        assert max(counting.peaks) > 1
    finally:
        flood_over.set()
        stop.set()
        await flood
        if running is not None:
            await asyncio.wait_for(running, timeout=15)
        await intake.aclose()


def test_a_trickle_of_webhooks_is_no_flood_but_deliveries_piling_up_are() -> None:
    """Ordinary trade (a webhook or two per order, answered at once) leaves the worker its full concurrency;
    a fast stream, or deliveries waiting inside the endpoint (a starved intake), makes it give way."""
    pressure = WebhookPressure(busy_rate=100, busy_in_flight=4, window_seconds=0.25)
    for _ in range(10):
        pressure.arrived()
        pressure.answered()
    assert not pressure.busy() and pressure.quiet_in() == 0
    for _ in range(30):
        pressure.arrived()
        pressure.answered()
    assert pressure.busy() and 0 < pressure.quiet_in() <= 0.25
    piling = WebhookPressure(busy_rate=100, busy_in_flight=4, window_seconds=0.25)
    for _ in range(4):
        piling.arrived()
    assert piling.busy()


class _CountingClaims(WebhookWorker):
    claims = 0

    async def claim(self, limit: int) -> list[ClaimedEvent]:
        self.claims += 1
        return await super().claim(limit)


async def test_events_stored_by_this_process_are_handed_to_its_worker_leased_and_unclaimed(
    unit_of_work: Callable[[], PaymentUnitOfWork], database_url: str
) -> None:
    """The default process: what its webhook stores, its worker applies without a NOTIFY or a claim, and no
    other worker's claim takes it meanwhile (it is stored leased to this process)."""
    intake = EventIntake(unit_of_work)
    counting = _Counting()
    runner: Any = counting
    worker = _CountingClaims(runner, unit_of_work, database_url=database_url, concurrency=4, poll_seconds=60)
    intake.hand_to(worker.hand, lease_seconds=60)
    async with unit_of_work() as uow:  # events other tests left due are leased away
        await uow.stripe_events.claim_due(limit=100_000)
        await uow.commit()
    events = [_event(uuid.uuid4()) for _ in range(5)]
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:

        async def looked() -> bool:
            # Two looks at start: for what was due before, and once the NOTIFY listener is in place (for
            # anything committed while it was not listening).
            return worker.claims >= 2

        await eventually(looked, timeout=5, what="the worker's first looks")
        looks = worker.claims
        for event in events:
            assert await intake.record(event) == "stored"
        async with unit_of_work() as uow:
            assert await uow.stripe_events.claim_due(limit=100_000) == [], "leased to this process"
            await uow.commit()

        async def applied() -> bool:
            return {e["id"] for e in events} <= counting.done

        await eventually(applied, timeout=10, what="the handed events applied")
        assert worker.claims == looks, "no claim for events handed over"
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=15)
        await intake.aclose()
