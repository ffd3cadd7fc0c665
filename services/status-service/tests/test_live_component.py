"""Component tests of the live parts against the real PostgreSQL: the change feed (one LISTEN
connection) keeping the status cache and the stream hub current, including across a lost connection,
and the HTTP API served by a real uvicorn server in this process (polls with ETags, the event stream
and its resumption, the timeline, the operator trail, and who may see what)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from status_service_support import OrderStory, on, redelivered

from spawnpoint_contracts import Event, RentalCause, RentalPhase
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.testing import TcpLink, eventually
from status_service.bootstrap import build_api
from status_service.config import Settings
from status_service.deps import services_of
from status_service.entrypoints.change_feed import ChangeFeed
from status_service.metrics import CACHE_LOOKUPS
from status_service.service_layer.handlers import apply_event
from status_service.service_layer.queries import StatusQueries
from status_service.service_layer.unit_of_work import SqlStatusUnitOfWork

pytestmark = pytest.mark.component

T = TypeVar("T")
C, P = RentalCause, RentalPhase
SECRET = "status-service-component-test-secret-0123456789"


def token(user: str, *, operator: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, sub=user, roles=('operator',) if operator else ())}"}


@dataclass
class Live:
    queries: StatusQueries
    feed: ChangeFeed
    unit_of_work: Callable[[], SqlStatusUnitOfWork]
    url: str
    app: FastAPI

    async def apply(self, *events: Event) -> None:
        for event in events:
            await apply_event(self.unit_of_work, event)


@pytest.fixture(scope="module")
async def live(
    database_url: str, engine: AsyncEngine, unit_of_work: Callable[[], SqlStatusUnitOfWork]
) -> AsyncIterator[Live]:
    # 50 streams per user: test_many_streams_share_one_change opens 20 for one customer.
    settings = Settings(database_url=database_url, jwt_secret=SECRET, stream_heartbeat_seconds=0.5, streams_per_user=50)
    queries = StatusQueries.create(engine, cache_size=1000)
    feed = ChangeFeed(database_url, queries.cache, queries.hub, queries.current)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        await asyncio.wait_for(feed.connected.wait(), 10)
        try:
            yield
        finally:
            stop.set()
            await task

    app = build_api(settings, queries, feed, lifespan=lifespan, checks={})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: _true(server.started), what="uvicorn started")
    try:
        yield Live(queries, feed, unit_of_work, f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await serving


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=10.0) as client:
        yield client


def _lookups(result: str) -> float:
    value: float = CACHE_LOOKUPS.labels(result)._value.get()
    return value


# the change feed ---------------------------------------------------------------------------------


async def test_changes_reach_the_cache_through_the_feed_without_a_query(live: Live) -> None:
    s = OrderStory()
    assert await live.queries.cache.get(s.order_id) is None  # unknown, and remembered as such
    await live.apply(s.created())

    async def version() -> int | None:
        snapshot = await live.queries.cache.get(s.order_id)
        return snapshot.version if snapshot is not None else None

    assert await eventually(version, what="v1 in the cache") == 1
    misses = _lookups("miss")
    await live.apply(s.paid())
    assert await eventually(lambda: _at_least(version, 2), what="v2 in the cache") == 2
    assert _lookups("miss") == misses  # the new state came with the notification


async def _at_least(read: Callable[[], Awaitable[int | None]], wanted: int) -> int | None:
    value = await read()
    return value if value is not None and value >= wanted else None


async def test_a_lost_listener_switches_the_cache_off_and_streams_catch_up_after_reconnecting(
    live: Live, database_url: str, engine: AsyncEngine
) -> None:
    link = TcpLink(make_url(database_url).port or 5432)  # the network to the database, which the test can cut
    await link.start()
    queries = StatusQueries.create(engine, cache_size=100)
    through_link = make_url(database_url).set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    feed = ChangeFeed(through_link, queries.cache, queries.hub, queries.current)
    stop = asyncio.Event()
    listening = asyncio.create_task(feed.run(stop))
    s = OrderStory()
    try:
        await asyncio.wait_for(feed.connected.wait(), 10)
        await live.apply(s.created())
        subscription = queries.hub.subscribe(s.order_id)
        current = await eventually(lambda: queries.cache.get(s.order_id), what="v1")
        subscription.seed(current)

        link.cut()
        await eventually(lambda: _true(not feed.connected.is_set()), what="the feed noticing the cut")
        assert not queries.cache.enabled
        bypassed = _lookups("bypass")
        await live.apply(s.paid(), s.server_created())  # notifications lost: this process is not listening
        assert (await queries.cache.get(s.order_id)) is not None
        assert _lookups("bypass") == bypassed + 1  # while the feed is down, polls read the database

        link.up = True
        changes = await asyncio.wait_for(subscription.changes_after(1), 15)
        assert [(c.version, c.phase) for c in changes] == [(2, "paid"), (3, "installing")]
        assert feed.connected.is_set() and queries.cache.enabled
        subscription.close()
    finally:
        stop.set()
        await link.close()
        await asyncio.wait_for(listening, 10)


# polling -----------------------------------------------------------------------------------------


async def test_poll_answers_with_etag_and_304_until_something_changes(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="carol")
    await live.apply(s.created(), s.paid())
    url = f"/orders/{s.order_id}/status"
    first = await eventually(lambda: _ok(http, url, token("carol")), what="the order")
    body = first.json()
    assert (body["status"], body["phase"], body["version"], body["poll_after_seconds"]) == ("PAID", "paid", 2, 2)
    etag = first.headers["etag"]
    assert first.headers["retry-after"] == "2"
    assert first.headers["cache-control"] == "private, no-cache"

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = await http.get(url, headers={**token("carol"), "If-None-Match": if_none_match})
        assert unchanged.status_code == 304, if_none_match
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == etag and unchanged.headers["retry-after"] == "2"

    await live.apply(s.server_created())

    async def changed() -> httpx.Response | None:
        response = await http.get(url, headers={**token("carol"), "If-None-Match": etag})
        return response if response.status_code == 200 else None

    after = await eventually(changed, what="a 200 after the change")
    assert after.headers["etag"] != etag
    assert (after.json()["phase"], after.json()["version"]) == ("installing", 3)


async def _ok(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response | None:
    response = await http.get(url, headers=headers)
    return response if response.status_code == 200 else None


async def test_the_fast_path_and_the_documented_route_answer_alike(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="dave")
    await live.apply(s.created())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("dave")), what="the order")
    plain = build_api(services_of(live.app).settings, live.queries, live.feed, lifespan=_no_lifespan, checks={})
    plain.middleware_stack = FastAPI.build_middleware_stack(plain)  # everything but the fast path
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://test") as direct:
        for path, headers in [
            (f"/orders/{s.order_id}/status", token("dave")),
            (f"/orders/{s.order_id}/status", token("erin")),
            (f"/orders/{OrderStory().order_id}/status", token("dave")),
            (f"/orders/{s.order_id}/status", {**token("dave"), "If-None-Match": "*"}),
        ]:
            fast, routed = await http.get(path, headers=headers), await direct.get(path, headers=headers)
            assert (fast.status_code, fast.content) == (routed.status_code, routed.content), path
            for header in ("etag", "retry-after", "cache-control", "content-type"):
                assert fast.headers.get(header) == routed.headers.get(header), header


async def test_the_fast_path_takes_a_correlation_id_as_the_shared_middleware_does(
    live: Live, http: httpx.AsyncClient
) -> None:
    s = OrderStory(user_id="dave")
    await live.apply(s.created())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("dave")), what="the order")
    path = f"/orders/{s.order_id}/status"
    kept = await http.get(path, headers={**token("dave"), "X-Correlation-ID": "poll-0001"})
    assert (kept.status_code, kept.headers["x-correlation-id"]) == (200, "poll-0001")
    for unusable in ("two words", "x" * 201):
        fast = await http.get(path, headers={**token("dave"), "X-Correlation-ID": unusable})
        routed = await http.get(path, headers={"X-Correlation-ID": unusable})  # no token: the routed 401
        assert fast.status_code == 200 and routed.status_code == 401
        for answer in (fast, routed):
            assert answer.headers["x-correlation-id"] not in (unusable, unusable[:200]), "replaced, never cut"


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def test_unusual_polls_get_the_usual_errors(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory()
    assert (await http.get(f"/orders/{s.order_id}/status")).status_code == 401
    bad = await http.get(f"/orders/{s.order_id}/status", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    malformed = await http.get("/orders/not-a-uuid/status", headers=token("alice"))
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["field"] == "order_id"


# who may see what --------------------------------------------------------------------------------


async def test_another_customers_order_and_an_unknown_order_are_not_found_everywhere(
    live: Live, http: httpx.AsyncClient
) -> None:
    s = OrderStory(user_id="frank")
    await live.apply(s.created())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("frank")), what="the order")
    unknown = OrderStory().order_id
    for order_id, who in ((s.order_id, "grace"), (unknown, "frank")):
        for path in ("status", "events", "timeline"):
            response = await http.get(f"/orders/{order_id}/{path}", headers=token(who))
            assert response.status_code == 404, (path, who)
            assert response.json() == {"detail": "order not found"}
    operator = await http.get(f"/orders/{s.order_id}/status", headers=token("ops", operator=True))
    assert operator.status_code == 200


async def test_the_operator_trail_needs_operator_credentials(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="heidi")
    created, paid = s.created(), s.paid()
    failure = s.failed(message="NoViableNodeException on node wings-03")
    await live.apply(created, paid, s.retry(), failure, s.replayed())
    url = f"/operator/orders/{s.order_id}/trail"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers=token("heidi"))).status_code == 403
    assert (
        await http.get(f"/operator/orders/{OrderStory().order_id}/trail", headers=token("ops", operator=True))
    ).status_code == 404
    trail = (await http.get(url, headers=token("ops", operator=True))).json()
    assert [e["event_type"] for e in trail["events"]] == [
        "OrderCreated",
        "OrderPaid",
        "ProvisioningRetryScheduled",
        "ProvisionFailed",
        "ProvisioningReplayed",
    ]
    assert trail["counts"] == {
        "events": 5,
        "duplicate_deliveries": 0,
        "retries": 1,
        "replays": 1,
        "failures": 1,
        "refunds": 0,
    }
    failed = trail["events"][3]
    assert failed["event_id"] == str(failure.event_id) and failed["causation_id"] == str(paid.event_id)
    assert failed["caused_by_position"] == 2 and "wings-03" in failed["summary"]
    assert trail["correlation_ids"] == [s.correlation_id]
    assert trail["status"]["phase"] == "provisioning" and trail["user_id"] == "heidi"
    assert [c["phase"] for c in trail["changes"]] == [
        "awaiting_payment",
        "paid",
        "provisioning",
        "failed",
        "provisioning",
    ]


async def test_the_customer_timeline(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="ivan")
    await live.apply(s.created(), s.paid(), s.server_created(), s.installed())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("ivan")), what="the order")
    timeline = (await http.get(f"/orders/{s.order_id}/timeline", headers=token("ivan"))).json()
    assert timeline["status"] == "CREATED"
    assert [e["code"] for e in timeline["entries"]] == [
        "order_placed",
        "payment_received",
        "server_created",
        "server_ready",
    ]
    assert "event_id" not in json.dumps(timeline) and "provisioner" not in json.dumps(timeline)


# the event stream --------------------------------------------------------------------------------


class Frames:
    """The status frames of one open stream, read to a deadline (heartbeat comments are skipped)."""

    def __init__(self, source: Any) -> None:
        self._events = source.aiter_sse()

    async def take(self, count: int, timeout: float = 10.0) -> list[ServerSentEvent]:
        received: list[ServerSentEvent] = []
        async with asyncio.timeout(timeout):
            while len(received) < count:
                event = await anext(self._events)
                if event.event == "status":
                    received.append(event)
        return received


def _phases(events: list[ServerSentEvent]) -> list[tuple[str, str]]:
    return [(e.id, json.loads(e.data)["phase"]) for e in events]


async def test_the_stream_sends_now_then_every_change_and_resumes_exactly(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="judy")
    await live.apply(s.created())
    url = f"/orders/{s.order_id}/events"
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("judy")), what="the order")

    async with aconnect_sse(http, "GET", url, headers=token("judy")) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        frames = Frames(source)
        [now] = await frames.take(1)
        assert (now.id, json.loads(now.data)["status"]) == ("1", "PENDING")
        await live.apply(s.paid(), s.server_created())
        assert _phases(await frames.take(2)) == [("2", "paid"), ("3", "installing")]

    await live.apply(s.installed())  # while nobody is connected
    async with aconnect_sse(http, "GET", url, headers={**token("judy"), "Last-Event-ID": "1"}) as source:
        assert _phases(await Frames(source).take(3)) == [("2", "paid"), ("3", "installing"), ("4", "ready")]

    async with aconnect_sse(http, "GET", url, headers={**token("judy"), "Last-Event-ID": "4"}) as source:
        frames = Frames(source)
        await live.apply(s.refunded(t=5000, reason="requested"))
        assert _phases(await frames.take(1)) == [("5", "refunded")]  # nothing repeated before it

    for unplaceable in ("99", "not-a-number"):
        async with aconnect_sse(http, "GET", url, headers={**token("judy"), "Last-Event-ID": unplaceable}) as source:
            assert _phases(await Frames(source).take(1)) == [("5", "refunded")]  # the current state


async def test_the_stream_sends_heartbeats(live: Live, http: httpx.AsyncClient) -> None:
    s = OrderStory(user_id="leo")
    await live.apply(s.created())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("leo")), what="the order")
    async with http.stream("GET", f"/orders/{s.order_id}/events", headers=token("leo")) as response:
        seen = ""
        async with asyncio.timeout(10):
            async for text in response.aiter_text():
                seen += text
                if ": heartbeat" in seen:
                    break
    assert seen.startswith("retry: 3000\n\n")  # the reconnection delay browsers should use
    assert seen.index("id: 1") < seen.index(": heartbeat")


async def test_many_streams_share_one_change(live: Live) -> None:
    s = OrderStory(user_id="kim")
    await live.apply(s.created())
    opened: list[int] = []
    ready = asyncio.Event()

    async def one_stream(client: httpx.AsyncClient) -> list[tuple[str, str]]:
        async with aconnect_sse(client, "GET", f"/orders/{s.order_id}/events", headers=token("kim")) as source:
            frames = Frames(source)
            first = await frames.take(1)
            opened.append(1)
            if len(opened) == 20:
                ready.set()
            return _phases(first + await frames.take(1))

    async with httpx.AsyncClient(base_url=live.url, timeout=10.0, limits=httpx.Limits(max_connections=50)) as client:
        await eventually(lambda: _ok(client, f"/orders/{s.order_id}/status", token("kim")), what="the order")
        streams = [asyncio.create_task(one_stream(client)) for _ in range(20)]
        await asyncio.wait_for(ready.wait(), 10)
        assert live.queries.hub.streams == 20
        await live.apply(s.paid())
        results = await asyncio.gather(*streams)
    assert all(r == [("1", "awaiting_payment"), ("2", "paid")] for r in results)
    await eventually(lambda: _true(live.queries.hub.streams == 0), what="streams released")


async def test_a_user_holding_every_stream_slot_is_answered_429_and_a_slot_comes_back(
    live: Live, http: httpx.AsyncClient
) -> None:
    """Finding 10: no cap on event streams per user or per process."""
    s = OrderStory(user_id="mallory")
    await live.apply(s.created())
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", token("mallory")), what="the order")
    slots = services_of(live.app).stream_slots
    held = [slots.take("mallory") for _ in range(50)]
    refused = await http.get(f"/orders/{s.order_id}/events", headers=token("mallory"))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert "at most 50 open event streams" in refused.json()["detail"]
    held.pop()()
    async with aconnect_sse(http, "GET", f"/orders/{s.order_id}/events", headers=token("mallory")) as source:
        assert _phases(await Frames(source).take(1)) == [("1", "awaiting_payment")]
    for release in held:
        release()
    await eventually(lambda: _true(slots.open == 0), what="every slot given back")


async def test_a_stream_ends_when_the_token_that_opened_it_expires(live: Live, http: httpx.AsyncClient) -> None:
    """Finding 10: a stream outlived its token (an hour's cache, then for ever)."""
    s = OrderStory(user_id="nina")
    await live.apply(s.created())
    short = {"Authorization": f"Bearer {mint_token(SECRET, sub='nina', ttl_seconds=2)}"}
    await eventually(lambda: _ok(http, f"/orders/{s.order_id}/status", short), what="the order")
    async with asyncio.timeout(15), http.stream("GET", f"/orders/{s.order_id}/events", headers=short) as response:
        seen = ""
        async for text in response.aiter_text():
            seen += text
    assert "id: 1" in seen, "the stream answered, then ended by itself when its token expired"


# the rental ----------------------------------------------------------------------------------------


async def _ready(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response | None:
    response = await _ok(http, url, headers)
    return response if response is not None and response.json()["phase"] == "ready" else None


async def test_a_rental_change_reaches_polls_streams_the_timeline_and_the_trail(
    live: Live, http: httpx.AsyncClient
) -> None:
    s = OrderStory(user_id="olga")
    await live.apply(s.created(), s.paid(), s.server_created(), s.installed())
    url = f"/orders/{s.order_id}/status"
    first = await eventually(lambda: _ready(http, url, token("olga")), what="the order ready")
    assert first.json()["rental"] is None
    etag = first.headers["etag"]
    v1 = s.rental(1, P.ACTIVE, C.ACTIVATED, renews_at=on(12, 1))
    v2 = s.rental(2, P.PAST_DUE, C.PAYMENT_FAILED, next_payment_attempt=on(12, 3), grace_until=on(12, 16))
    lapsed, suspended = s.rental(3, P.LAPSED, C.LAPSED, terminate_at=on(12, 9)), s.suspended(3)

    async with aconnect_sse(http, "GET", f"/orders/{s.order_id}/events", headers=token("olga")) as source:
        frames = Frames(source)
        [now] = await frames.take(1)
        assert json.loads(now.data)["phase"] == "ready"
        await live.apply(v2)
        [woken] = await frames.take(1)
        assert int(woken.id) == int(now.id) + 1
        rental = json.loads(woken.data)["rental"]
        assert (rental["phase"], rental["server_state"]) == ("past_due", "running")
        assert rental["message"] == "Payment failed: we will try again on 3 Dec; your server keeps running until 16 Dec"
        await live.apply(v1, redelivered(v2))  # late and doubled: nothing a customer can see
        await live.apply(lapsed, suspended)
        after = [json.loads(f.data)["rental"] for f in await frames.take(2)]
        assert [(r["phase"], r["server_state"]) for r in after] == [
            ("suspended", "running"),
            ("suspended", "suspended"),
        ]

    async def changed() -> httpx.Response | None:
        response = await http.get(url, headers={**token("olga"), "If-None-Match": etag})
        return response if response.status_code == 200 else None

    polled = await eventually(changed, what="a 200 once the rental changed")
    body = polled.json()
    assert (body["status"], body["phase"], body["connect_path"]) == ("CREATED", "ready", "/gameserver/a1b2c3d4")
    assert body["rental"] == after[-1] and body["version"] == int(now.id) + 3
    assert body["rental"]["terminate_at"] == "2026-12-09T00:00:00Z"
    unchanged = await http.get(url, headers={**token("olga"), "If-None-Match": polled.headers["etag"]})
    assert unchanged.status_code == 304

    timeline = (await http.get(f"/orders/{s.order_id}/timeline", headers=token("olga"))).json()
    assert [e["code"] for e in timeline["entries"]][4:] == [
        "rental_activated",
        "rental_payment_failed",
        "rental_lapsed",
        "server_suspended",
    ]
    trail = (await http.get(f"/operator/orders/{s.order_id}/trail", headers=token("ops", operator=True))).json()
    by_id = {e["event_id"]: e for e in trail["events"]}
    assert by_id[str(v2.event_id)]["deliveries"] == 2
    assert "v3 lapsed (lapsed)" in by_id[str(lapsed.event_id)]["summary"]
    assert trail["status"]["rental"] == body["rental"]
    assert [c["rental"]["phase"] if c["rental"] else None for c in trail["changes"]][-3:] == [
        "past_due",
        "suspended",
        "suspended",
    ]
