"""Suspension pitfalls, transfers, Wings failures per action, and deletion with backups (§4.3, §8)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from panel_fake_support import PanelClient, base_body, pelican_body, wait_until

pytestmark = pytest.mark.contract

WINGS_DOWN = "Could not establish a connection to the machine running this server. Please try again."
GENERIC = "An unexpected error was encountered while processing this request, please try again."


def _create(panel: PanelClient, external_id: str = "order-1001", *, installed: bool = True) -> dict[str, Any]:
    body = pelican_body(external_id) if panel.flavor == "pelican" else base_body(external_id)
    response = panel.create(body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["attributes"]
    if installed:
        panel.control("POST", f"/servers/{created['id']}/install", {"outcome": "ok"})
    return created


def _post(panel: PanelClient, server_id: int, action: str, **kwargs: Any) -> httpx.Response:
    return panel.api("POST", f"/api/application/servers/{server_id}/{action}", **kwargs)


def _delete(panel: PanelClient, server_id: int, force: bool = False) -> httpx.Response:
    return panel.api("DELETE", f"/api/application/servers/{server_id}" + ("/force" if force else ""))


# --------------------------------------------------------------------------- suspension


def test_unsuspend_wipes_installing_and_failed(panel: PanelClient) -> None:
    panel.control("POST", "/install", {"outcome": "stuck"})
    created = _create(panel, installed=False)
    assert (_post(panel, created["id"], "suspend").status_code, _status(panel, created["id"])) == (204, "suspended")
    assert _post(panel, created["id"], "unsuspend").status_code == 204
    # The server never finished installing, yet it now reads as ready.
    server = panel.server(created["id"])
    assert (server["status"], server["container"]["installed"]) == (None, 1)


def _status(panel: PanelClient, server_id: int) -> Any:
    return panel.server(server_id)["status"]


def test_pterodactyl_failed_suspend_rolls_back_to_null_not_previous(ptero: PanelClient) -> None:
    ptero.control("POST", "/install", {"outcome": "stuck"})
    created = _create(ptero, installed=False)
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable", "actions": ["suspend"]})
    response = _post(ptero, created["id"], "suspend")
    assert response.status_code == 504
    assert response.json() == {"errors": [{"code": "DaemonConnectionException", "status": "504", "detail": WINGS_DOWN}]}
    # SuspensionService reverts to "not suspended" (null), so "installing" is lost.
    assert _status(ptero, created["id"]) is None


def test_pterodactyl_failed_unsuspend_stays_suspended(ptero: PanelClient) -> None:
    created = _create(ptero)
    assert _post(ptero, created["id"], "suspend").status_code == 204
    ptero.control("POST", "/nodes/1/wings", {"mode": "error:500", "request_id": "req-7", "actions": ["unsuspend"]})
    response = _post(ptero, created["id"], "unsuspend")
    assert response.status_code == 500
    [error] = response.json()["errors"]
    assert (error["code"], error["status"]) == ("DaemonConnectionException", "500")
    assert error["detail"].endswith("(code: 500) (request_id: req-7)")
    assert _status(ptero, created["id"]) == "suspended"
    ptero.control(
        "POST", "/nodes/1/wings", {"mode": "error:409", "request_id": "r2", "error": "busy", "actions": ["sync"]}
    )
    conflict = _post(ptero, created["id"], "unsuspend")
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["detail"] == "An error occurred on the remote host: busy. (request id: r2)"


def test_pelican_failed_suspension_keeps_the_new_status(pelican: PanelClient) -> None:
    created = _create(pelican)
    pelican.control("POST", "/nodes/1/wings", {"mode": "unreachable", "actions": ["suspend", "unsuspend"]})
    response = _post(pelican, created["id"], "suspend")
    assert response.status_code == 500
    assert response.json()["errors"] == [{"code": "ConnectionException", "status": "500", "detail": GENERIC}]
    assert _status(pelican, created["id"]) == "suspended"
    assert _post(pelican, created["id"], "unsuspend").status_code == 500
    assert _status(pelican, created["id"]) is None


def test_suspension_during_transfer_is_a_conflict(panel: PanelClient) -> None:
    created = _create(panel)
    panel.control("PATCH", f"/servers/{created['id']}", {"transferring": True})
    response = _post(panel, created["id"], "suspend")
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "code": "ConflictHttpException",
            "status": "409",
            "detail": "Cannot toggle suspension status on a server that is currently being transferred.",
        }
    ]
    assert _status(panel, created["id"]) is None
    # The no-op check comes first: unsuspending a server that is not suspended is still a 204.
    assert _post(panel, created["id"], "unsuspend").status_code == 204
    client = panel.api("GET", f"/api/client/servers/{created['identifier']}", key=panel.keys["admin_client"])
    assert client.json()["attributes"]["is_transferring"] is True
    resources = panel.api(
        "GET", f"/api/client/servers/{created['identifier']}/resources", key=panel.keys["admin_client"]
    )
    assert resources.status_code == 409
    assert resources.json()["errors"][0]["detail"] == (
        "This server is currently being transferred to a new machine, please try again later."
    )
    panel.control("PATCH", f"/servers/{created['id']}", {"transferring": False})
    assert _post(panel, created["id"], "suspend").status_code == 204


def test_suspended_resources_message(ptero: PanelClient) -> None:
    created = _create(ptero)
    _post(ptero, created["id"], "suspend")
    response = ptero.api(
        "GET", f"/api/client/servers/{created['identifier']}/resources", key=ptero.keys["admin_client"]
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["detail"] == (
        "This server is currently suspended and the functionality requested is unavailable."
    )


def test_suspend_hang_commits_then_answers_late(panel: PanelClient) -> None:
    created = _create(panel)
    panel.control("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "actions": ["suspend"], "hang_seconds": 1})
    with pytest.raises(httpx.ReadTimeout):
        _post(panel, created["id"], "suspend", timeout=0.3)
    wait_until(lambda: _status(panel, created["id"]) == "suspended")
    panel.control("POST", "/nodes/1/wings", {"mode": "commit_then_hang", "actions": ["unsuspend"], "hang_seconds": 0.3})
    started = time.monotonic()
    assert _post(panel, created["id"], "unsuspend").status_code == 204
    assert time.monotonic() - started >= 0.3


# --------------------------------------------------------------------------- Wings action filters


def test_wings_action_filter_and_times(ptero: PanelClient) -> None:
    created = _create(ptero)
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable", "actions": ["delete"]})
    # Other calls are unaffected.
    assert _post(ptero, created["id"], "suspend").status_code == 204
    assert _delete(ptero, created["id"]).status_code == 504
    rules = ptero.control("GET", "/nodes").json()["nodes"][0]["wings"]["rules"]
    assert rules == [{"mode": "unreachable", "actions": ["delete"], "remaining": None}]
    # A counted rule on suspend+unsuspend: the next call fails, then Wings is fine again.
    ptero.control("POST", "/nodes/1/wings", {"mode": "error:502", "actions": ["sync"], "times": 1})
    assert _post(ptero, created["id"], "unsuspend").status_code == 502
    assert _post(ptero, created["id"], "unsuspend").status_code == 204
    # An "ok" filter exempts an action from a catch-all mode.
    ptero.control("POST", "/nodes/1/wings", {"mode": "unreachable"})
    ptero.control("POST", "/nodes/1/wings", {"mode": "ok", "actions": ["suspend"]})
    assert _post(ptero, created["id"], "suspend").status_code == 204
    assert _post(ptero, created["id"], "unsuspend").status_code == 504
    ptero.control("POST", "/nodes/1/wings", {"mode": "ok"})
    assert _delete(ptero, created["id"]).status_code == 204


def test_wings_unknown_action_is_rejected(ptero: PanelClient) -> None:
    response = ptero.http.post("/_fake/nodes/1/wings", json={"mode": "unreachable", "actions": ["explode"]})
    assert response.status_code == 422


def test_request_log_counts_lifecycle_calls(panel: PanelClient) -> None:
    created = _create(panel)
    panel.control("DELETE", "/requests")
    base = f"/api/application/servers/{created['id']}"
    for _ in range(2):
        _post(panel, created["id"], "suspend")
    _post(panel, created["id"], "unsuspend")
    _delete(panel, created["id"])
    _delete(panel, created["id"])
    counts = panel.control("GET", "/requests/counts").json()
    assert counts == {
        "total": 5,
        "counts": {f"POST {base}/suspend": 2, f"POST {base}/unsuspend": 1, f"DELETE {base}": 2},
    }
    exact = panel.control("GET", f"/requests?path={base}&method=DELETE").json()
    assert [entry["status"] for entry in exact["requests"]] == [204, 404]
    assert exact["requests"][0]["external_id"] == "order-1001"
    assert panel.control("GET", "/requests?status=404").json()["count"] == 1


# --------------------------------------------------------------------------- deletion and backups


def test_locked_backup_does_not_block_a_delete(panel: PanelClient) -> None:
    created = _create(panel)
    backup = panel.control("POST", f"/servers/{created['id']}/backups", {"locked": True}).json()
    assert backup["is_locked"] is True
    listing = panel.control("GET", f"/servers/{created['id']}/backups").json()
    assert listing["count"] == 1
    response = _delete(panel, created["id"])
    assert (response.status_code, response.content) == (204, b"")
    # The backup rows went with the server (ON DELETE CASCADE).
    assert panel.http.post(f"/_fake/backups/{backup['id']}/unlock").status_code == 404
    assert _delete(panel, created["id"]).status_code == 404


def test_pterodactyl_wings_error_refuses_delete_with_its_message(ptero: PanelClient) -> None:
    created = _create(ptero)
    ptero.control(
        "POST",
        "/nodes/1/wings",
        {"mode": "error:409", "request_id": "abc", "error": "server is busy", "actions": ["delete"]},
    )
    response = _delete(ptero, created["id"])
    assert response.status_code == 409
    assert response.json() == {
        "errors": [
            {
                "code": "DaemonConnectionException",
                "status": "409",
                "detail": "An error occurred on the remote host: server is busy. (request id: abc)",
            }
        ]
    }
    assert ptero.api("GET", f"/api/application/servers/{created['id']}").status_code == 200
    assert _delete(ptero, created["id"], force=True).status_code == 204
    assert ptero.api("GET", "/api/application/servers/external/order-1001").status_code == 404


def test_pterodactyl_ignores_s3_backups_on_delete(ptero: PanelClient) -> None:
    created = _create(ptero)
    ptero.control("POST", f"/servers/{created['id']}/backups", {"adapter": "s3", "fail_delete": True})
    assert _delete(ptero, created["id"]).status_code == 204


def test_pelican_delete_semantics(pelican: PanelClient) -> None:
    first = _create(pelican, "order-a")
    # An HTTP error from Wings is only reported: the server is deleted.
    pelican.control("POST", "/nodes/1/wings", {"mode": "error:500", "actions": ["delete"]})
    assert _delete(pelican, first["id"]).status_code == 204
    assert pelican.api("GET", f"/api/application/servers/{first['id']}").status_code == 404
    # Unreachable Wings refuses a plain delete; /force goes through.
    second = _create(pelican, "order-b")
    pelican.control("POST", "/nodes/1/wings", {"mode": "unreachable", "actions": ["delete"]})
    response = _delete(pelican, second["id"])
    assert response.status_code == 500
    assert response.json()["errors"] == [{"code": "ConnectionException", "status": "500", "detail": GENERIC}]
    assert pelican.api("GET", f"/api/application/servers/{second['id']}").status_code == 200
    assert _delete(pelican, second["id"], force=True).status_code == 204


def test_pelican_failing_s3_backup_refuses_delete(pelican: PanelClient) -> None:
    created = _create(pelican)
    pelican.control("POST", f"/servers/{created['id']}/backups", {"locked": True})
    pelican.control("POST", f"/servers/{created['id']}/backups", {"adapter": "s3", "fail_delete": True})
    response = _delete(pelican, created["id"])
    assert response.status_code == 500
    assert response.json()["errors"] == [{"code": "S3Exception", "status": "500", "detail": GENERIC}]
    assert pelican.control("GET", f"/servers/{created['id']}/backups").json()["count"] == 2
    assert _delete(pelican, created["id"], force=True).status_code == 204
