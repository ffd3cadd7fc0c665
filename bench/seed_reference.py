"""The seed-style reference: the original synchronous product's webhook, as one process and one database.

    uvicorn bench.seed_reference:app     # started by bench/scenarios/seed_style.py

Why it exists: Spawnpoint splits an order over four services joined by RabbitMQ, each with its own
database, so that Stripe's webhook never waits for the panel. Issue 14 asks what that costs against the
simplest design doing the same work on the same machine, and what the simple design costs when the panel
is slow. This app is that design: in the webhook request itself it verifies the Stripe signature on the
raw body (the payment-service's own code), marks the order paid (an UPDATE in its own transaction),
creates the server on the panel (a real ``POST /api/application/servers`` with the provisioner's kind of
body and headers), marks the order created and answers 200. It runs on the services' server stack
(uvicorn + FastAPI, SQLAlchemy on asyncpg with a pool of the same size, httpx to the panel).

Deliberately left out, as the synchronous product had none of it: an outbox, a broker, retries, the
status read model. A panel failure answers 502 so that Stripe delivers the event again.

Configured by the environment: ``SEED_DB_URL`` (its database, with an ``orders`` table made by the
bench), ``SEED_PANEL_URL``, ``SEED_PANEL_KEY``, ``SEED_WEBHOOK_SECRET``, ``SEED_DB_POOL_SIZE``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import text

from payment_service.adapters.signature import InvalidSignature, verify
from spawnpoint_kit.db import make_engine

TABLE = """
CREATE TABLE orders (
    id uuid PRIMARY KEY,
    server_name text NOT NULL,
    panel_user_id integer NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    session_id text,
    server_id integer,
    paid_at timestamptz,
    created_at timestamptz
)
"""
"""The reference's schema (the bench creates it in the throw-away database before starting the app)."""

# What the provisioner sends for the bench's orders (game minecraft-paper, plan starter in the catalog):
# every egg variable as a string, the plan's limits, deploy to location 1.
EGG = 1
DOCKER_IMAGE = "ghcr.io/pterodactyl/yolks:java_21"
STARTUP = "java -Xms128M -XX:MaxRAMPercentage=95.0 -Dterminal.jline=false -Dterminal.ansi=true -jar {{SERVER_JARFILE}}"
ENVIRONMENT = {"MINECRAFT_VERSION": "latest", "SERVER_JARFILE": "server.jar", "DL_PATH": "", "BUILD_NUMBER": "latest"}


def server_body(order_id: uuid.UUID, name: str, panel_user_id: int) -> dict[str, Any]:
    """The create request, shaped as ``provisioner.domain.server_request.create_body`` shapes it."""
    return {
        "external_id": str(order_id),
        "name": name,
        "description": f"Spawnpoint order {order_id}",
        "user": panel_user_id,
        "egg": EGG,
        "docker_image": DOCKER_IMAGE,
        "startup": STARTUP,
        "environment": dict(ENVIRONMENT),
        "limits": {"memory": 2048, "swap": 0, "disk": 10240, "io": 500, "cpu": 100},
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 1},
        "deploy": {"dedicated_ip": False, "port_range": [], "locations": [1]},
        "start_on_completion": True,
        "oom_disabled": True,
    }


def _order_id(session: dict[str, Any]) -> uuid.UUID | None:
    ref = (session.get("metadata") or {}).get("serverOrderId") or session.get("client_reference_id")
    try:
        return uuid.UUID(str(ref))
    except ValueError:
        return None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = make_engine(os.environ["SEED_DB_URL"], pool_size=int(os.environ.get("SEED_DB_POOL_SIZE", "20")))
    panel = httpx.AsyncClient(
        base_url=os.environ["SEED_PANEL_URL"].rstrip("/") + "/api/application",
        timeout=httpx.Timeout(30.0, connect=5.0),
        headers={
            "Authorization": f"Bearer {os.environ['SEED_PANEL_KEY']}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "spawnpoint-seed-reference/1.0",
        },
    )
    app.state.engine, app.state.panel = engine, panel
    app.state.secrets = [os.environ["SEED_WEBHOOK_SECRET"]]
    try:
        yield
    finally:
        await panel.aclose()
        await engine.dispose()


app = FastAPI(title="reference: the synchronous webhook (seed style)", lifespan=_lifespan)


@app.post("/webhooks/stripe")
async def webhook(request: Request) -> dict[str, bool]:
    payload = await request.body()
    try:
        verify(payload, request.headers.get("stripe-signature"), request.app.state.secrets, tolerance=300)
    except InvalidSignature as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    event = json.loads(payload)
    if event.get("type") != "checkout.session.completed":
        return {"received": True}
    session = event["data"]["object"]
    order_id = _order_id(session)
    if order_id is None:
        return {"received": True}
    async with request.app.state.engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE orders SET status = 'paid', session_id = :session, paid_at = now() "
                    "WHERE id = :id AND status <> 'created' RETURNING server_name, panel_user_id"
                ),
                {"id": order_id, "session": session.get("id")},
            )
        ).first()
    if row is None:
        return {"received": True}  # not ours, or created already (a duplicate delivery)
    response = await request.app.state.panel.post("/servers", json=server_body(order_id, row[0], row[1]))
    if response.status_code != 201:
        raise HTTPException(status_code=502, detail=f"panel answered {response.status_code}")
    server_id = int(response.json()["attributes"]["id"])
    async with request.app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET status = 'created', server_id = :server, created_at = now() WHERE id = :id"),
            {"id": order_id, "server": server_id},
        )
    return {"received": True}
