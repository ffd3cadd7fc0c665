"""Wings faults, ghost creates, installs, suspension and delete: §11 cases 11–13 and 15–17."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from panel_fake_support import HANG_SECONDS, PanelClient, base_body, errors_of, headers, pelican_body, wait_until

pytestmark = pytest.mark.contract


def _body(panel: PanelClient, external_id: str = "order-1001", **overrides: Any) -> dict[str, Any]:
    if panel.flavor == "pelican":
        return pelican_body(external_id, **overrides)
    return base_body(external_id, **overrides)


def _status(panel: PanelClient, server_id: int) -> Any:
    return panel.server(server_id)["status"]


def test_case_11_wings_unreachable_rolls_back(ptero: PanelClient) -> None:
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    response = ptero.create(base_body())
    assert response.status_code == 504
    assert response.json() == {
        "errors": [
            {
                "code": "DaemonConnectionException",
                "status": "504",
                "detail": "Could not establish a connection to the machine running this server. Please try again.",
            }
        ]
    }
    assert ptero.api("GET", "/api/application/servers/external/order-1001").status_code == 404
    nodes = ptero.control("GET", "/nodes").json()["nodes"]
    assert nodes[0]["allocations"] == {"total": 1000, "free": 1000}


def test_case_11_pelican_unreachable(pelican: PanelClient) -> None:
    pelican.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    response = pelican.create(pelican_body())
    assert response.status_code == 500
    assert response.json()["errors"] == [
        {
            "code": "ConnectionException",
            "status": "500",
            "detail": "An unexpected error was encountered while processing this request, please try again.",
        }
    ]
    assert pelican.api("GET", "/api/application/servers/external/order-1001").status_code == 404


def test_case_12_wings_error_passes_status_through(ptero: PanelClient) -> None:
    ptero.control("POST", "/nodes/1/wings", {"mode": "error:500", "request_id": "abc"})
    response = ptero.create(base_body())
    assert response.status_code == 500
    [error] = response.json()["errors"]
    assert error["code"] == "DaemonConnectionException"
    assert error["detail"] == (
        "There was an error while communicating with the machine running this server. This error has been logged, "
        "please try again. (code: 500) (request_id: abc)"
    )
    assert ptero.control("GET", "/servers").json()["count"] == 0
    ptero.control("POST", "/nodes/1/wings", {"mode": "error:422", "request_id": "r1", "error": "bad thing"})
    response = ptero.create(base_body())
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["code"] == "DaemonConnectionException"
    assert error["detail"] == "An error occurred on the remote host: bad thing. (request id: r1)"
    assert "meta" not in error


def test_case_12_pelican_wings_error_keeps_row(pelican: PanelClient) -> None:
    pelican.control("POST", "/nodes/1/wings", {"mode": "error:500"})
    response = pelican.create(pelican_body())
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "RequestException"
    found = pelican.api("GET", "/api/application/servers/external/order-1001")
    assert found.status_code == 200
    assert found.json()["attributes"]["status"] == "installing"


def test_wings_times_reverts_to_ok(panel: PanelClient) -> None:
    panel.control("POST", "/nodes/1/wings", {"mode": "unreachable", "times": 2})
    assert panel.create(_body(panel)).status_code in (500, 504)
    assert panel.create(_body(panel)).status_code in (500, 504)
    assert panel.create(_body(panel)).status_code == 201
    assert panel.control("GET", "/nodes").json()["nodes"][0]["wings"]["mode"] == "ok"


def test_case_13_ghost_create(panel: PanelClient) -> None:
    panel.control("POST", "/install", {"outcome": "ok", "seconds": 30})
    panel.control("POST", "/nodes/1/wings", {"mode": "commit_then_hang"})
    with pytest.raises(httpx.ReadTimeout):
        panel.create(_body(panel), timeout=0.3)
    found = panel.api("GET", "/api/application/servers/external/order-1001")
    assert found.status_code == 200
    assert found.json()["attributes"]["status"] == "installing"
    assert errors_of(panel.create(_body(panel))) == [("external_id", "unique")]


def test_case_13_hang_eventually_answers_201(ptero: PanelClient) -> None:
    ptero.control("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "hang_seconds": 0.2})
    response = ptero.create(base_body(), timeout=HANG_SECONDS + 5)
    assert response.status_code == 201


def test_case_14_lookup_miss(panel: PanelClient) -> None:
    response = panel.api("GET", "/api/application/servers/external/nope")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "code": "NotFoundHttpException",
                "status": "404",
                "detail": "The requested resource could not be found on the server.",
            }
        ]
    }


def test_case_15_install_lifecycle_ok(panel: PanelClient) -> None:
    created = panel.create(_body(panel)).json()["attributes"]
    assert (created["status"], created["container"]["installed"]) == ("installing", 0)
    ready = wait_until(lambda: (s := panel.server(created["id"]))["status"] is None and s)
    assert ready["container"]["installed"] == 1


def test_case_15_install_failed_and_client_view(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "failed", "seconds": 0})
    created = ptero.create(base_body()).json()["attributes"]
    failed = wait_until(lambda: (s := ptero.server(created["id"]))["status"] == "install_failed" and s)
    assert failed["container"]["installed"] == 0
    client_key = ptero.keys["admin_client"]
    view = ptero.api("GET", f"/api/client/servers/{created['identifier']}", key=client_key)
    assert view.status_code == 200
    attributes = view.json()["attributes"]
    assert (attributes["is_installing"], attributes["status"]) == (True, "install_failed")
    resources = ptero.api("GET", f"/api/client/servers/{created['identifier']}/resources", key=client_key)
    assert resources.status_code == 409
    assert resources.json()["errors"] == [
        {
            "code": "ServerStateConflictException",
            "status": "409",
            "detail": "This server has not yet completed its installation process, please try again later.",
        }
    ]


def test_case_15_resources_while_installing_and_after(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    key = ptero.keys["admin_client"]
    path = f"/api/client/servers/{created['uuid']}/resources"
    assert ptero.api("GET", path, key=key).status_code == 409
    ptero.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    stats = ptero.api("GET", path, key=key)
    assert stats.status_code == 200
    assert stats.json()["object"] == "stats"
    assert stats.json()["attributes"]["current_state"] == "running"


def test_install_stuck_and_per_external_id(panel: PanelClient) -> None:
    panel.control("POST", "/install", {"outcome": "stuck", "external_id": "order-stuck"})
    stuck = panel.create(_body(panel, "order-stuck")).json()["attributes"]
    normal = panel.create(_body(panel, "order-normal")).json()["attributes"]
    wait_until(lambda: panel.server(normal["id"])["status"] is None)
    assert panel.server(stuck["id"])["status"] == "installing"
    summary = panel.control("GET", "/servers?external_id=order-stuck").json()["servers"][0]
    assert summary["pending_install"] == {"outcome": "stuck", "reinstall": False}
    panel.control("POST", f"/servers/{stuck['id']}/install", {"outcome": "failed"})
    assert panel.server(stuck["id"])["status"] == "install_failed"


def test_install_override_for_existing_server(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "stuck"})
    created = ptero.create(base_body()).json()["attributes"]
    ptero.control("POST", "/install", {"outcome": "failed", "external_id": "order-1001", "seconds": 0})
    wait_until(lambda: ptero.server(created["id"])["status"] == "install_failed")


def test_install_times_queue(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "failed", "seconds": 0, "times": 1})
    first = ptero.create(base_body("order-a")).json()["attributes"]
    second = ptero.create(base_body("order-b")).json()["attributes"]
    wait_until(lambda: ptero.server(first["id"])["status"] == "install_failed")
    wait_until(lambda: ptero.server(second["id"])["status"] is None)


def test_skip_scripts_finishes_at_once(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "failed", "seconds": 30})
    created = ptero.create(base_body(skip_scripts=True)).json()["attributes"]
    assert created["status"] == "installing"
    wait_until(lambda: ptero.server(created["id"])["status"] is None, timeout=2)


def test_reinstall(panel: PanelClient) -> None:
    created = panel.create(_body(panel)).json()["attributes"]
    panel.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    panel.control("POST", "/install", {"outcome": "failed", "seconds": 0})
    response = panel.api("POST", f"/api/application/servers/{created['id']}/reinstall")
    assert (response.status_code, response.content) == (204, b"")
    failed = wait_until(lambda: (s := panel.server(created["id"]))["status"] == "reinstall_failed" and s)
    # Pelican counts reinstall_failed as not installed; Pterodactyl does not.
    assert failed["container"]["installed"] == (0 if panel.flavor == "pelican" else 1)
    panel.control("POST", "/install", {"outcome": "ok", "seconds": 0})
    panel.api("POST", f"/api/application/servers/{created['id']}/reinstall")
    wait_until(lambda: panel.server(created["id"])["status"] is None)


def test_reinstall_wings_down_rolls_back(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    ptero.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    assert ptero.api("POST", f"/api/application/servers/{created['id']}/reinstall").status_code == 504
    assert ptero.server(created["id"])["status"] is None


def test_case_16_suspend_unsuspend(panel: PanelClient) -> None:
    created = panel.create(_body(panel)).json()["attributes"]
    panel.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    path = f"/api/application/servers/{created['id']}"
    response = panel.api("POST", f"{path}/suspend")
    assert (response.status_code, response.content) == (204, b"")
    server = panel.server(created["id"])
    assert (server["status"], server["suspended"]) == ("suspended", True)
    assert panel.api("POST", f"{path}/suspend").status_code == 204
    assert panel.server(created["id"])["status"] == "suspended"
    assert panel.api("POST", f"{path}/unsuspend").status_code == 204
    server = panel.server(created["id"])
    assert (server["status"], server["suspended"]) == (None, False)
    assert panel.api("POST", f"{path}/unsuspend").status_code == 204


def test_case_16_suspension_pitfalls(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "stuck"})
    created = ptero.create(base_body()).json()["attributes"]
    path = f"/api/application/servers/{created['id']}"
    ptero.api("POST", f"{path}/suspend")
    # An install finishing while suspended keeps the server suspended.
    ptero.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    assert ptero.server(created["id"])["status"] == "suspended"
    # Unsuspending always sets null, even over install_failed.
    ptero.api("POST", f"{path}/unsuspend")
    other = ptero.create(base_body("order-2")).json()["attributes"]
    ptero.control("POST", f"/servers/{other['id']}/install", {"outcome": "failed"})
    ptero.api("POST", f"/api/application/servers/{other['id']}/suspend")
    ptero.api("POST", f"/api/application/servers/{other['id']}/unsuspend")
    assert ptero.server(other["id"])["status"] is None


def test_case_16_suspend_wings_failure(panel: PanelClient) -> None:
    created = panel.create(_body(panel)).json()["attributes"]
    panel.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    panel.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    response = panel.api("POST", f"/api/application/servers/{created['id']}/suspend")
    assert response.status_code == (504 if panel.flavor == "pterodactyl" else 500)
    # Pterodactyl reverts the status; Pelican leaves it suspended.
    expected = None if panel.flavor == "pterodactyl" else "suspended"
    assert panel.server(created["id"])["status"] == expected


def test_case_17_delete(panel: PanelClient) -> None:
    created = panel.create(_body(panel)).json()["attributes"]
    path = f"/api/application/servers/{created['id']}"
    response = panel.api("DELETE", path)
    assert (response.status_code, response.content) == (204, b"")
    assert panel.api("DELETE", path).status_code == 404
    assert panel.api("GET", path).status_code == 404
    assert panel.api("GET", "/api/application/servers/external/order-1001").status_code == 404


def test_case_17_delete_with_wings_down(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    path = f"/api/application/servers/{created['id']}"
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    response = ptero.api("DELETE", path)
    assert response.status_code == 504
    assert ptero.api("GET", path).status_code == 200
    assert ptero.api("DELETE", f"{path}/anything").status_code == 504
    assert ptero.api("DELETE", f"{path}/force").status_code == 204
    assert ptero.api("GET", path).status_code == 404
    # The external id can be reused, and a Wings 404 on delete is ignored.
    ptero.control("POST", "/nodes/1/wings", {"mode": "ok"})
    second = ptero.create(base_body()).json()["attributes"]
    ptero.control("POST", "/nodes/1/wings", {"mode": "error:404"})
    assert ptero.api("DELETE", f"/api/application/servers/{second['id']}").status_code == 204


async def test_case_11_concurrent_duplicate_external_id(panel: PanelClient) -> None:
    """Two simultaneous creates with one external id: one 201, one 422 unique."""
    body = _body(panel)
    async with httpx.AsyncClient(base_url=panel.base_url, headers=headers(panel.admin_key)) as client:
        responses = await asyncio.gather(*(client.post("/api/application/servers", json=body) for _ in range(2)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 422]
    loser = next(r for r in responses if r.status_code == 422)
    assert errors_of(loser) == [("external_id", "unique")]


def test_case_11_race_lost_after_validation(panel: PanelClient) -> None:
    panel.control("POST", "/race", {"external_id": "order-1001"})
    response = panel.create(_body(panel))
    assert response.status_code == 500
    assert response.json()["errors"] == [
        {
            "code": "QueryException",
            "status": "500",
            "detail": "An unexpected error was encountered while processing this request, please try again.",
        }
    ]
    # The concurrent winner committed the server: reconcile by external id and adopt it.
    assert panel.api("GET", "/api/application/servers/external/order-1001").status_code == 200
    panel.control("POST", "/race", {"external_id": "order-2", "winner": False})
    assert panel.create(_body(panel, "order-2")).status_code == 500
    assert panel.api("GET", "/api/application/servers/external/order-2").status_code == 404
    assert panel.create(_body(panel, "order-2")).status_code == 201
