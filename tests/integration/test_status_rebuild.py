"""``status-service rebuild`` as an operator runs it, on the database the running system has projected
into: it finds nothing to change after real orders went through, finds a drifted row with ``--check``
without writing, and repairs it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from devstack import Stack
from spawnpoint_kit.db import asyncpg_dsn

from .conftest import customer_token
from .status_support import pay, place_order
from .support import Api, run_cli

pytestmark = pytest.mark.integration


async def test_rebuild_reproduces_the_projected_read_model_and_repairs_drift(api: Api, stack: Stack) -> None:
    token = customer_token()
    order_id = await place_order(api, token)
    await pay(api, token, order_id)
    ready = await api.wait_status(token, order_id, "CREATED")
    env = stack.config.env_for("status-service")

    check = await run_cli("status-service", "rebuild", "--check", env=env)
    assert check.code == 0, check.stderr  # every order the suite projected so far, recomputed: identical
    assert " 0 would change (visible)" in check.stderr

    row = "SELECT message FROM order_status WHERE order_id = $1"
    connection = await asyncpg.connect(asyncpg_dsn(stack.config.database_url("status-service")))
    try:
        await connection.execute(
            "UPDATE order_status SET status = 'PAID', phase = 'paid', message = 'stale' WHERE order_id = $1",
            uuid.UUID(order_id),
        )
        drifted = await run_cli("status-service", "rebuild", "--check", env=env)
        assert drifted.code == 1, drifted.stderr
        assert " 1 would change (visible)" in drifted.stderr
        assert await connection.fetchval(row, uuid.UUID(order_id)) == "stale"  # --check wrote nothing

        repaired = await run_cli("status-service", "rebuild", env=env)
        assert repaired.code == 0, repaired.stderr
        assert " 1 changed (visible)" in repaired.stderr
        assert await connection.fetchval(row, uuid.UUID(order_id)) == ready["message"]
    finally:
        await connection.close()

    after = (await api.status(token, order_id)).json()
    assert (after["status"], after["server_id"], after["connect_path"]) == (
        "CREATED",
        ready["server_id"],
        ready["connect_path"],
    )
    assert (await run_cli("status-service", "rebuild", "--check", env=env)).code == 0
