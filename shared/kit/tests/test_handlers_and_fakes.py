"""The in-memory unit of work, the handler table's dispatch, the state machine helper and ``periodic``."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import pytest

from spawnpoint_contracts import Event, OrderExpired, OrderExpiredPayload, PaymentProcessing, PaymentProcessingPayload
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.messaging.handlers import HandlerTable, Subscription, handlers_for
from spawnpoint_kit.messaging.specs import QueueSpec
from spawnpoint_kit.periodic import periodic
from spawnpoint_kit.state_machine import InvalidTransition, StateMachine
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit


def _processing() -> PaymentProcessing:
    return PaymentProcessing(
        order_id=uuid.uuid4(), correlation_id="c", producer="t", payload=PaymentProcessingPayload(session_id="cs_1")
    )


def _delivery(event: Event, **headers: object) -> Delivery:
    return Delivery.of(event, "q", headers=dict(headers))


async def test_the_fake_keeps_only_what_was_committed() -> None:
    uow = FakeUnitOfWork()
    event = _processing()
    async with uow:
        assert await uow.claim("c", "k")
        uow.publish(event)
    async with uow:
        assert await uow.claim("c", "k"), "a rolled-back claim is not kept"
        assert not await uow.claim("c", "k"), "claimed twice in one transaction"
        uow.publish(event)
        uow.dead_letter("why", "detail", delivery=_delivery(event))
        await uow.commit()
    async with uow:
        assert not await uow.claim("c", "k")
    assert uow.events(PaymentProcessing) == [event]
    assert [m.queue for m in uow.messages()] == ["q.dlq"]
    assert uow.messages("q.dlq")[0].headers["x-spawnpoint-reason"] == "why"
    assert (uow.commits, uow.rollbacks) == (1, 2)


async def test_outside_async_with_the_unit_of_work_refuses_work() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(RuntimeError):
        uow.publish(_processing())
    with pytest.raises(RuntimeError):
        await uow.commit()


async def test_after_commit_steps_run_once_committed_and_a_failing_one_does_not_undo_it() -> None:
    ran: list[str] = []

    async def fails() -> None:
        raise RuntimeError("Stripe is down")

    async def works() -> None:
        ran.append("works")

    uow = FakeUnitOfWork()
    async with uow:
        uow.after_commit(works)
    assert ran == [], "a rolled-back transaction runs no after-commit step"
    async with uow:
        uow.after_commit(fails)
        uow.after_commit(works)
        await uow.commit()
    assert ran == ["works"] and uow.commits == 1


def test_the_most_specific_class_in_the_table_wins() -> None:
    async def specific(event: Event, uow: FakeUnitOfWork) -> None: ...

    async def catch_all(event: Event, uow: FakeUnitOfWork) -> None: ...

    table: HandlerTable[FakeUnitOfWork] = {PaymentProcessing: [specific], Event: [catch_all]}
    assert handlers_for(table, _processing()) == [specific]
    expired = OrderExpired(
        order_id=uuid.uuid4(), correlation_id="c", producer="t", payload=OrderExpiredPayload(reason="x")
    )
    assert handlers_for(table, expired) == [catch_all]
    narrow: HandlerTable[FakeUnitOfWork] = {PaymentProcessing: [specific]}
    assert handlers_for(narrow, expired) == ()


async def test_a_duplicate_runs_on_duplicate_and_nothing_else() -> None:
    uow = FakeUnitOfWork()
    seen: list[str] = []

    async def handle(event: Event, u: FakeUnitOfWork) -> None:
        seen.append("handled")

    async def duplicate(event: Event, u: FakeUnitOfWork) -> None:
        seen.append("duplicate")

    subscription = Subscription(QueueSpec("q", ()), {Event: [handle]}, unit_of_work=lambda: uow, on_duplicate=duplicate)
    event = _processing()
    await subscription.handle(event, _delivery(event))
    await subscription.handle(event, _delivery(event))
    assert seen == ["handled", "duplicate"]
    assert ("q", str(event.event_id)) in uow.inbox


class Light(StrEnum):
    RED = "red"
    GREEN = "green"


class Press(StrEnum):
    GO = "go"
    STOP = "stop"


@dataclass
class Lamp:
    status: Light


@dataclass
class StampedLamp:
    status: Light
    updated_at: datetime


def test_a_transition_the_table_does_not_allow_is_a_domain_error() -> None:
    machine = StateMachine("lamp", {(Light.RED, Press.GO): Light.GREEN, (Light.GREEN, Press.STOP): Light.RED})
    lamp = Lamp(Light.RED)
    assert machine.transition(lamp, Press.GO) == Light.GREEN and lamp.status == Light.GREEN
    with pytest.raises(InvalidTransition, match="'green' does not allow 'go'"):
        machine.transition(lamp, Press.GO)
    assert lamp.status == Light.GREEN, "a refused move changes nothing"
    assert machine.next(Light.GREEN, Press.GO) is None and machine.allows(Light.GREEN, Press.STOP)
    assert list(machine.triggers_from(Light.RED)) == [Press.GO]


def test_a_transition_stamps_the_rows_updated_at() -> None:
    machine = StateMachine("lamp", {(Light.RED, Press.GO): Light.GREEN})
    then = datetime(2026, 1, 1, tzinfo=UTC)
    lamp = StampedLamp(Light.RED, then)
    machine.transition(lamp, Press.GO)
    assert lamp.updated_at > then
    again = StampedLamp(Light.RED, then)
    machine.transition(again, Press.GO, at=datetime(2026, 2, 2, tzinfo=UTC))
    assert again.updated_at == datetime(2026, 2, 2, tzinfo=UTC)


async def test_periodic_survives_a_failing_run_and_runs_again_at_once_when_more_is_due() -> None:
    stop = asyncio.Event()
    runs: list[int] = []
    errors: list[Exception] = []

    async def step() -> bool:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("database away")
        if len(runs) == 4:
            stop.set()
        return len(runs) < 4  # more is due: no waiting in between

    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    job = periodic(step, every=0.05, name="test", on_error=errors.append, on_stop=close)
    await asyncio.wait_for(job(stop), timeout=5)
    assert runs == [0, 1, 2, 3] and len(errors) == 1 and closed == [True]
