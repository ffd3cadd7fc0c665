"""Component tests of the panel client against the panel stand-in served over real HTTP: the rate gate
keeps a burst of calls under the panel's limit, a 429's Retry-After holds every call, users whose e-mail
is taken are found, eggs are read in both flavours."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from panel_fake import create_app
from panel_fake.config import Flavor, PanelConfig, default_app_key
from provisioner.adapters.panel import PanelClient, PanelError
from provisioner.adapters.rate_gate import RateGate

pytestmark = pytest.mark.component


class Served:
    """The stand-in on a free loopback port, in a thread (it is an external API for the provisioner)."""

    def __init__(self, config: PanelConfig) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "panel stand-in did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def control(self, method: str, path: str, json: object = None) -> httpx.Response:
        return httpx.request(method, f"{self.url}/_fake{path}", json=json, timeout=10)


@pytest.fixture(scope="module", params=["pterodactyl", "pelican"])
def panel_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    flavor: Flavor = request.param
    # A tight limit, counted per second so the test is quick: 10 requests per 1 s window.
    config = PanelConfig(flavor=flavor, rate_limit=10, rate_limit_period=1.0, install_seconds=0.2)
    with Served(config) as served:
        yield served


@pytest.fixture
async def client(panel_server: Served) -> AsyncIterator[PanelClient]:
    panel_server.control("DELETE", "/data")
    flavor: Flavor = "pelican" if "pelican" in panel_server.control("GET", "/health").text else "pterodactyl"
    gate = RateGate(per_minute=7, burst=2, period_seconds=1.0)  # at most 9 in any second: under the 10
    panel = PanelClient(panel_server.url, default_app_key(flavor), flavor=flavor, timeout=10, gate=gate)
    try:
        yield panel
    finally:
        await panel.aclose()


async def test_many_concurrent_calls_stay_under_the_panel_rate_limit(client: PanelClient, panel_server: Served) -> None:
    started = time.monotonic()
    results = await asyncio.gather(
        *(client.server_by_external_id(f"missing-{i}") for i in range(23)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert all(r is None for r in results), [r for r in results if r is not None]
    statuses = [r["status"] for r in panel_server.control("GET", "/requests").json()["requests"]]
    assert statuses.count(429) == 0 and len(statuses) == 23
    assert elapsed >= (23 - 2) / 7 - 0.5  # the bucket's pace, not the panel's refusals


async def test_without_the_gate_the_same_burst_is_refused(panel_server: Served) -> None:
    panel_server.control("DELETE", "/data")
    flavor: Flavor = "pelican" if "pelican" in panel_server.control("GET", "/health").text else "pterodactyl"
    unbounded = PanelClient(
        panel_server.url,
        default_app_key(flavor),
        flavor=flavor,
        timeout=10,
        gate=RateGate(per_minute=10_000, burst=100),
    )
    try:
        results = await asyncio.gather(
            *(unbounded.server_by_external_id(f"x-{i}") for i in range(23)), return_exceptions=True
        )
    finally:
        await unbounded.aclose()
    assert any(isinstance(r, PanelError) and r.status == 429 for r in results)


async def test_retry_after_holds_every_call_of_the_process(client: PanelClient, panel_server: Served) -> None:
    panel_server.control("POST", "/faults", {"status": 429, "times": 1, "envelope": True, "retry_after": 1})
    with pytest.raises(PanelError) as refused:
        await client.server_by_external_id("a")
    assert refused.value.retry_after == 1.0
    started = time.monotonic()
    await asyncio.gather(client.server_by_external_id("b"), client.user_by_external_id("c"))
    assert time.monotonic() - started >= 0.9


async def test_a_taken_email_resolves_to_the_existing_account(client: PanelClient) -> None:
    existing = await client.create_user(external_id="made-by-hand", email="taken@example.test", username="byhand")
    assert await client.ensure_user(user_id="customer-1", email="taken@example.test") == existing
    created = await client.ensure_user(user_id="customer-2", email="new@example.test")
    assert created != existing
    assert await client.ensure_user(user_id="customer-2", email="new@example.test") == created


async def test_an_administrators_account_is_never_adopted_for_a_customer(client: PanelClient) -> None:
    """Finding 12: a customer signed up with an admin's e-mail owned the order's server as that admin."""
    with pytest.raises(PanelError) as refused:
        await client.ensure_user(user_id="customer-admin-mail", email="ADMIN@spawnpoint.test")
    assert refused.value.status == 422 and refused.value.has("email", "administrator")


async def test_eggs_are_read_with_their_variables_in_both_flavours(client: PanelClient) -> None:
    egg = await client.egg(nest_id=1, egg_id=1)
    by_name = {v.env_variable: v for v in egg.variables}
    assert by_name["SERVER_JARFILE"].rules == ("required", r"regex:/^([\w\d._-]+)(\.jar)$/")
    assert by_name["BUILD_NUMBER"].default_value == "latest"
    assert by_name["BUILD_NUMBER"].display_name == "Build Number variable"
    with pytest.raises(PanelError) as unknown:
        await client.egg(nest_id=1, egg_id=99)
    assert unknown.value.status == 404
