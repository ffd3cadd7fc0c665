"""``spawnctl dlq`` (the installed console script, run as a subprocess) against the real RabbitMQ.

Each test gets its own namespace with the provisioner's real topology (quorum work queue with its
dead-letter exchange, classic ``.dlq``), declared by the kit. Both kinds of dead letters are made for
real: a copy with our reason headers (what ``UnitOfWork.dead_letter`` stages in the outbox), and a
message the broker itself dead-lettered after a reject (``x-death``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from provisioner.queues import PROVISIONER_ORDER_PAID
from spawnctl.system import ALL_QUEUES
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.settings import CommonSettings

from .provisioning_support import PROVISIONER_QUEUE, spawnctl
from .support import BrokerProbe, eventually

pytestmark = pytest.mark.integration

DLQ = f"{PROVISIONER_QUEUE}.dlq"


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    ns = f"tdlq{uuid.uuid4().hex[:8]}."
    broker = RabbitBroker(CommonSettings().broker_url.get_secret_value())
    await broker.connect()
    try:
        await Topology(ns).declare(broker, [PROVISIONER_ORDER_PAID])
    finally:
        await broker.stop()
    yield ns
    connection = await aio_pika.connect(CommonSettings().broker_url.get_secret_value())
    try:
        topology = Topology(ns)
        channel = await connection.channel()
        for queue in (topology.queue_name(PROVISIONER_ORDER_PAID), topology.dlq_name(PROVISIONER_ORDER_PAID)):
            await channel.queue_delete(queue)
        for exchange in (topology.events_exchange.name, topology.dead_letter_exchange.name):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture
async def probe(namespace: str) -> AsyncIterator[BrokerProbe]:
    p = BrokerProbe(namespace)
    await p.connect()
    try:
        yield p
    finally:
        await p.close()


def _event(order_id: str | None = None) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "event_type": "OrderPaid",
        "event_version": 1,
        "order_id": order_id or str(uuid.uuid4()),
        "correlation_id": "corr-1",
        "producer": "payment-service",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {},
    }
    return event_id, json.dumps(body).encode()


async def _outbox_dead_letter(
    probe: BrokerProbe, *, reason: str = "no_capacity", replays: int = 0, queue: str | None = None
) -> tuple[str, bytes]:
    """A copy as the consumer's outbox makes it: reason headers, the original message id and headers."""
    event_id, body = _event()
    headers: dict[str, Any] = {
        "event_type": "OrderPaid",
        "event_version": 1,
        "traceparent": "00-abc-def-01",
        "x-spawnpoint-reason": reason,
        "x-spawnpoint-detail": "no node has room for this server",
        "x-spawnpoint-queue": probe.queue(queue or PROVISIONER_QUEUE),
        "x-spawnpoint-dead-lettered-at": datetime.now(UTC).isoformat(),
    }
    if replays:
        headers["x-replay-count"] = replays
    await probe.publish_to_queue(DLQ, body, message_id=event_id, headers=headers)
    return event_id, body


async def _broker_dead_letter(probe: BrokerProbe) -> tuple[str, bytes]:
    """A message the broker dead-letters itself: published to the work queue, then rejected."""
    event_id, body = _event()
    await probe.publish_to_queue(PROVISIONER_QUEUE, body, message_id=event_id, headers={"event_type": "OrderPaid"})
    assert probe.connection is not None
    channel = await probe.connection.channel()
    try:
        queue = await channel.declare_queue(probe.queue(PROVISIONER_QUEUE), passive=True)
        message = await queue.get(no_ack=False, timeout=5)
        assert message is not None and message.message_id == event_id
        await message.reject(requeue=False)
    finally:
        await channel.close()
    return event_id, body


async def _wait_depth(probe: BrokerProbe, queue: str, depth: int) -> None:
    async def reached() -> bool:
        return await probe.depth(queue) == depth

    await eventually(reached, timeout=10, what=f"{queue} holding {depth}")


async def test_list_show_and_export_read_both_kinds_without_consuming(
    namespace: str, probe: BrokerProbe, tmp_path: Path
) -> None:
    ours, _ = await _outbox_dead_letter(probe)
    theirs, theirs_body = await _broker_dead_letter(probe)
    await _wait_depth(probe, DLQ, 2)

    listed = await spawnctl(namespace, "dlq", "list")
    assert listed.code == 0, listed.stderr
    assert ours[:20] in listed.stdout and theirs[:20] in listed.stdout
    rows = [json.loads(line) for line in (await spawnctl(namespace, "dlq", "list", "--json")).stdout.splitlines()]
    by_id = {r["event_id"]: r for r in rows}
    assert by_id[ours]["reason"] == "no_capacity"
    assert by_id[theirs]["reason"] == "rejected"
    assert by_id[theirs]["original_queue"] == probe.queue(PROVISIONER_QUEUE)
    assert by_id[theirs]["death_count"] == 1 and by_id[theirs]["first_failed_at"]
    assert await probe.depth(DLQ) == 2  # listing consumed nothing

    shown = await spawnctl(namespace, "dlq", "show", theirs)
    assert shown.code == 0, shown.stderr
    assert "x-death" in shown.stdout and "rejected" in shown.stdout and "OrderPaid" in shown.stdout
    whole = json.loads((await spawnctl(namespace, "dlq", "show", theirs, "--json")).stdout)
    assert whole["x_death"][0]["reason"] == "rejected" and whole["body"] == json.loads(theirs_body)
    missing = await spawnctl(namespace, "dlq", "show", str(uuid.uuid4()))
    assert missing.code == 1

    target = tmp_path / "dlq.jsonl"
    exported = await spawnctl(namespace, "dlq", "export", "-o", str(target))
    assert exported.code == 0, exported.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert {line["event_id"] for line in lines} == {ours, theirs}
    assert all(line["body_encoding"] == "json" and line["headers"] for line in lines)
    assert await probe.depth(DLQ) == 2


async def test_replay_sends_it_back_to_its_queue_with_body_id_and_headers_kept(
    namespace: str, probe: BrokerProbe
) -> None:
    ours, body = await _outbox_dead_letter(probe)
    theirs, theirs_body = await _broker_dead_letter(probe)
    await _wait_depth(probe, DLQ, 2)

    dry = await spawnctl(namespace, "dlq", "replay", "--event-id", ours, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "would replay" in dry.stdout
    assert (await probe.depth(DLQ), await probe.depth(PROVISIONER_QUEUE)) == (2, 0)

    for event_id in (ours, theirs):
        done = await spawnctl(namespace, "dlq", "replay", "--event-id", event_id)
        assert done.code == 0, done.stdout + done.stderr
    await _wait_depth(probe, PROVISIONER_QUEUE, 2)
    assert await probe.depth(DLQ) == 0
    replayed = {m.message_id: m for m in await probe.peek(PROVISIONER_QUEUE)}
    first = replayed[ours]
    assert first.body == body
    headers = dict(first.headers or {})
    assert headers["x-replay-count"] == 1 and headers["x-replayed-at"]
    assert headers["event_type"] == "OrderPaid" and headers["traceparent"] == "00-abc-def-01"
    assert headers["x-spawnpoint-last-reason"] == "no_capacity"
    assert "x-spawnpoint-reason" not in headers  # annotated afresh if it fails again
    assert first.content_type == "application/json"
    second = replayed[theirs]
    assert second.body == theirs_body
    assert "x-death" not in dict(second.headers or {})
    assert dict(second.headers or {})["x-spawnpoint-last-reason"] == "rejected"


async def test_replay_refuses_past_the_maximum_and_a_failed_publish_leaves_the_message(
    namespace: str, probe: BrokerProbe
) -> None:
    tired, _ = await _outbox_dead_letter(probe, replays=3)
    lost, _ = await _outbox_dead_letter(probe, queue="a-queue-that-is-gone")
    await _wait_depth(probe, DLQ, 2)

    refused = await spawnctl(namespace, "dlq", "replay", "--event-id", tired)
    assert refused.code == 1
    assert "refused" in refused.stdout
    failed = await spawnctl(namespace, "dlq", "replay", "--event-id", lost)
    assert failed.code == 1
    assert "failed" in failed.stdout
    assert await probe.depth(DLQ) == 2  # both still there
    assert await probe.depth(PROVISIONER_QUEUE) == 0
    allowed = await spawnctl(namespace, "dlq", "replay", "--event-id", tired, "--max-replays", "4")
    assert allowed.code == 0, allowed.stdout
    await _wait_depth(probe, DLQ, 1)


async def test_replay_by_reason_all_and_limit_with_many_messages(namespace: str, probe: BrokerProbe) -> None:
    for _ in range(22):
        await _outbox_dead_letter(probe, reason="panel_unavailable")
    await _outbox_dead_letter(probe, reason="no_capacity")
    await _wait_depth(probe, DLQ, 23)

    limited = await spawnctl(namespace, "dlq", "replay", "--reason", "panel_unavailable", "--limit", "2")
    assert limited.code == 0 and "2 replayed" in limited.stdout
    await _wait_depth(probe, DLQ, 21)
    nothing = await spawnctl(namespace, "dlq", "replay", "--reason", "invalid_request")
    assert nothing.code == 1 and "nothing matched" in nothing.stderr
    everything = await spawnctl(namespace, "dlq", "replay", "--all")
    assert everything.code == 0 and "21 replayed" in everything.stdout
    await _wait_depth(probe, DLQ, 0)
    await _wait_depth(probe, PROVISIONER_QUEUE, 23)


async def test_purge_asks_unless_told_yes(namespace: str, probe: BrokerProbe) -> None:
    keep, _ = await _outbox_dead_letter(probe, reason="no_capacity")
    drop, _ = await _outbox_dead_letter(probe, reason="invalid_request")
    await _wait_depth(probe, DLQ, 2)
    unconfirmed = await spawnctl(namespace, "dlq", "purge")
    assert unconfirmed.code == 1 and "--yes" in unconfirmed.stderr
    assert await probe.depth(DLQ) == 2
    one = await spawnctl(namespace, "dlq", "purge", "--reason", "invalid_request", "--yes")
    assert one.code == 0 and "deleted 1" in one.stdout
    remaining = [
        json.loads(line)["event_id"]
        for line in (await spawnctl(namespace, "dlq", "list", "--json")).stdout.splitlines()
    ]
    assert remaining == [keep] and drop not in remaining
    everything = await spawnctl(namespace, "dlq", "purge", "--yes")
    assert everything.code == 0 and "deleted 1" in everything.stdout
    assert await probe.depth(DLQ) == 0


async def test_queues_shows_every_services_dead_letter_queue_and_what_waits_in_it(
    namespace: str, probe: BrokerProbe
) -> None:
    await _outbox_dead_letter(probe)
    await _broker_dead_letter(probe)
    await _wait_depth(probe, DLQ, 2)
    shown = await spawnctl(namespace, "dlq", "queues", "--json")
    assert shown.code == 0, shown.stderr
    rows = {row["queue"]: row for row in map(json.loads, shown.stdout.splitlines())}
    assert set(rows) == {spec.name for spec in ALL_QUEUES}
    assert rows[PROVISIONER_ORDER_PAID.name]["depth"] == 2
    assert all(row["depth"] is None for name, row in rows.items() if name != PROVISIONER_ORDER_PAID.name)
    table = await spawnctl(namespace, "dlq", "queues")
    assert table.code == 0 and "provisioner.order-paid" in table.stdout and "not declared" in table.stdout


async def test_usage_errors_and_an_unreachable_broker_have_their_exit_codes(namespace: str) -> None:
    no_selector = await spawnctl(namespace, "dlq", "replay")
    assert no_selector.code == 2 and "--event-id" in no_selector.stderr
    unreachable = await spawnctl(namespace, "dlq", "list", broker_url="amqp://guest:secret@127.0.0.1:1/")
    assert unreachable.code == 3
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/" in unreachable.stderr
    assert "secret" not in unreachable.stderr + unreachable.stdout
    unknown = await spawnctl(f"{namespace}nothing-here.", "dlq", "list")
    assert unknown.code == 1 and "does not exist" in unknown.stderr
