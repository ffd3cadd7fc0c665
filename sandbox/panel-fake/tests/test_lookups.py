"""Lookups and listings: §10 E.17 (external ids, partial filters), pagination, nodes, client API."""

from __future__ import annotations

import pytest
from panel_fake_support import PanelClient, base_body, errors_of

pytestmark = pytest.mark.contract


def test_case_17_external_lookup_is_case_insensitive(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    found = ptero.api("GET", "/api/application/servers/external/ORDER-1001")
    assert (found.status_code, found.json()["attributes"]["id"]) == (200, created["id"])
    assert ptero.api("GET", "/api/application/servers/external/order-1001%2Fx").status_code == 404


def test_filter_is_a_partial_match(ptero: PanelClient) -> None:
    for external_id in ("order-1", "order-10", "order-2"):
        ptero.create(base_body(external_id))
    listing = ptero.api("GET", "/api/application/servers?filter[external_id]=order-1").json()
    assert sorted(s["attributes"]["external_id"] for s in listing["data"]) == ["order-1", "order-10"]
    bad = ptero.api("GET", "/api/application/servers?filter[node]=1")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "InvalidFilterQuery"
    newest_first = ptero.api("GET", "/api/application/servers?sort=-id").json()["data"]
    assert [s["attributes"]["external_id"] for s in newest_first] == ["order-2", "order-10", "order-1"]


def test_pagination(ptero: PanelClient) -> None:
    for index in range(3):
        ptero.create(base_body(f"order-{index}"))
    page = ptero.api("GET", "/api/application/servers?per_page=2&page=2").json()
    assert page["meta"]["pagination"] == {
        "total": 3,
        "count": 1,
        "per_page": 2,
        "current_page": 2,
        "total_pages": 2,
        "links": {"previous": f"{ptero.base_url}/api/application/servers?page=1"},
    }
    first = ptero.api("GET", "/api/application/servers?per_page=2").json()["meta"]["pagination"]
    assert first["links"] == {"next": f"{ptero.base_url}/api/application/servers?page=2"}
    empty = ptero.api("GET", "/api/application/users?filter[email]=nobody").json()
    assert empty["data"] == []
    assert empty["meta"]["pagination"]["total_pages"] == 1


def test_locations_and_nodes(ptero: PanelClient) -> None:
    locations = ptero.api("GET", "/api/application/locations").json()
    assert [item["attributes"]["short"] for item in locations["data"]] == ["us1", "eu1"]
    assert list(locations["data"][0]["attributes"]) == ["id", "short", "long", "updated_at", "created_at"]
    node = ptero.api("GET", "/api/application/nodes/1").json()["attributes"]
    assert list(node)[:6] == ["id", "uuid", "public", "name", "description", "location_id"]
    assert node["allocated_resources"] == {"memory": 0, "disk": 0}
    assert "daemon_token" not in node


def test_deployable_nodes(ptero: PanelClient) -> None:
    listing = ptero.api("GET", "/api/application/nodes/deployable?memory=1024&disk=1024&location_ids[]=2").json()
    assert "meta" not in listing
    assert [n["attributes"]["id"] for n in listing["data"]] == [2]
    paged = ptero.api("GET", "/api/application/nodes/deployable?memory=1024&disk=1024&page=1").json()
    assert paged["meta"]["pagination"]["total"] == 2
    missing = ptero.api("GET", "/api/application/nodes/deployable?disk=1")
    assert errors_of(missing) == [("memory", "required")]
    too_big = ptero.api("GET", "/api/application/nodes/deployable?memory=999999999&disk=1")
    assert too_big.json()["errors"][0]["code"] == "NoViableNodeException"


def test_node_allocations_filter(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    mine = ptero.api("GET", f"/api/application/nodes/1/allocations?filter[server_id]={created['id']}").json()
    assert [a["attributes"]["id"] for a in mine["data"]] == [created["allocation"]]
    free = ptero.api("GET", "/api/application/nodes/1/allocations?filter[server_id]=none&per_page=2000").json()
    assert free["meta"]["pagination"]["total"] == 999
    assert all(not a["attributes"]["assigned"] for a in free["data"])


def test_patch_details(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    path = f"/api/application/servers/{created['id']}/details"
    response = ptero.api("PATCH", path, json={"name": "Renamed", "user": 1, "external_id": "order-adopted"})
    assert response.status_code == 200
    assert response.json()["attributes"]["external_id"] == "order-adopted"
    assert ptero.api("GET", "/api/application/servers/external/order-adopted").status_code == 200
    # Omitting external_id clears it, as on the real panel.
    cleared = ptero.api("PATCH", path, json={"name": "Renamed", "user": 1}).json()["attributes"]
    assert cleared["external_id"] is None


def test_client_server_view(panel: PanelClient) -> None:
    body = base_body()
    if panel.flavor == "pelican":
        body["deploy"] = {"tags": ["game"], "dedicated_ip": False, "port_range": ["25565-25570"]}
    created = panel.create(body).json()["attributes"]
    response = panel.api("GET", f"/api/client/servers/{created['identifier']}", key=panel.keys["admin_client"])
    assert response.status_code == 200
    payload = response.json()
    attributes = payload["attributes"]
    assert attributes["identifier"] == created["identifier"]
    assert attributes["internal_id"] == created["id"]
    assert (attributes["is_installing"], attributes["is_suspended"], attributes["status"]) == (
        True,
        False,
        "installing",
    )
    assert "-jar server.jar" in attributes["invocation"]
    variables = attributes["relationships"]["variables"]["data"]
    assert "DL_PATH" not in [v["attributes"]["env_variable"] for v in variables]
    assert attributes["relationships"]["allocations"]["data"][0]["attributes"]["is_default"] is True
    assert payload["meta"]["is_server_owner"] is True
