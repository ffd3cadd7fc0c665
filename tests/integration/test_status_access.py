"""Who may see what: another customer's order and an unknown order are both 404 on status, stream and
timeline; the operator trail refuses customer tokens, and ``spawnctl order trail`` shows it to
operators with clear exit codes."""

from __future__ import annotations

import json
import uuid

import pytest

from devstack import Stack, free_port

from .conftest import customer_token
from .status_support import place_order, spawnctl_trail, trail_cli
from .support import Api

pytestmark = pytest.mark.integration


async def test_another_customers_order_and_an_unknown_order_are_not_found_everywhere(api: Api) -> None:
    owner, stranger = customer_token(), customer_token()
    order_id = await place_order(api, owner)
    unknown = str(uuid.uuid4())
    for order, token in ((order_id, stranger), (unknown, owner)):
        for view in ("status", "events", "timeline"):
            response = await api.http.get(api.url("status-service", f"/orders/{order}/{view}"), headers=api.auth(token))
            assert response.status_code == 404, (view, order == unknown)
            assert response.json() == {"detail": "order not found"}
    timeline = await api.http.get(api.url("status-service", f"/orders/{order_id}/timeline"), headers=api.auth(owner))
    assert timeline.status_code == 200
    assert [e["code"] for e in timeline.json()["entries"]] == ["order_placed"]


async def test_the_operator_trail_refuses_customer_tokens_and_spawnctl_shows_it(api: Api, stack: Stack) -> None:
    owner = customer_token()
    order_id = await place_order(api, owner)
    url = api.url("status-service", f"/operator/orders/{order_id}/trail")
    assert (await api.http.get(url)).status_code == 401
    assert (await api.http.get(url, headers=api.auth(owner))).status_code == 403
    trail = await api.http.get(url, headers=api.auth(customer_token(operator=True)))
    assert trail.status_code == 200
    [created] = trail.json()["events"]
    assert (created["event_type"], created["producer"]) == ("OrderCreated", "order-service")

    status_url = stack.config.url("status-service")
    shown = await spawnctl_trail(status_url, order_id)  # the installed console script, as an operator runs it
    assert shown.code == 0, shown.stderr
    assert order_id in shown.stdout and "OrderCreated" in shown.stdout and created["event_id"][:8] in shown.stdout

    # The other answers in-process (same code, same real HTTP to the stack), to spare four interpreter starts.
    as_json = trail_cli(status_url, order_id, "--json")
    assert as_json.code == 0 and json.loads(as_json.stdout)["events"][0]["event_id"] == created["event_id"]
    refused = trail_cli(status_url, order_id, "--token", owner)
    assert refused.code == 1 and "refused" in refused.stderr
    missing = trail_cli(status_url, str(uuid.uuid4()))
    assert missing.code == 1 and "no order" in missing.stderr
    unreachable = trail_cli(f"http://127.0.0.1:{free_port()}", order_id)
    assert unreachable.code == 3 and "unreachable" in unreachable.stderr
