"""The rental through the handler path (in-memory unit of work), the snapshot and the queue: a rental
change is a visible change (a new version, a logged change, an announcement, a new ETag and stream
frame); a stale, doubled or reordered rental changes nothing; the projection queue receives all seven."""

from __future__ import annotations

import itertools
import json
from functools import partial

import pytest
from status_service_support import OrderStory, on, redelivered

from spawnpoint_contracts import (
    BY_ROUTING_KEY,
    DesiredServerState,
    DesiredServerStateChanged,
    Event,
    RentalCause,
    RentalChanged,
    RentalPhase,
    ServerActionFailed,
    ServerResized,
    ServerSuspended,
    ServerTerminated,
    ServerUnsuspended,
)
from status_service.domain.projection import project
from status_service.queues import STATUS_PROJECTION
from status_service.service_layer.handlers import apply_event
from status_service.service_layer.projector import rebuild
from status_service.service_layer.snapshot import Snapshot
from status_service.testing import FakeStatuses, FakeStatusUnitOfWork

pytestmark = pytest.mark.unit

C, P = RentalCause, RentalPhase
RENTAL_EVENTS: tuple[type[Event], ...] = (
    RentalChanged,
    DesiredServerStateChanged,
    ServerSuspended,
    ServerUnsuspended,
    ServerResized,
    ServerTerminated,
    ServerActionFailed,
)


def _topic_matches(binding: str, key: str) -> bool:
    """AMQP topic matching (``*`` one word, ``#`` zero or more)."""

    def match(pattern: list[str], words: list[str]) -> bool:
        if not pattern:
            return not words
        if pattern[0] == "#":
            return any(match(pattern[1:], words[i:]) for i in range(len(words) + 1))
        return bool(words) and pattern[0] in ("*", words[0]) and match(pattern[1:], words[1:])

    return match(binding.split("."), key.split("."))


def test_the_projection_queue_receives_the_seven_rental_and_panel_events() -> None:
    keys = {kind.routing_key for kind in RENTAL_EVENTS}
    assert keys <= set(BY_ROUTING_KEY)
    for key in keys:
        assert any(_topic_matches(b, key) for b in STATUS_PROJECTION.bindings), key


async def test_a_rental_change_is_a_visible_change_announced_with_the_rental() -> None:
    uow = FakeStatusUnitOfWork()
    s = OrderStory()
    for event in (s.created(), s.paid(), s.server_created(), s.installed()):
        await apply_event(lambda: uow, event)
    before = uow.fake_statuses.snapshots()[-1]
    assert before.rental is None and json.loads(before.body)["rental"] is None
    applied = await apply_event(lambda: uow, s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1)))
    assert applied.outcome is not None and applied.outcome.changed
    announced = uow.fake_statuses.snapshots()[-1]
    assert announced.version == before.version + 1
    body = json.loads(announced.body)
    assert (body["status"], body["phase"], body["message"]) == ("CREATED", "ready", "Server ready")
    assert body["rental"]["phase"] == "active" and body["rental"]["message"] == "Renews on 1 Dec"
    assert body["rental"]["server_state"] == "running"
    assert announced.etag != before.etag
    assert b"Renews on 1 Dec" in announced.sse
    row = uow.fake_statuses.rows[s.order_id]
    assert row.rental == body["rental"] and uow.fake_statuses.changes[-1].rental == body["rental"]


async def test_stale_and_doubled_rentals_and_the_desired_state_change_nothing_visible() -> None:
    uow = FakeStatusUnitOfWork()
    s = OrderStory()
    v1 = s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1))
    v2 = s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, next_payment_attempt=on(12, 3), grace_until=on(12, 16))
    for event in (s.created(), s.paid(), v2):
        await apply_event(lambda: uow, event)
    version = uow.fake_statuses.rows[s.order_id].version
    for late in (v1, redelivered(v2), s.desired(2, DesiredServerState.RUNNING, C.PAYMENT_FAILED)):
        applied = await apply_event(lambda: uow, late)
        assert applied.duplicate or (applied.outcome is not None and not applied.outcome.changed)
    row = uow.fake_statuses.rows[s.order_id]
    assert row.version == version
    assert row.rental is not None and row.rental["phase"] == "past_due"
    assert row.rental["message"] == "Payment failed: we will try again on 3 Dec; your server keeps running until 16 Dec"


async def test_any_arrival_order_ends_in_the_pure_projection_with_gapless_versions_and_rebuild_agrees() -> None:
    s = OrderStory()
    base: list[Event] = [s.created(), s.paid(), s.server_created(), s.installed()]
    rental: list[Event] = [
        s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1)),
        s.rental(2, P.LAPSED, C.REFUNDED, terminate_at=on(12, 9)),
        s.suspended(2, reason="refunded"),
        s.rental(3, P.LAPSED, C.TERMINATION_WARNING, terminate_at=on(12, 9)),
    ]
    expected = project([*base, *rental])
    assert expected is not None and expected.rental is not None
    for arrival in itertools.permutations(rental):
        statuses = FakeStatuses()
        for event in [*base, *arrival, redelivered(arrival[0])]:
            await apply_event(partial(FakeStatusUnitOfWork, statuses), event)
        row = statuses.rows[s.order_id]
        assert row.rental == expected.rental.public()
        assert [c.version for c in statuses.changes] == list(range(1, row.version + 1))
        assert (await rebuild(partial(FakeStatusUnitOfWork, statuses))).identical
    assert expected.rental.message == (
        "Suspended: the payment was refunded. Your server and its files will be deleted on 9 Dec"
    )


def test_the_notification_carries_the_rental() -> None:
    s = OrderStory()
    model = project([s.created(), s.rental(1, P.CANCELLING, C.CANCELLATION_SCHEDULED, ends_at=on(1, 1, 2027))])
    assert model is not None and model.rental is not None
    snapshot = Snapshot(
        order_id=s.order_id,
        user_id="alice",
        version=2,
        status="PENDING",
        phase="awaiting_payment",
        message="Waiting for payment",
        server_id=None,
        connect_path=None,
        updated_at=model.updated_at,
        rental=model.rental.public(),
    )
    again = Snapshot.from_notify(snapshot.to_notify())
    assert (again.body, again.etag) == (snapshot.body, snapshot.etag)
    assert json.loads(again.body)["rental"]["message"] == "Cancelled: runs until 1 Jan"
    assert len(snapshot.to_notify()) < 8000
