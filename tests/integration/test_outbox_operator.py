"""``spawnctl outbox`` against a running stack: a parked outbox row is visible to an operator and, retried,
is published and reaches its consumers (issue 11: the relay parks a row that keeps failing on its own)."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from devstack import Stack
from spawnpoint_contracts import OrderCreated, OrderCreatedPayload, OrderSnapshot
from spawnpoint_contracts.topology import EVENTS_EXCHANGE
from spawnpoint_kit.db import asyncpg_dsn

from .conftest import customer_token
from .support import Api, CliResult, eventually, run_cli

pytestmark = pytest.mark.integration


def _snapshot(order_id: uuid.UUID, user_id: str) -> OrderSnapshot:
    return OrderSnapshot.model_validate(
        {
            "order_id": str(order_id),
            "user_id": user_id,
            "email": f"{user_id}@example.test",
            "game_id": "minecraft-paper",
            "game_name": "Minecraft (Paper)",
            "plan_id": "starter",
            "plan_name": "Starter",
            "server_name": "parked",
            "amount": 500,
            "currency": "eur",
            "server_spec": {
                "egg_id": 1,
                "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
                "startup": "java -jar server.jar",
                "limits": {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100},
                "feature_limits": {"databases": 0, "backups": 0, "allocations": 0},
                "deploy": {"locations": [1]},
            },
        }
    )


async def _spawnctl(stack: Stack, *args: str) -> CliResult:
    env = {
        "ORDER_SERVICE_URL": stack.config.url("order-service"),
        "PAYMENT_SERVICE_URL": stack.config.url("payment-service"),
        "PROVISIONER_URL": stack.config.url("provisioner"),
        "STATUS_SERVICE_URL": stack.config.url("status-service"),
        "COLUMNS": "200",
    }
    return await run_cli("spawnctl", "outbox", *args, env=env)


async def test_an_operator_sees_a_parked_row_and_a_retried_one_is_published(stack: Stack, api: Api) -> None:
    user = f"user-{uuid.uuid4().hex[:10]}"
    order_id = uuid.uuid4()
    event = OrderCreated(
        order_id=order_id,
        correlation_id=f"parked-{order_id}",
        producer="order-service",
        payload=OrderCreatedPayload(order=_snapshot(order_id, user)),
    )
    connection = await asyncpg.connect(asyncpg_dsn(stack.config.database_url("order-service")))
    try:
        # As the relay leaves a row that failed on its own too often: parked, with its last error.
        await connection.execute(
            "INSERT INTO outbox (id, exchange, routing_key, message_type, body, headers, correlation_id, order_id,"
            " attempts, last_error, parked_at) VALUES ($1, $2, $3, 'OrderCreated', $4, $5, $6, $7, 50,"
            " 'DeliveryError: NO_ROUTE', now())",
            event.event_id,
            f"{stack.config.namespace}{EVENTS_EXCHANGE}",
            event.routing_key,
            event.to_json_bytes(),
            json.dumps({"event_type": "OrderCreated", "event_version": 1}),
            event.correlation_id,
            order_id,
        )
        listed = await _spawnctl(stack, "list", "--json")
        assert listed.code == 0, listed.stderr
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["service"], r["id"]) for r in rows] == [("order-service", str(event.event_id))]
        assert rows[0]["last_error"] == "DeliveryError: NO_ROUTE"
        table = await _spawnctl(stack, "list")
        assert table.code == 0 and "NO_ROUTE" in table.stdout

        missing = await _spawnctl(stack, "retry", str(uuid.uuid4()), "--service", "order-service")
        assert missing.code == 1 and "no unpublished outbox row" in missing.stderr
        retried = await _spawnctl(stack, "retry", str(event.event_id), "--service", "order-service")
        assert retried.code == 0, retried.stderr

        async def published() -> bool:
            value = await connection.fetchval("SELECT published_at FROM outbox WHERE id = $1", event.event_id)
            return value is not None

        await eventually(published, timeout=30, what="the retried row published")
        token = customer_token(user)
        await api.wait_status(token, str(order_id), "PENDING")
        assert json.loads((await _spawnctl(stack, "list", "--json")).stdout or "[]") == []
    finally:
        await connection.execute("DELETE FROM outbox WHERE id = $1", event.event_id)
        await connection.close()


async def test_a_customer_token_cannot_see_the_outbox(stack: Stack, api: Api) -> None:
    response = await api.http.get(api.url("order-service", "/operator/outbox"), headers=api.auth(customer_token()))
    assert response.status_code == 403
