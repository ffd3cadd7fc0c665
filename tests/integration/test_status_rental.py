"""The rental through the real broker and the real status-service: the seven rental and panel events,
published to status-service's queue as payment-service and the provisioner would (a stale one last),
reach the status body's ``rental``, wake an open stream, and appear on the timeline and the trail; the
order's ``status`` stays what the frontends switch on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from devstack import Stack
from spawnpoint_contracts import (
    DesiredServerState,
    DesiredServerStateChanged,
    DesiredServerStateChangedPayload,
    Event,
    FeatureLimits,
    Limits,
    RentalCause,
    RentalChanged,
    RentalChangedPayload,
    RentalPhase,
    ServerAction,
    ServerActionFailed,
    ServerActionFailedPayload,
    ServerResized,
    ServerResizedPayload,
    ServerSuspended,
    ServerSuspendedPayload,
    ServerTerminated,
    ServerTerminatedPayload,
    ServerUnsuspended,
    ServerUnsuspendedPayload,
    WireModel,
)

from .conftest import customer_token
from .status_support import Frames, pay, place_order
from .support import Api, BrokerProbe, eventually

pytestmark = pytest.mark.integration

C, P = RentalCause, RentalPhase
LIMITS = Limits(memory=2048, swap=0, disk=10240, io=500, cpu=200)
FEATURES = FeatureLimits(databases=0, backups=1, allocations=1)
JAN9 = datetime(2027, 1, 9, tzinfo=UTC)


class Rental:
    """One order's rental and panel events, as their producers build them."""

    def __init__(self, order_id: str) -> None:
        self.common = {"order_id": uuid.UUID(order_id), "correlation_id": f"rental-test-{order_id[:8]}"}

    def changed(self, version: int, phase: RentalPhase, cause: RentalCause, **fields: object) -> RentalChanged:
        payload = {"version": version, "phase": phase, "cause": cause, "kind": "fixed_term"}
        payload |= {"plan_id": "starter", "period_id": "once-30d", **fields}
        return RentalChanged(
            **self.common, producer="payment-service", payload=RentalChangedPayload.model_validate(payload)
        )

    def desired(self, version: int, state: DesiredServerState, reason: RentalCause) -> DesiredServerStateChanged:
        return DesiredServerStateChanged(
            **self.common,
            producer="payment-service",
            payload=DesiredServerStateChangedPayload(
                version=version, state=state, reason=reason, plan_id="starter", limits=LIMITS, feature_limits=FEATURES
            ),
        )

    def panel(self, kind: type[Event], desired_version: int, **fields: object) -> Event:
        payloads: dict[type[Event], type[WireModel]] = {
            ServerSuspended: ServerSuspendedPayload,
            ServerUnsuspended: ServerUnsuspendedPayload,
            ServerResized: ServerResizedPayload,
            ServerTerminated: ServerTerminatedPayload,
            ServerActionFailed: ServerActionFailedPayload,
        }
        payload = payloads[kind].model_validate({"server_id": 1, "desired_version": desired_version, **fields})
        return kind.model_validate({**self.common, "producer": "provisioner", "payload": payload})


async def _publish(broker: BrokerProbe, *events: Event) -> None:
    for event in events:
        await broker.publish_to_queue(
            "status-service.projection",
            event.to_json_bytes(),
            message_id=str(event.event_id),
            headers={"event_type": event.event_type},
        )


async def test_the_seven_rental_events_reach_the_status_the_stream_the_timeline_and_the_trail(
    api: Api, stack: Stack, broker: BrokerProbe
) -> None:
    token, operator = customer_token(), customer_token(operator=True)
    auth = api.auth(token)
    order_id = await place_order(api, token)
    await pay(api, token, order_id)
    await api.wait_status(token, order_id, "CREATED")

    async def status_with(phase: str, server_state: str, *events: Event) -> dict[str, Any] | None:
        """The status once its rental is in ``phase`` / ``server_state`` and every event is in the trail."""
        body: dict[str, Any] = (await api.status(token, order_id)).json()
        rental = body["rental"]
        if not rental or (rental["phase"], rental["server_state"]) != (phase, server_state):
            return None
        trail = await api.http.get(
            api.url("status-service", f"/operator/orders/{order_id}/trail"), headers=api.auth(operator)
        )
        stored = {e["event_id"] for e in trail.json()["events"]}
        return body if {str(e.event_id) for e in events} <= stored else None

    # payment-service's own RentalChanged (a fixed term, version 1) came with the payment.
    paid = await eventually(lambda: status_with("active", "running"), timeout=60, what="the real rental")
    assert (paid["status"], paid["rental"]["kind"]) == ("CREATED", "fixed_term")
    assert paid["rental"]["message"].startswith("Paid until ")

    r = Rental(order_id)
    v2 = r.changed(2, P.ACTIVE, C.RENEWED, paid_through=datetime(2027, 1, 1, tzinfo=UTC))
    v3 = r.changed(3, P.LAPSED, C.LAPSED, paid_through=datetime(2027, 1, 1, tzinfo=UTC), terminate_at=JAN9)
    failed = r.panel(
        ServerActionFailed,
        3,
        action=ServerAction.SUSPEND,
        reason="suspend_failed",
        message="DaemonConnectionException on wings-03",
        attempts=5,
        replayable=True,
    )
    suspended = r.panel(ServerSuspended, 3, reason="lapsed")
    main = stack.config.url("status-service")
    stream = f"{main}/orders/{order_id}/events"
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=60.0)) as http,
        aconnect_sse(http, "GET", stream, headers=auth) as source,
    ):
        frames = Frames(source)
        now = await frames.next()
        await _publish(broker, v3, r.desired(3, DesiredServerState.SUSPENDED, C.LAPSED))
        woken = await frames.next()  # a RentalChanged wakes the stream like any other change
        assert woken.id == now.id + 1 and woken.status == "CREATED"
        assert (woken.body["rental"]["phase"], woken.body["rental"]["server_state"]) == ("suspended", "running")

    await _publish(broker, failed, suspended, v2)  # v2 is stale: published after v3
    lapsed = await eventually(lambda: status_with("suspended", "suspended", failed, suspended, v2), timeout=60)
    assert lapsed["rental"]["message"] == (
        "Suspended: the paid time is over. Pay again to get it back; files are kept until 9 Jan"
    )
    assert lapsed["rental"]["paid_through"] == "2027-01-01T00:00:00Z"
    assert (lapsed["status"], lapsed["phase"]) == ("CREATED", "ready")

    v4 = r.changed(4, P.ACTIVE, C.RENEWED, paid_through=datetime(2027, 2, 1, tzinfo=UTC))
    restored = [r.desired(4, DesiredServerState.RUNNING, C.RENEWED), r.panel(ServerUnsuspended, 4, reason="renewed")]
    resized = r.panel(ServerResized, 4, plan_id="starter", limits=LIMITS, feature_limits=FEATURES)
    await _publish(broker, v4, *restored, resized)
    back = await eventually(lambda: status_with("active", "running", v4, *restored, resized), timeout=60)
    assert back["rental"]["message"] == "Paid until 1 Feb"

    ended = [r.changed(5, P.ENDED, C.ENDED, terminate_at=JAN9), r.panel(ServerTerminated, 6)]
    await _publish(broker, *ended)
    gone = await eventually(lambda: status_with("ended", "terminated", *ended), timeout=60)
    assert gone["rental"]["message"] == "Ended: your server and its files were deleted"

    timeline = (await api.http.get(api.url("status-service", f"/orders/{order_id}/timeline"), headers=auth)).json()
    codes = [e["code"] for e in timeline["entries"]]
    assert "rental_activated" in codes
    expected = [
        "rental_renewed",
        "rental_lapsed",
        "server_action_failed",
        "server_suspended",
        "rental_renewed",
        "server_unsuspended",
        "server_resized",
        "rental_ended",
        "server_terminated",
    ]
    remaining = iter(codes)  # in this order (the real provisioner may add outcomes of its own in between)
    assert all(code in remaining for code in expected), codes
    assert "Daemon" not in str(timeline) and "wings" not in str(timeline)
    trail = (
        await api.http.get(api.url("status-service", f"/operator/orders/{order_id}/trail"), headers=api.auth(operator))
    ).json()
    assert {
        "RentalChanged",
        "DesiredServerStateChanged",
        "ServerSuspended",
        "ServerUnsuspended",
        "ServerResized",
        "ServerTerminated",
        "ServerActionFailed",
    } <= {e["event_type"] for e in trail["events"]}
    by_id = {e["event_id"]: e for e in trail["events"]}
    assert "DaemonConnectionException" in by_id[str(failed.event_id)]["summary"]
    assert "v3 lapsed (lapsed)" in by_id[str(v3.event_id)]["summary"]
