"""Component tests of the webhook's event intake (group commit) against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payment_service.bootstrap import create_app
from payment_service.config import Settings
from payment_service.deps import services_of
from payment_service.domain.stripe_events import StoredEventStatus
from payment_service.entrypoints.jobs import STRIPE_EVENT_RETENTION, stripe_event_pruning_job
from payment_service.service_layer.event_intake import EventIntake
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork
from payment_service.testing import Db

pytestmark = pytest.mark.component

UnitOfWorkFactory = Callable[[], PaymentUnitOfWork]


def _event(order_id: uuid.UUID, *, event_id: str | None = None, note: str = "") -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": f"cs_test_{uuid.uuid4().hex}",
                "object": "checkout.session",
                "metadata": {"serverOrderId": str(order_id), "note": note},
            }
        },
    }


async def test_events_arriving_together_are_each_stored_once_and_answered_after_the_commit(
    unit_of_work: UnitOfWorkFactory, db: Db
) -> None:
    order_id = uuid.uuid4()
    events = [_event(order_id) for _ in range(40)]
    repeated = [events[0], events[7], events[7]]  # Stripe retrying while the first delivery is in flight
    intake = EventIntake(unit_of_work, max_batch=16)
    try:
        outcomes = await asyncio.gather(*(intake.record(e) for e in [*events, *repeated]))
    finally:
        await intake.aclose()
    assert outcomes.count("stored") == 40
    assert outcomes.count("duplicate") == 3
    stored = await db.stripe_events(order_id)
    assert sorted(r.id for r in stored) == sorted(e["id"] for e in events)
    assert {r.status for r in stored} == {"pending"}
    intake = EventIntake(unit_of_work)
    try:
        assert await intake.record(events[3]) == "duplicate"  # a later redelivery
    finally:
        await intake.aclose()


async def test_one_event_the_database_refuses_fails_only_its_own_request(
    unit_of_work: UnitOfWorkFactory, db: Db
) -> None:
    order_id = uuid.uuid4()
    good = [_event(order_id) for _ in range(5)]
    bad = _event(order_id, note="\u0000")  # jsonb cannot hold NUL: the whole multi-row insert is refused
    intake = EventIntake(unit_of_work)
    try:
        outcomes = await asyncio.gather(*(intake.record(e) for e in [good[0], bad, *good[1:]]), return_exceptions=True)
    finally:
        await intake.aclose()
    assert outcomes[0] == "stored" and outcomes[2:] == ["stored"] * 4
    assert isinstance(outcomes[1], Exception)
    assert sorted(r.id for r in await db.stripe_events(order_id)) == sorted(e["id"] for e in good)


async def test_a_type_we_do_not_handle_is_acknowledged_and_not_kept(unit_of_work: UnitOfWorkFactory, db: Db) -> None:
    order_id = uuid.uuid4()
    event = {**_event(order_id), "type": "payment_intent.created"}
    intake = EventIntake(unit_of_work)
    try:
        assert await intake.record(event) == "ignored"
    finally:
        await intake.aclose()
    assert await db.stripe_events(order_id) == []


async def test_an_event_for_a_session_that_is_not_ours_is_acknowledged_and_not_kept(
    unit_of_work: UnitOfWorkFactory, db: Db
) -> None:
    """Finding 12: a shared Stripe account's other sessions (no order id of ours) were stored and retried
    with a Stripe call and a stack trace for three days."""
    foreign = _event(uuid.uuid4())
    foreign["data"]["object"]["metadata"] = {"some_other_app": "42"}
    intake = EventIntake(unit_of_work)
    try:
        assert await intake.record(foreign) == "ignored"
    finally:
        await intake.aclose()
    async with unit_of_work() as uow:
        assert await uow.stripe_events.lock(foreign["id"]) is None


def test_an_intake_only_process_stores_events_and_runs_no_worker() -> None:
    """``WEBHOOK_WORKER_CONCURRENCY=0``: a process that only takes webhooks in (replicas scaled for a sale's
    burst), leaving the stored events to the processes that run a worker."""
    intake_only = create_app(Settings(WEBHOOK_WORKER_CONCURRENCY=0))
    default = create_app(Settings())
    assert "webhook-worker" not in services_of(intake_only).runtime.job_names
    assert {"webhook-worker", "sweeper", "refunds"} <= set(services_of(default).runtime.job_names)
    assert isinstance(services_of(intake_only).intake, EventIntake)


async def test_finished_stripe_events_past_stripes_window_are_pruned(unit_of_work: UnitOfWorkFactory, db: Db) -> None:
    """Finding 10: stripe_events was never pruned. Finished events older than 35 days go; pending ones and
    recent ones stay."""
    order_id = uuid.uuid4()
    old_done, old_pending, recent_done = _event(order_id), _event(order_id), _event(order_id)
    intake = EventIntake(unit_of_work)
    try:
        for event in (old_done, old_pending, recent_done):
            assert await intake.record(event) == "stored"
    finally:
        await intake.aclose()
    async with unit_of_work() as uow:
        ages = ((old_done, 40, "processed"), (old_pending, 40, "pending"), (recent_done, 2, "processed"))
        for event, days, status in ages:
            row = await uow.stripe_events.lock(event["id"])
            assert row is not None
            row.received_at = datetime.now(UTC) - timedelta(days=days)
            row.status = StoredEventStatus(status)
        await uow.commit()
    assert stripe_event_pruning_job(unit_of_work) is not None  # the hourly job wraps exactly this call
    async with unit_of_work() as uow:
        assert await uow.stripe_events.prune(before=datetime.now(UTC) - STRIPE_EVENT_RETENTION, limit=100) == 1
        await uow.commit()
    assert sorted(r.id for r in await db.stripe_events(order_id)) == sorted([old_pending["id"], recent_done["id"]])


async def test_the_verified_body_is_stored_as_the_events_payload(unit_of_work: UnitOfWorkFactory, db: Db) -> None:
    """The webhook hands the intake the body it verified; the row's payload is that event (the worker reads
    the checkout's trace context and refunds read the charge from it), not a re-serialised copy."""
    order_id = uuid.uuid4()
    event = _event(order_id, note="caf\u00e9 \u2603")
    body = json.dumps(event, indent=2, ensure_ascii=False)
    intake = EventIntake(unit_of_work)
    try:
        assert await intake.record(json.loads(body), body=body) == "stored"
        assert await intake.record(json.loads(body), body=body) == "duplicate"
    finally:
        await intake.aclose()
    (stored,) = await db.stripe_events(order_id)
    assert stored.payload == event
    assert stored.session_id == event["data"]["object"]["id"] and stored.status == "pending"


def test_an_api_process_runs_no_background_work_and_a_worker_process_runs_it() -> None:
    """The two-process layout (``PAYMENT_PROCESS=api`` beside ``payment-service worker``): the API process
    takes requests and webhooks only; the worker process applies the stored events and runs the jobs."""
    api = services_of(create_app(Settings(PAYMENT_PROCESS="api"))).runtime
    worker = services_of(create_app(Settings(PAYMENT_PROCESS="worker"))).runtime
    assert not {"webhook-worker", "sweeper", "refunds"} & set(api.job_names)
    assert api.relay is None
    assert {"webhook-worker", "sweeper", "refunds"} <= set(worker.job_names)
    assert worker.relay is not None
