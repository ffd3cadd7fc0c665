"""The ``/_fake`` control API: proxy faults, request log, reset, capacity, allocations."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from panel_fake_support import PanelClient, base_body, pelican_body, wait_until

pytestmark = pytest.mark.contract


def _body(panel: PanelClient, external_id: str = "order-1001") -> dict[str, Any]:
    return base_body(external_id) if panel.flavor == "pterodactyl" else pelican_body(external_id)


def test_fault_with_envelope_writes_nothing(panel: PanelClient) -> None:
    panel.control(
        "POST",
        "/faults",
        {"status": 503, "times": 2, "method": "POST", "path_prefix": "/api/application/servers", "envelope": True},
    )
    for _ in range(2):
        response = panel.create(_body(panel))
        assert response.status_code == 503
        assert response.json() == {
            "errors": [{"code": "HttpException", "status": "503", "detail": "Service Unavailable"}]
        }
    assert panel.control("GET", "/servers").json()["count"] == 0
    assert panel.api("GET", "/api/application/servers").status_code == 200
    assert panel.create(_body(panel)).status_code == 201


def test_fault_bare_proxy_page(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"status": 502, "times": 1})
    response = ptero.create(base_body())
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert ptero.create(base_body()).status_code == 201


def test_fault_429_has_retry_after(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"status": 429, "times": 1, "envelope": True, "retry_after": 7})
    response = ptero.api("GET", "/api/application/servers")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert response.json()["errors"][0]["code"] == "ThrottleRequestsException"


def test_fault_latency_only(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"latency_seconds": 0.3, "times": 1, "method": "GET"})
    started = time.monotonic()
    assert ptero.api("GET", "/api/application/servers").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    ptero.api("GET", "/api/application/servers")
    assert time.monotonic() - started < 0.3


def test_fault_latency_causes_client_timeout_without_write(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"latency_seconds": 1.0, "status": 504, "times": 1})
    with pytest.raises(httpx.ReadTimeout):
        ptero.create(base_body(), timeout=0.2)
    assert ptero.control("GET", "/servers").json()["count"] == 0


def test_down_and_close(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"down": True})
    response = ptero.api("GET", "/api/application/servers")
    assert (response.status_code, response.headers["content-type"][:9]) == (503, "text/html")
    ptero.control("POST", "/faults", {"down": True, "down_mode": "close"})
    with pytest.raises(httpx.TransportError):
        ptero.api("GET", "/api/application/servers")
    assert ptero.control("GET", "/health").json()["status"] == "ok"
    ptero.control("DELETE", "/faults")
    assert ptero.api("GET", "/api/application/servers").status_code == 200
    ptero.control("POST", "/faults", {"close": True, "times": 1})
    with pytest.raises(httpx.TransportError):
        ptero.create(base_body())
    assert ptero.control("GET", "/servers").json()["count"] == 0


def test_request_log_counts_calls_per_order(panel: PanelClient) -> None:
    panel.control("DELETE", "/requests")
    panel.api("GET", "/api/application/servers/external/order-1001")
    created = panel.create(_body(panel)).json()["attributes"]
    panel.create(_body(panel))
    panel.api("GET", f"/api/application/servers/{created['id']}")
    panel.create(_body(panel, "order-other"))
    log = panel.control("GET", "/requests?external_id=order-1001").json()
    assert log["count"] == 4
    assert [(r["method"], r["status"]) for r in log["requests"]] == [
        ("GET", 404),
        ("POST", 201),
        ("POST", 422),
        ("GET", 200),
    ]
    first = log["requests"][0]
    assert first["path"] == "/api/application/servers/external/order-1001"
    assert first["timestamp"].endswith("+00:00")
    assert panel.control("GET", "/requests").json()["count"] == 5
    panel.control("DELETE", "/requests")
    assert panel.control("GET", "/requests").json()["count"] == 0


def test_request_log_includes_faulted_and_rejected_requests(ptero: PanelClient) -> None:
    ptero.control("POST", "/faults", {"status": 502, "times": 1})
    ptero.create(base_body())
    ptero.api("POST", "/api/application/servers", key="bogus", json=base_body())
    entries = ptero.control("GET", "/requests?external_id=order-1001").json()["requests"]
    assert [(e["status"], e["fault"] is not None) for e in entries] == [(502, True), (401, False)]


def test_rate_limit_control(ptero: PanelClient) -> None:
    ptero.control("POST", "/rate-limit", {"per_minute": 2})
    assert ptero.api("GET", "/api/application/servers").status_code == 200
    assert ptero.api("GET", "/api/application/servers").status_code == 200
    assert ptero.api("GET", "/api/application/servers").status_code == 429
    ptero.control("POST", "/rate-limit", {"per_minute": 0})
    unlimited = ptero.api("GET", "/api/application/servers")
    assert unlimited.status_code == 200
    assert "X-RateLimit-Limit" not in unlimited.headers


def test_reset_restores_seed(ptero: PanelClient) -> None:
    ptero.create(base_body())
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    ptero.control("DELETE", "/data")
    assert ptero.control("GET", "/servers").json()["count"] == 0
    assert ptero.create(base_body()).status_code == 201
    assert ptero.control("GET", "/health").json()["flavor"] == "pterodactyl"


def test_capacity_and_allocations(ptero: PanelClient) -> None:
    added = ptero.control("POST", "/nodes/1/allocations", {"ip": "10.0.0.9", "ports": "30000-30004"}).json()
    assert added["created"] == 5
    again = ptero.control("POST", "/nodes/1/allocations", {"ip": "10.0.0.9", "ports": [30000, "30005"]}).json()
    assert again["created"] == 1
    body = base_body(deploy={"locations": [1], "dedicated_ip": False, "port_range": ["30000-30010"]})
    assert ptero.create(body).status_code == 201
    ptero.control("POST", "/nodes/1/capacity", {"memory": 1024})
    assert ptero.create(base_body("order-2")).json()["errors"][0]["code"] == "NoViableNodeException"
    nodes = ptero.control("GET", "/nodes").json()["nodes"]
    assert nodes[0]["used"]["memory"] == 2048
    assert nodes[0]["allocations"]["total"] == 1006
    assert ptero.http.post("/_fake/nodes/99/capacity", json={"memory": 1}).status_code == 404


def test_control_servers_listing(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    listing = ptero.control("GET", "/servers").json()
    [summary] = listing["servers"]
    assert summary["id"] == created["id"]
    assert (summary["external_id"], summary["status"], summary["node"]) == ("order-1001", "installing", 1)
    assert summary["address"].startswith("10.0.0.5:")
    keys = ptero.control("GET", "/keys").json()
    assert keys["roles"]["admin_application"] == ptero.admin_key


def test_bad_control_bodies(ptero: PanelClient) -> None:
    assert ptero.http.post("/_fake/nodes/1/wings", json={"mode": "sideways"}).status_code == 422
    assert ptero.http.post("/_fake/install", json={"outcome": "maybe"}).status_code == 422
    assert ptero.http.post("/_fake/faults", json={}).status_code == 422


def test_an_edited_egg_variable_changes_what_create_accepts_and_what_the_egg_shows(panel: PanelClient) -> None:
    """An administrator tightens BUILD_NUMBER after orders were placed: the panel now refuses "latest"."""
    edited = panel.control("PATCH", "/eggs/1/variables/BUILD_NUMBER", {"rules": "required|integer"})
    assert edited.json()["rules"] == ["required", "integer"]
    response = panel.create(_body(panel))
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["meta"] == {"source_field": "environment.BUILD_NUMBER", "rule": "integer"}
    path = "/api/application/nests/1/eggs/1" if panel.flavor == "pterodactyl" else "/api/application/eggs/1"
    variables = panel.api("GET", path + "?include=variables").json()["attributes"]["relationships"]["variables"]
    rules = next(
        v["attributes"]["rules"] for v in variables["data"] if v["attributes"]["env_variable"] == "BUILD_NUMBER"
    )
    assert rules == ("required|integer" if panel.flavor == "pterodactyl" else ["required", "integer"])
    missing = panel.http.patch("/_fake/eggs/1/variables/NOPE", json={"rules": "string"})
    assert missing.status_code == 404
    panel.control("DELETE", "/data")
    assert panel.create(_body(panel)).status_code == 201


def test_a_request_still_in_flight_when_the_log_is_cleared_is_not_logged_after_it(ptero: PanelClient) -> None:
    """A hung create that ends after a reset must not show up in the next test's request log."""
    # An earlier test's slow request (a 1 s latency fault) may still be in flight under load.
    wait_until(lambda: ptero.control("GET", "/health").json()["in_flight"] == 0, timeout=10)
    ptero.control("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "times": 1})
    with pytest.raises(httpx.TimeoutException):
        ptero.create(base_body("order-hung"), timeout=0.2)
    assert ptero.control("GET", "/health").json()["in_flight"] == 1
    ptero.control("DELETE", "/requests")
    wait_until(lambda: ptero.control("GET", "/health").json()["in_flight"] == 0, timeout=10)
    assert ptero.control("GET", "/requests").json()["count"] == 0
