"""What a drift reconciler sees: every server paged exactly as Laravel pages, orphans included,
and the control routes that change rows behind the shop's back."""

from __future__ import annotations

from typing import Any

import pytest
from panel_fake_support import PanelClient, base_body, errors_of, pelican_body

pytestmark = pytest.mark.contract

SERVERS = "/api/application/servers"


def _create(panel: PanelClient, external_id: str) -> dict[str, Any]:
    body = pelican_body(external_id) if panel.flavor == "pelican" else base_body(external_id)
    response = panel.create(body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["attributes"]
    return created


def _orphan(panel: PanelClient, **body: Any) -> dict[str, Any]:
    summary: dict[str, Any] = panel.control("POST", "/servers", body).json()
    return summary


def _page(panel: PanelClient, query: str) -> dict[str, Any]:
    response = panel.api("GET", f"{SERVERS}?{query}")
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def test_walking_every_page_finds_every_server(panel: PanelClient) -> None:
    made = [_create(panel, f"order-{index}")["id"] for index in range(3)]
    made.append(_orphan(panel)["id"])  # no external_id at all
    made.append(_orphan(panel, external_id="someone-else-1")["id"])
    seen: list[int] = []
    external_ids: list[str | None] = []
    for page in (1, 2, 3):
        payload = _page(panel, f"page={page}&per_page=2")
        seen += [item["attributes"]["id"] for item in payload["data"]]
        external_ids += [item["attributes"]["external_id"] for item in payload["data"]]
        pagination = payload["meta"]["pagination"]
        assert (pagination["total"], pagination["per_page"], pagination["total_pages"]) == (5, 2, 3)
        assert (pagination["current_page"], pagination["count"]) == (page, 1 if page == 3 else 2)
    assert seen == made
    assert None in external_ids and "someone-else-1" in external_ids
    middle = _page(panel, "page=2&per_page=2")["meta"]["pagination"]["links"]
    # Links carry only the page: per_page is not appended, as on the real panel.
    assert middle == {"previous": f"{panel.base_url}{SERVERS}?page=1", "next": f"{panel.base_url}{SERVERS}?page=3"}


def test_page_past_the_end_is_empty_and_not_clamped(ptero: PanelClient) -> None:
    _create(ptero, "order-1")
    payload = _page(ptero, "page=4&per_page=2")
    assert payload["data"] == []
    assert payload["meta"]["pagination"] == {
        "total": 1,
        "count": 0,
        "per_page": 2,
        "current_page": 4,
        "total_pages": 1,
        "links": {"previous": f"{ptero.base_url}{SERVERS}?page=3"},
    }


def test_per_page_corner_cases(ptero: PanelClient) -> None:
    for _ in range(3):
        _orphan(ptero)
    assert _page(ptero, "")["meta"]["pagination"]["per_page"] == 50
    assert _page(ptero, "per_page=")["meta"]["pagination"]["per_page"] == 50
    # "0" is falsy in PHP: the model's default of 15.
    assert _page(ptero, "per_page=0")["meta"]["pagination"]["per_page"] == 15
    # A negative limit is ignored: everything on one page.
    negative = _page(ptero, "per_page=-1&page=2")
    assert len(negative["data"]) == 3
    assert negative["meta"]["pagination"]["per_page"] == -1
    assert negative["meta"]["pagination"]["total_pages"] == 1
    # Invalid pages mean page 1.
    for page in ("abc", "0", "-2", "1.5"):
        assert _page(ptero, f"page={page}&per_page=1")["meta"]["pagination"]["current_page"] == 1
    broken = ptero.api("GET", f"{SERVERS}?per_page=abc")
    assert broken.status_code == 500
    assert broken.json()["errors"][0]["code"] == "TypeError"


def test_search_is_validated(ptero: PanelClient) -> None:
    assert errors_of(ptero.api("GET", f"{SERVERS}?search[]=x")) == [("search", "string")]
    assert errors_of(ptero.api("GET", f"{SERVERS}?search={'x' * 101}")) == [("search", "max")]
    assert ptero.api("GET", f"{SERVERS}?search=anything").status_code == 200


def test_short_uuid_filter_name_per_flavour(panel: PanelClient) -> None:
    created = _create(panel, "order-1")
    good, bad = ("uuid_short", "uuidShort") if panel.flavor == "pelican" else ("uuidShort", "uuid_short")
    found = _page(panel, f"filter[{good}]={created['identifier']}")
    assert [item["attributes"]["id"] for item in found["data"]] == [created["id"]]
    assert panel.api("GET", f"{SERVERS}?filter[{bad}]=x").status_code == 400


# --------------------------------------------------------------------------- controls


def test_orphan_server_rows(panel: PanelClient) -> None:
    orphan = _orphan(panel, external_id="Legacy-7", status="suspended", memory=512)
    assert (orphan["status"], orphan["memory"], orphan["external_id"]) == ("suspended", 512, "Legacy-7")
    found = panel.api("GET", f"{SERVERS}/external/legacy-7")
    assert found.status_code == 200
    attributes = found.json()["attributes"]
    assert (attributes["suspended"], attributes["container"]["installed"]) == (True, 1)
    assert attributes["container"]["environment"]["SERVER_JARFILE"] == "server.jar"
    # The unique index holds for rows written by hand too, and the panel sees the external id as taken.
    assert panel.http.post("/_fake/servers", json={"external_id": "LEGACY-7"}).status_code == 409
    body = pelican_body("legacy-7") if panel.flavor == "pelican" else base_body("legacy-7")
    assert errors_of(panel.create(body)) == [("external_id", "unique")]
    # A given allocation must be free.
    taken = panel.http.post("/_fake/servers", json={"allocation": attributes["allocation"]})
    assert taken.status_code == 409


def test_edit_rows_by_hand(panel: PanelClient) -> None:
    created = _create(panel, "order-1")
    server_id = created["id"]
    panel.control("PATCH", f"/servers/{server_id}", {"status": "suspended"})
    assert panel.server(server_id)["suspended"] is True
    assert panel.api("POST", f"{SERVERS}/{server_id}/unsuspend").status_code == 204
    assert panel.server(server_id)["status"] is None
    edited = panel.control(
        "PATCH", f"/servers/{server_id}", {"memory": 8192, "cpu": 400, "databases": None, "threads": "0"}
    ).json()
    assert (edited["memory"], edited["cpu"], edited["threads"]) == (8192, 400, "0")
    attributes = panel.server(server_id)
    assert attributes["limits"]["memory"] == 8192
    assert attributes["feature_limits"]["databases"] is None
    node = panel.api("GET", "/api/application/nodes/1").json()["attributes"]
    assert node["allocated_resources"]["memory"] == 8192
    panel.control("PATCH", f"/servers/{server_id}", {"external_id": None})
    assert panel.api("GET", f"{SERVERS}/external/order-1").status_code == 404
    gone = panel.control("DELETE", f"/servers/{server_id}").json()
    assert gone == {"deleted": server_id, "external_id": None, "backups_deleted": 0}
    assert panel.api("GET", f"{SERVERS}/{server_id}").status_code == 404
    assert panel.http.delete(f"/_fake/servers/{server_id}").status_code == 404


def test_backup_controls(ptero: PanelClient) -> None:
    server_id = _orphan(ptero)["id"]
    backup = ptero.control("POST", f"/servers/{server_id}/backups", {"name": "nightly"}).json()
    assert (backup["name"], backup["is_locked"], backup["adapter"]) == ("nightly", False, "wings")
    assert ptero.control("POST", f"/backups/{backup['id']}/lock").json()["is_locked"] is True
    assert ptero.control("POST", f"/backups/{backup['id']}/unlock").json()["is_locked"] is False
    assert ptero.control("GET", f"/servers/{server_id}/backups").json()["count"] == 1
    ptero.control("DELETE", f"/backups/{backup['id']}")
    assert ptero.control("GET", f"/servers/{server_id}/backups").json()["count"] == 0
    assert ptero.http.post("/_fake/servers/999/backups", json={}).status_code == 404
