"""A broker that restarts mid-flow loses nothing: orders paid before, during and after the outage all
reach CREATED, events staged while the broker was down are published once it is back, and every service's
consumers come back (readiness turns green again).

RabbitMQ is stopped and started with ``rabbitmqctl stop_app`` / ``start_app``, so this module runs late
(file name) and needs the right to run rabbitmqctl on this machine; without it the test is skipped with the
reason.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import httpx
import pytest

from devstack import SERVICES, Stack

from .conftest import customer_token
from .support import Api, eventually

pytestmark = pytest.mark.integration


async def _rabbitmqctl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


async def _all_ready(api: Api) -> bool:
    for service in SERVICES:
        try:
            if (await api.http.get(api.url(service, "/readyz"))).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


async def test_orders_complete_across_a_broker_restart(make_stack: Callable[..., Stack]) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed here")
    code, output = await _rabbitmqctl("status")
    if code != 0:
        pytest.skip(f"cannot control the local RabbitMQ: {output.strip()[:200]}")
    stack = make_stack(panel_args=["--install-seconds", "1"])
    async with Api(stack.config) as api:
        token = customer_token()
        before = (await api.place_order(token)).json()["id"]
        pending = (await api.place_order(token)).json()["id"]
        checkout = await api.open_checkout(token, before)
        assert (await api.stripe_pay(checkout.json()["session_id"])).status_code == 200
        await api.wait_status(token, before, "CREATED")
        pending_checkout = await api.open_checkout(token, pending)
        assert pending_checkout.status_code == 201

        code, output = await _rabbitmqctl("stop_app")
        assert code == 0, output
        try:
            # The broker is down: an order can still be placed (its event waits in the outbox) and a
            # payment can still be taken (the webhook only needs the database).
            during = await api.place_order(token)
            assert during.status_code == 201, during.text
            assert (await api.stripe_pay(pending_checkout.json()["session_id"])).status_code == 200
        finally:
            code, output = await _rabbitmqctl("start_app")
            assert code == 0, output

        await eventually(lambda: _all_ready(api), timeout=90, interval=0.5, what="every service ready again")
        during_id = during.json()["id"]
        checkout = await api.open_checkout(token, during_id)
        assert checkout.status_code == 201, checkout.text
        assert (await api.stripe_pay(checkout.json()["session_id"])).status_code == 200
        for order_id in (pending, during_id):
            created = await api.wait_status(token, order_id, "CREATED", timeout=120)
            assert created["connect_path"]
            assert len(await api.panel_servers(external_id=order_id)) == 1
