"""The customer's live view through the real system: an SSE stream follows an order from PENDING to
CREATED while it is paid through the Stripe stand-in and created on the panel stand-in; a reconnect with
``Last-Event-ID`` to another status-service process receives exactly what was missed; polls answer
``If-None-Match`` with 304 until something changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from devstack import Stack
from spawnpoint_contracts import OrderRefunded, OrderRefundedPayload

from .conftest import customer_token
from .status_support import Frames, distinct, pay, place_order, second_status_service
from .support import Api, BrokerProbe, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replica(stack: Stack) -> Iterator[str]:
    """A second status-service process: streams there must hear changes projected by either process."""
    with second_status_service(stack.config) as url:
        yield url


async def test_a_stream_follows_the_order_to_created_and_a_reconnect_misses_nothing(
    api: Api, stack: Stack, replica: str, broker: BrokerProbe
) -> None:
    token = customer_token()
    auth = api.auth(token)
    order_id = await place_order(api, token)
    main = stack.config.url("status-service")

    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=90.0)) as http:
        async with aconnect_sse(http, "GET", f"{replica}/orders/{order_id}/events", headers=auth) as live_source:
            live = Frames(live_source)
            first = await live.next()
            assert first.status == "PENDING"
            async with aconnect_sse(http, "GET", f"{main}/orders/{order_id}/events", headers=auth) as brief_source:
                assert await Frames(brief_source).next() == first  # then this client goes away

            await pay(api, token, order_id)
            frames = [first, *await live.until("CREATED")]

        ids = [f.id for f in frames]
        assert ids == list(range(first.id, first.id + len(frames)))  # every change, in order, none twice
        assert distinct([f.status for f in frames]) == ["PENDING", "PAID", "CREATED"]
        ready = frames[-1].body
        assert ready["phase"] == "ready" and ready["connect_path"] == f"/gameserver/{ready['server_id']}"
        assert [s["identifier"] for s in await api.panel_servers(external_id=order_id)] == [ready["server_id"]]

        resume = {**auth, "Last-Event-ID": str(first.id)}
        async with aconnect_sse(http, "GET", f"{main}/orders/{order_id}/events", headers=resume) as resumed_source:
            assert await Frames(resumed_source).until("CREATED") == frames[1:]

        # Connected at the latest id, the next frame is the next change: nothing is repeated.
        latest = {**auth, "Last-Event-ID": str(frames[-1].id)}
        async with aconnect_sse(http, "GET", f"{replica}/orders/{order_id}/events", headers=latest) as quiet_source:
            quiet = Frames(quiet_source)
            await _refund(broker, order_id, frames[-1])
            after = await quiet.next()
        assert (after.id, after.body["phase"]) == (frames[-1].id + 1, "refunded")

    timeline = (await api.http.get(api.url("status-service", f"/orders/{order_id}/timeline"), headers=auth)).json()
    codes = [e["code"] for e in timeline["entries"]]
    assert codes[:2] == ["order_placed", "payment_received"]
    assert codes[-3:] == ["server_created", "server_ready", "refunded"]


async def _refund(broker: BrokerProbe, order_id: str, ready: Any) -> None:
    """An OrderRefunded delivered to status-service's queue, as payment-service would publish one."""
    refund = OrderRefunded(
        order_id=order_id,
        correlation_id=f"status-test-{order_id[:8]}",
        producer="payment-service",
        payload=OrderRefundedPayload(refund_id="re_status_test", amount=500, currency="eur", reason="requested"),
    )
    await broker.publish_to_queue(
        "status-service.projection",
        refund.to_json_bytes(),
        message_id=str(refund.event_id),
        headers={"event_type": refund.event_type},
    )


async def test_if_none_match_answers_304_until_the_order_changes(api: Api) -> None:
    token = customer_token()
    order_id = await place_order(api, token)
    url = api.url("status-service", f"/orders/{order_id}/status")
    first = await api.http.get(url, headers=api.auth(token))
    etag = first.headers["etag"]
    assert first.headers["retry-after"] == str(first.json()["poll_after_seconds"])
    assert first.headers["cache-control"] == "private, no-cache"

    unchanged = await api.http.get(url, headers={**api.auth(token), "If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", etag)

    await pay(api, token, order_id)

    async def changed() -> httpx.Response | None:
        response = await api.http.get(url, headers={**api.auth(token), "If-None-Match": etag})
        return response if response.status_code != 304 else None

    after = await eventually(changed, timeout=60, what="a 200 once the order changed")
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert after.json()["status"] in ("PAID", "CREATED")
