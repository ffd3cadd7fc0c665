"""The webhook's side of stored Stripe events: which events are kept, and storing them with group commit
(one transaction for the events that arrive together).

The webhook only verifies, deduplicates on the event id and stores the event, then answers 2xx: it never
calls Stripe, the panel or anything slow. The event id is the row's primary key, so the row *is* the
webhook's effect and a redelivery finds it and changes nothing. The webhook worker applies stored events
later (``service_layer.stored_events``).

Why group commit: during a sale Stripe delivers many webhooks at once, and the endpoint's cost was dominated by one
transaction per event (begin, insert, notify, commit: several milliseconds of Python and a disk flush
each). Requests that arrive while a transaction is in flight wait for the next one, which then stores all
of them with one multi-row insert. Nothing waits for company: a lone webhook is written at once, so
batching costs no latency when it is quiet and saves most of the per-event cost when it is busy.

In the default process the webhook worker runs beside the intake, and the intake hands it what it just
stored (``hand_to``): the new events are stored already leased to this process, and the worker applies them
without a NOTIFY and a claim transaction of its own (one round trip per event saved, and the wait for the
notification). If the process dies first, the lease runs out and any worker claims them, as after a crash
mid-fulfilment. An intake-only process (``PAYMENT_PROCESS=api``) hands nothing: its events are due at once and
announced, for the workers elsewhere.

What does not change: each request is answered only after the transaction holding its event committed
(so a 2xx still means stored), the event id is still the deduplication key (an id repeated within one
batch is stored once: its first request is ``stored``, the others ``duplicate``), and the worker is
woken by the same NOTIFY. If a batch fails for a reason other than the database being unreachable (say
one event's payload PostgreSQL refuses), each event of it is retried alone, so one bad event fails only
its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from spawnpoint_kit import tracing
from spawnpoint_kit.db import database_unreachable
from spawnpoint_kit.logs import get_logger

from ..adapters.repositories import ClaimedEvent
from ..domain.stripe_events import (
    HANDLED_TYPES,
    MONEY_BACK_TYPES,
    SUBSCRIPTION_TYPES,
    StoredEventStatus,
    order_ref,
    subscription_ref,
)
from .unit_of_work import PaymentUnitOfWork
from .webhook_pressure import WebhookPressure

log = get_logger(__name__)


class MalformedEvent(ValueError):
    """Signed by Stripe but not an event we can read (no id, no type, no object)."""


def stored_row(event: dict[str, Any], *, now: datetime | None = None, body: str | None = None) -> dict[str, Any] | None:
    """The ``stripe_events`` row for a verified event, or None for an event we do not handle (acknowledged
    and not kept): a type we do not handle, or a session that is not one of ours (no order id in its
    metadata or ``client_reference_id``: another application on a shared Stripe account; kept, it would be
    retried with a Stripe call for three days). Raises ``MalformedEvent`` for a signed body that is not an
    event we can read.

    ``body`` is the JSON text ``event`` was parsed from (the webhook's verified body): stored as it is, so the
    payload is never serialised again only for PostgreSQL to parse it once more."""
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
        raise MalformedEvent("event has no id or type")
    if event_type not in HANDLED_TYPES:
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise MalformedEvent("event has no data.object.id")
    if len(event_id) > 255 or len(obj["id"]) > 255:
        raise MalformedEvent("event or object id is too long")
    session_id: str | None = obj["id"]
    subscription_id: str | None = None
    if event_type in SUBSCRIPTION_TYPES:
        session_id = None
        subscription_id, order_id = subscription_ref(event_type, obj)
        if subscription_id is None or len(subscription_id) > 255:
            return None  # a one-off invoice, or a subscription that is not one of ours
    elif event_type in MONEY_BACK_TYPES:
        session_id, order_id = None, None  # the charge's order is found when it is applied (a Stripe read)
    else:
        order_id = order_ref(obj)
    if order_id is None and event_type not in MONEY_BACK_TYPES:
        return None
    now = now or datetime.now(UTC)
    return {
        "id": event_id,
        "type": event_type,
        "payload": body if body is not None else event,
        "session_id": session_id,
        "subscription_id": subscription_id,
        "order_id": order_id,
        "status": StoredEventStatus.PENDING,
        "attempts": 0,
        "received_at": now,
        "next_attempt_at": now,
    }


@dataclass
class _Pending:
    row: dict[str, Any]
    trace: tuple[str | None, str | None] = (None, None)
    """The checkout's ``traceparent`` and ``tracestate`` (with tracing on), for the worker it is handed to."""
    answer: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def claimed(self) -> ClaimedEvent:
        """The stored event as a worker's claim would have handed it out."""
        row = self.row
        return ClaimedEvent(
            id=row["id"],
            type=row["type"],
            session_id=row["session_id"],
            order_id=row["order_id"],
            attempts=0,
            subscription_id=row["subscription_id"],
            traceparent=self.trace[0],
            tracestate=self.trace[1],
        )


Handoff = Callable[[list[ClaimedEvent]], None]
"""Takes events just stored and leased to this process (``WebhookWorker.hand``)."""


class EventIntake:
    """Stores verified events for the webhook endpoint, several per transaction when they arrive together."""

    def __init__(
        self,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        *,
        max_batch: int = 100,
        pressure: WebhookPressure | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._max_batch = max_batch
        self.pressure = pressure or WebhookPressure()
        """Marked by the webhook route for every delivery; read by this process's webhook worker."""
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._handoff: Handoff | None = None
        self._lease_seconds = 0.0

    def hand_to(self, handoff: Handoff, *, lease_seconds: float) -> None:
        """Hand every event stored from now on to ``handoff`` after its commit, leased to this process for
        ``lease_seconds`` (this process's webhook worker: see the module docstring)."""
        self._handoff = handoff
        self._lease_seconds = lease_seconds

    async def record(self, event: dict[str, Any], *, body: str | None = None) -> str:
        """Store a verified event once; returns ``stored``, ``duplicate`` or ``ignored`` after the commit.
        ``body``: the JSON text of ``event``, stored as it is (``stored_row``)."""
        row = stored_row(event, body=body)
        if row is None:
            return "ignored"
        pending = _Pending(row)
        if tracing.ENABLED:
            pending.trace = _link_to_checkout(event, row)
        self._queue.put_nowait(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="webhook-event-intake")
        # shield: a client that hangs up must not cancel the commit other requests share.
        return await asyncio.shield(pending.answer)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.answer.done():
                        item.answer.set_exception(RuntimeError("the service is shutting down"))
                raise

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            await self._commit(batch)
        except DBAPIError as exc:
            if len(batch) == 1 or database_unreachable(exc):
                _fail(batch, exc)  # unreachable: every request answers 503 and Stripe retries
                return
            log.warning("webhook batch refused; storing its events one by one", error=str(exc)[:500])
            for item in batch:
                try:
                    await self._commit([item])
                except Exception as single:
                    _fail([item], single)
        except Exception as exc:  # the pool timed out, or anything else: never leave a request waiting
            _fail(batch, exc)

    async def _commit(self, batch: list[_Pending]) -> None:
        uow = self._unit_of_work()
        lease = self._lease_seconds if self._handoff is not None else 0.0
        async with uow:
            inserted = await uow.stripe_events.add_many([item.row for item in batch], lease_seconds=lease)
            await uow.commit()
        if self._handoff is not None and inserted:
            handed: dict[str, ClaimedEvent] = {}
            for item in batch:
                if item.row["id"] in inserted:
                    handed.setdefault(item.row["id"], item.claimed())
            self._handoff(list(handed.values()))
        for item in batch:
            event_id = item.row["id"]
            outcome = "stored" if event_id in inserted else "duplicate"
            inserted.discard(event_id)  # a repeat of the same id later in this batch is a duplicate
            if not item.answer.done():
                item.answer.set_result(outcome)


def _link_to_checkout(event: dict[str, Any], row: dict[str, Any]) -> tuple[str | None, str | None]:
    """The webhook's request span (a trace of its own: Stripe sends no ``traceparent``) gets a link to the
    checkout whose session it reports, named in the session's metadata (docs/tracing.md); that checkout's
    ``traceparent`` and ``tracestate`` are returned, for the worker the event is handed to."""
    metadata = event.get("data", {}).get("object", {}).get("metadata")
    tracing.annotate(
        {
            "spawnpoint.order_id": row["order_id"],
            "spawnpoint.stripe_event_id": row["id"],
            "stripe.event_type": row["type"],
        }
    )
    if not isinstance(metadata, dict):
        return None, None
    tracing.link_current(metadata, {"spawnpoint.link": "checkout"})
    parent, state = metadata.get("traceparent"), metadata.get("tracestate")
    return (parent if isinstance(parent, str) else None, state if isinstance(state, str) else None)


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for item in batch:
        if not item.answer.done():
            item.answer.set_exception(exc)
