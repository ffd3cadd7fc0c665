"""The projection's handler path with the in-memory unit of work: no database, no broker.

The projection's rules are tested purely (``test_projection_*``); these tests cover what the handler
adds around them: the inbox and the duplicate path, the per-order lock, versions that move only with a
visible change, the change log and its announcement at commit, and rebuild's check mode.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest
from status_service_support import OrderStory, redelivered

from spawnpoint_contracts import Event
from status_service.domain.projection import project
from status_service.metrics import EVENTS
from status_service.service_layer.handlers import HANDLERS, apply_event, projection_subscription
from status_service.service_layer.projector import CONSUMER, count_delivery, project_event, rebuild
from status_service.testing import FakeStatuses, FakeStatusUnitOfWork

pytestmark = pytest.mark.unit


def _counted(event_type: str, outcome: str) -> float:
    value: float = EVENTS.labels(event_type, outcome)._value.get()
    return value


def test_every_event_type_is_projected_and_duplicates_are_counted_under_the_pinned_consumer_name() -> None:
    subscription = projection_subscription(FakeStatusUnitOfWork)
    assert dict(HANDLERS) == {Event: [project_event]}
    assert subscription.handlers is HANDLERS and subscription.on_duplicate is count_delivery
    assert subscription.inbox_consumer == CONSUMER == "status-service.projection"


async def test_a_new_event_is_stored_projected_logged_and_announced_once_committed() -> None:
    uow = FakeStatusUnitOfWork()
    s = OrderStory()
    created = s.created()
    applied = await apply_event(lambda: uow, created)
    assert not applied.duplicate and applied.outcome is not None and applied.outcome.changed
    assert uow.inbox == {(CONSUMER, str(created.event_id))} and uow.commits == 1
    row = uow.fake_statuses.rows[s.order_id]
    assert (row.status, row.phase, row.version) == ("PENDING", "awaiting_payment", 1)
    assert [c.version for c in uow.fake_statuses.changes] == [1]
    [announced] = uow.fake_statuses.snapshots()
    assert (announced.order_id, announced.version, announced.status) == (s.order_id, 1, "PENDING")
    assert applied.outcome.snapshot is not None and applied.outcome.snapshot.body == announced.body
    assert uow.fake_statuses.locked == [[s.order_id]]


async def test_a_redelivery_only_counts_as_a_delivery() -> None:
    uow = FakeStatusUnitOfWork()
    s = OrderStory()
    paid = s.paid()
    await apply_event(lambda: uow, s.created())
    await apply_event(lambda: uow, paid)
    duplicates = _counted("OrderPaid", "duplicate")
    again = await apply_event(lambda: uow, redelivered(paid))
    assert again.duplicate and again.outcome is None
    assert _counted("OrderPaid", "duplicate") == duplicates + 1
    assert uow.fake_statuses.events[paid.event_id].deliveries == 2
    assert uow.fake_statuses.rows[s.order_id].version == 2
    assert [snapshot.version for snapshot in uow.fake_statuses.snapshots()] == [1, 2]
    assert uow.commits == 3, "the redelivery commits its delivery count"


async def test_an_event_stored_before_but_new_to_the_inbox_is_a_duplicate_too() -> None:
    """An inbox entry pruned, or a manual replay with the same event id: the event row says it is known."""
    statuses = FakeStatuses()
    s = OrderStory()
    paid = s.paid()
    await apply_event(partial(FakeStatusUnitOfWork, statuses), s.created())
    await apply_event(partial(FakeStatusUnitOfWork, statuses), paid)
    pruned = FakeStatusUnitOfWork(statuses)  # the same tables, an empty inbox
    applied = await apply_event(lambda: pruned, redelivered(paid))
    assert applied.duplicate
    assert pruned.inbox == {(CONSUMER, str(paid.event_id))}, "the inbox learns the event again"
    assert statuses.events[paid.event_id].deliveries == 2
    assert statuses.rows[s.order_id].version == 2 and len(statuses.announced) == 2


async def test_a_change_nobody_can_see_keeps_the_version_and_announces_nothing() -> None:
    uow = FakeStatusUnitOfWork()
    s = OrderStory()
    created = s.created()
    await apply_event(lambda: uow, s.paid())
    late = await apply_event(lambda: uow, created)  # a late OrderCreated: still PAID, one more event counted
    assert late.outcome is not None and not late.outcome.changed and late.outcome.drifted
    row = uow.fake_statuses.rows[s.order_id]
    assert (row.status, row.version, row.events_applied) == ("PAID", 1, 2)
    assert len(uow.fake_statuses.changes) == 1 and len(uow.fake_statuses.announced) == 1


async def test_any_arrival_order_with_duplicates_gives_the_pure_projection_and_gapless_versions() -> None:
    s = OrderStory()
    events: list[Event] = [s.created(), s.paid(), s.retry(), s.server_created(), s.installed()]
    expected = project(events)
    assert expected is not None
    rows = set()
    for arrival in itertools.islice(itertools.permutations(events), 0, None, 7):
        statuses = FakeStatuses()
        for event in [*arrival, redelivered(arrival[0])]:
            await apply_event(partial(FakeStatusUnitOfWork, statuses), event)
        row = statuses.rows[s.order_id]
        rows.add((row.status, row.phase, row.message, row.server_id, row.updated_at, row.events_applied))
        assert [c.version for c in statuses.changes] == list(range(1, row.version + 1))
        assert [a.version for a in statuses.snapshots()] == list(range(1, row.version + 1))
    assert rows == {
        (
            expected.status.value,
            expected.phase.value,
            expected.message,
            expected.server_id,
            expected.updated_at,
            len(events),
        )
    }


async def test_a_failed_projection_leaves_no_event_no_row_and_no_inbox_entry() -> None:
    class Broken(FakeStatuses):
        async def save(self, row: object, change: object = None) -> None:
            raise RuntimeError("database went away")

    uow = FakeStatusUnitOfWork(Broken())
    s = OrderStory()
    with pytest.raises(RuntimeError):
        await apply_event(lambda: uow, s.created())
    assert not uow.inbox and not uow.fake_statuses.events and not uow.fake_statuses.rows
    assert not uow.fake_statuses.changes and not uow.fake_statuses.announced and uow.commits == 0


async def test_rebuild_check_writes_nothing_and_rebuild_repairs_drift_with_a_new_version() -> None:
    statuses = FakeStatuses()
    good, drifted = OrderStory(), OrderStory()
    for story in (good, drifted):
        for event in (story.created(), story.paid(), story.server_created()):
            await apply_event(partial(FakeStatusUnitOfWork, statuses), event)
    statuses.rows[drifted.order_id].message = "stale"  # what a projection bug would leave behind
    version = statuses.rows[drifted.order_id].version

    check = await rebuild(partial(FakeStatusUnitOfWork, statuses), batch_size=1, check=True)
    assert (check.orders, check.changed, check.identical) == (2, 1, False)
    assert statuses.rows[drifted.order_id].message == "stale" and len(statuses.announced) == 6

    repaired = await rebuild(partial(FakeStatusUnitOfWork, statuses), batch_size=1)
    assert (repaired.orders, repaired.changed) == (2, 1)
    assert statuses.rows[drifted.order_id].version == version + 1
    assert statuses.snapshots()[-1].order_id == drifted.order_id
    assert (await rebuild(partial(FakeStatusUnitOfWork, statuses))).identical
