"""The "my servers" list (``GET /orders``) against the real PostgreSQL, served by a real uvicorn server: only
the caller's own orders, newest first, each with its live status, what was bought and its rental, in pages
that follow a cursor without skipping or repeating an order."""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from status_service_support import OrderStory

from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.testing import eventually
from status_service.bootstrap import build_api
from status_service.config import Settings
from status_service.entrypoints.change_feed import ChangeFeed
from status_service.service_layer.handlers import apply_event
from status_service.service_layer.queries import StatusQueries
from status_service.service_layer.unit_of_work import SqlStatusUnitOfWork

pytestmark = pytest.mark.component

SECRET = "status-service-my-orders-test-secret-0123456789"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def auth(user: str, *, operator: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, sub=user, roles=('operator',) if operator else ())}"}


@pytest.fixture(scope="module")
async def base_url(database_url: str, engine: AsyncEngine) -> AsyncIterator[str]:
    settings = Settings(database_url=database_url, jwt_secret=SECRET)
    queries = StatusQueries.create(engine, cache_size=100)
    feed = ChangeFeed(database_url, queries.cache, queries.hub, queries.current)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield  # no change feed: every list is read from the database

    app = build_api(settings, queries, feed, lifespan=lifespan, checks={})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        yield client


async def test_lists_only_the_callers_orders_newest_first_with_status(
    http: httpx.AsyncClient, unit_of_work: Callable[[], SqlStatusUnitOfWork]
) -> None:
    user = f"owner-{uuid.uuid4().hex[:8]}"
    older, newer = OrderStory(user), OrderStory(user)
    stranger = OrderStory(f"other-{uuid.uuid4().hex[:8]}")
    for event in (older.created(t=0), older.paid(t=10), newer.created(t=20), stranger.created(t=30)):
        await apply_event(unit_of_work, event)

    answer = await http.get("/orders", headers=auth(user))
    assert answer.status_code == 200
    orders = answer.json()["orders"]
    assert [o["order_id"] for o in orders] == [str(newer.order_id), str(older.order_id)]
    assert [(o["status"], o["phase"]) for o in orders] == [("PENDING", "awaiting_payment"), ("PAID", "paid")]
    assert orders[0]["game_name"] == "Minecraft (Paper)" and orders[0]["server_name"] == "Alice world"
    assert orders[0]["plan_id"] == "starter" and orders[0]["rental"] is None
    assert answer.json()["next_cursor"] is None

    operator = await http.get("/orders", headers=auth(f"op-{uuid.uuid4().hex[:6]}", operator=True))
    assert operator.status_code == 200 and operator.json()["orders"] == []  # owner only, operators included
    assert (await http.get("/orders")).status_code == 401


async def test_pages_follow_the_cursor_without_gaps_or_repeats(
    http: httpx.AsyncClient, unit_of_work: Callable[[], SqlStatusUnitOfWork]
) -> None:
    user = f"pager-{uuid.uuid4().hex[:8]}"
    stories = [OrderStory(user) for _ in range(5)]
    for i, story in enumerate(stories):
        # Two orders placed at the same moment: the order id breaks the tie, so no page loses one.
        await apply_event(unit_of_work, story.created(t=100 + (i // 2)))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = await http.get("/orders", headers=auth(user), params=params)
        assert answer.status_code == 200
        body = answer.json()
        assert len(body["orders"]) <= 2
        seen += [o["order_id"] for o in body["orders"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(str(s.order_id) for s in stories) and len(set(seen)) == 5
    assert seen[0] == str(stories[4].order_id)  # the newest first


async def test_a_malformed_cursor_or_limit_is_422(http: httpx.AsyncClient) -> None:
    for cursor in (
        "not-a-cursor",
        _b64("[1, 2]"),
        _b64('["2026-01-01T00:00:00", "' + str(uuid.uuid4()) + '"]'),
        _b64("7"),
    ):
        bad = await http.get("/orders", headers=auth("someone"), params={"cursor": cursor})
        assert bad.status_code == 422, cursor
        assert bad.json()["detail"][0]["field"] == "cursor"
    assert (await http.get("/orders", headers=auth("someone"), params={"limit": "0"})).status_code == 422
    assert (await http.get("/orders", headers=auth("someone"), params={"limit": "101"})).status_code == 422
