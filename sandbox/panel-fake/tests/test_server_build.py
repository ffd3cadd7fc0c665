"""``PATCH /api/application/servers/{id}/build``: the request rules, allocations, Wings, per flavour."""

from __future__ import annotations

from typing import Any

import pytest
from panel_fake_support import PanelClient, base_body, errors_of, pelican_body

pytestmark = pytest.mark.contract


def _created(panel: PanelClient, external_id: str = "order-1001") -> dict[str, Any]:
    body = pelican_body(external_id) if panel.flavor == "pelican" else base_body(external_id)
    if panel.flavor == "pelican":
        body["deploy"]["port_range"] = ["25565-25600"]
    response = panel.create(body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["attributes"]
    return created


def _full_build(allocation: int | None, **overrides: Any) -> dict[str, Any]:
    """What a correct client sends: every limit and every feature limit, plus the default allocation."""
    body: dict[str, Any] = {
        "allocation": allocation,
        "limits": {"memory": 4096, "swap": 0, "disk": 20480, "io": 500, "cpu": 300, "threads": None},
        "feature_limits": {"databases": 1, "allocations": 2, "backups": 3},
    }
    body.update(overrides)
    return body


def _build(panel: PanelClient, server_id: int, body: Any, query: str = "") -> Any:
    return panel.api("PATCH", f"/api/application/servers/{server_id}/build{query}", json=body)


def test_full_build_updates_the_server(panel: PanelClient) -> None:
    created = _created(panel)
    response = _build(panel, created["id"], _full_build(created["allocation"]), "?include=allocations")
    assert response.status_code == 200, response.text
    attributes = response.json()["attributes"]
    assert attributes["limits"]["memory"] == 4096
    assert (attributes["limits"]["disk"], attributes["limits"]["cpu"]) == (20480, 300)
    assert attributes["feature_limits"] == {"databases": 1, "allocations": 2, "backups": 3}
    assert attributes["relationships"]["allocations"]["object"] == "list"
    assert panel.server(created["id"])["limits"]["memory"] == 4096
    # The node's allocated memory follows the change.
    node = panel.api("GET", "/api/application/nodes/1").json()["attributes"]
    assert node["allocated_resources"]["memory"] == 4096


def test_partial_body_is_rejected_like_the_panel(ptero: PanelClient) -> None:
    created = _created(ptero)
    response = _build(ptero, created["id"], {"memory": 4096})
    assert response.status_code == 422
    assert errors_of(response) == [
        ("allocation", "required"),
        ("swap", "required_without"),
        ("io", "required_without"),
        ("cpu", "required_without"),
        ("disk", "required_without"),
        ("feature_limits", "required"),
        ("feature_limits.databases", "present"),
        ("feature_limits.backups", "present"),
    ]
    details = [error["detail"] for error in response.json()["errors"]]
    assert details[0] == "The allocation field is required."
    assert details[1] == "The swap field is required when limits is not present."
    assert details[5] == "The feature limits field is required."
    assert details[6] == "The Database Limit field must be present."
    # Nothing changed.
    assert ptero.server(created["id"])["limits"]["memory"] == 2048


def test_empty_body_and_partial_limits(ptero: PanelClient) -> None:
    created = _created(ptero)
    empty = _build(ptero, created["id"], {})
    assert errors_of(empty) == [
        ("allocation", "required"),
        ("memory", "required_without"),
        ("swap", "required_without"),
        ("io", "required_without"),
        ("cpu", "required_without"),
        ("disk", "required_without"),
        ("feature_limits", "required"),
        ("feature_limits.databases", "present"),
        ("feature_limits.backups", "present"),
    ]
    body = _full_build(created["allocation"], limits={"memory": 4096})
    response = _build(ptero, created["id"], body)
    assert errors_of(response) == [
        ("limits.swap", "required_with"),
        ("limits.io", "required_with"),
        ("limits.cpu", "required_with"),
        ("limits.disk", "required_with"),
    ]
    assert response.json()["errors"][0]["detail"] == "The limits.swap field is required when limits is present."


def test_type_and_range_errors(ptero: PanelClient) -> None:
    created = _created(ptero)
    body = _full_build(
        created["allocation"],
        oom_disabled="yes",
        limits={"memory": -1, "swap": -2, "disk": "x", "io": 5, "cpu": 0},
        feature_limits={"databases": "one", "allocations": None, "backups": -1},
        add_allocations=["a", 7],
        remove_allocations="nope",
    )
    response = _build(ptero, created["id"], body)
    assert errors_of(response) == [
        ("oom_disabled", "boolean"),
        ("limits.memory", "min"),
        ("limits.swap", "min"),
        ("limits.io", "between"),
        ("limits.disk", "numeric"),
        ("remove_allocations", "array"),
        ("feature_limits.databases", "integer"),
        ("feature_limits.backups", "min"),
        ("add_allocations.0", "integer"),
    ]
    details = {error["meta"]["source_field"]: error["detail"] for error in response.json()["errors"]}
    assert details["limits.io"] == "The limits.io must be between 10 and 1000."
    assert details["remove_allocations"] == "The allocations to remove must be an array."
    assert details["add_allocations.0"] == "The allocation to add must be an integer."
    assert details["feature_limits.backups"] == "The Backup Limit must be at least 0."


def test_allocation_rules(ptero: PanelClient) -> None:
    first = _created(ptero, "order-a")
    second = _created(ptero, "order-b")
    taken = _build(ptero, first["id"], _full_build(second["allocation"]))
    assert errors_of(taken) == [("allocation", "unique")]
    assert taken.json()["errors"][0]["detail"] == "The allocation has already been taken."
    missing = _build(ptero, first["id"], _full_build(999_999))
    assert errors_of(missing) == [("allocation", "exists")]
    assert missing.json()["errors"][0]["detail"] == "The selected allocation is invalid."
    assert errors_of(_build(ptero, first["id"], _full_build(None))) == [("allocation", "required")]
    # A free allocation that is not the server's: the service refuses it (400 DisplayException).
    free = _free_allocation(ptero)
    refused = _build(ptero, first["id"], _full_build(free))
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {
            "code": "DisplayException",
            "status": "400",
            "detail": "The requested default allocation is not currently assigned to this server.",
        }
    ]


def _free_allocation(panel: PanelClient, node: int = 1, skip: int = 0) -> int:
    listing = panel.api("GET", f"/api/application/nodes/{node}/allocations?filter[server_id]=none&per_page=5").json()
    allocation_id: int = listing["data"][skip]["attributes"]["id"]
    return allocation_id


def test_add_and_remove_allocations_pterodactyl(ptero: PanelClient) -> None:
    created = _created(ptero)
    default = created["allocation"]
    extra, other_node = _free_allocation(ptero), _free_allocation(ptero, node=2)
    body = _full_build(default, add_allocations=[extra, other_node])
    response = _build(ptero, created["id"], body, "?include=allocations")
    assert response.status_code == 200
    owned = [a["attributes"]["id"] for a in response.json()["attributes"]["relationships"]["allocations"]["data"]]
    assert owned == sorted([default, extra])  # the other node's port is skipped silently
    # Removing the default needs a fallback among the added ones.
    refused = _build(ptero, created["id"], _full_build(default, remove_allocations=[default]))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["detail"] == (
        "You are attempting to delete the default allocation for this server but there is no fallback "
        "allocation to use."
    )
    fallback = _free_allocation(ptero)
    moved = _build(ptero, created["id"], _full_build(default, add_allocations=[fallback], remove_allocations=[default]))
    assert moved.status_code == 200
    assert moved.json()["attributes"]["allocation"] == fallback
    # Moving the default to an allocation it already has, and dropping the old one.
    switched = _build(ptero, created["id"], _full_build(extra, remove_allocations=[fallback]))
    assert switched.json()["attributes"]["allocation"] == extra
    summary = ptero.control("GET", "/servers").json()["servers"][0]
    assert summary["allocations"] == [extra]


def test_feature_limits_nulls(ptero: PanelClient) -> None:
    created = _created(ptero)
    body = _full_build(created["allocation"], feature_limits={"databases": None, "backups": None})
    attributes = _build(ptero, created["id"], body).json()["attributes"]
    # databases null stays null, omitted allocations become null, backups null becomes 0.
    assert attributes["feature_limits"] == {"databases": None, "allocations": None, "backups": 0}
    assert attributes["container"]["environment"]["P_SERVER_ALLOCATION_LIMIT"] is None


def test_legacy_top_level_limits_and_rounding(ptero: PanelClient) -> None:
    created = _created(ptero)
    body = {
        "allocation": created["allocation"],
        "memory": "3072",
        "swap": -1,
        "disk": 4096.5,
        "io": 800,
        "cpu": 0,
        "threads": "0-1",
        "oom_disabled": False,
        "feature_limits": {"databases": 0, "backups": 0},
    }
    attributes = _build(ptero, created["id"], body).json()["attributes"]
    assert attributes["limits"] == {
        "memory": 3072,
        "swap": -1,
        "disk": 4097,
        "io": 800,
        "cpu": 0,
        "threads": "0-1",
        "oom_disabled": False,
    }


def test_wings_failure_does_not_undo_the_change_pterodactyl(ptero: PanelClient) -> None:
    created = _created(ptero)
    for mode in ("unreachable", "error:500"):
        ptero.control("POST", "/nodes/1/wings", {"mode": mode, "actions": ["build"]})
        response = _build(ptero, created["id"], _full_build(created["allocation"]))
        assert response.status_code == 200, mode
    assert ptero.server(created["id"])["limits"]["memory"] == 4096
    calls = ptero.control("GET", "/requests/counts?method=PATCH").json()["counts"]
    assert calls == {f"PATCH /api/application/servers/{created['id']}/build": 2}


def test_wings_failure_pelican(pelican: PanelClient) -> None:
    created = _created(pelican)
    pelican.control("POST", "/nodes/1/wings", {"mode": "unreachable", "actions": ["build"]})
    assert _build(pelican, created["id"], _full_build(created["allocation"])).status_code == 200
    pelican.control("POST", "/nodes/1/wings", {"mode": "error:500", "actions": ["build"]})
    body = _full_build(created["allocation"], limits={"memory": 8192, "swap": 0, "disk": 1, "io": 0, "cpu": 0})
    response = _build(pelican, created["id"], body)
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "RequestException"
    # The HTTP error came after the commit: the change is there.
    assert pelican.server(created["id"])["limits"]["memory"] == 8192


def test_pelican_rules(pelican: PanelClient) -> None:
    created = _created(pelican)
    # io 0 is fine on Pelican; oom_killer replaces oom_disabled.
    body = _full_build(created["allocation"], oom_killer=True)
    body["limits"]["io"] = 0
    attributes = _build(pelican, created["id"], body).json()["attributes"]
    assert attributes["limits"]["io"] == 0
    assert (attributes["limits"]["oom_killer"], attributes["limits"]["oom_disabled"]) == (True, False)
    bad = _build(pelican, created["id"], {"oom_killer": "x"})
    assert errors_of(bad) == [
        ("oom_killer", "boolean"),
        ("memory", "required_without"),
        ("swap", "required_without"),
        ("io", "required_without"),
        ("cpu", "required_without"),
        ("disk", "required_without"),
        ("feature_limits", "required"),
        ("feature_limits.databases", "present"),
        ("feature_limits.backups", "present"),
    ]
    # allocation passes validation when omitted, then the request class reads it: a 500.
    body = _full_build(created["allocation"])
    del body["allocation"]
    omitted = _build(pelican, created["id"], body)
    assert omitted.status_code == 500
    assert omitted.json()["errors"][0]["code"] == "ErrorException"
    # A free allocation that is not the server's: findOrFail, a 404.
    assert _build(pelican, created["id"], _full_build(_free_allocation(pelican))).status_code == 404
    # null clears the default allocation.
    cleared = _build(pelican, created["id"], _full_build(None)).json()["attributes"]
    assert cleared["allocation"] is None


def test_pelican_removing_the_default_picks_another(pelican: PanelClient) -> None:
    created = _created(pelican)
    default = created["allocation"]
    extra = _free_allocation(pelican)
    _build(pelican, created["id"], _full_build(default, add_allocations=[extra]))
    moved = _build(pelican, created["id"], _full_build(default, remove_allocations=[default])).json()["attributes"]
    assert moved["allocation"] == extra
    # Removing the last one leaves no default and no fallback: allocation null.
    last = _build(pelican, created["id"], _full_build(extra, remove_allocations=[extra])).json()["attributes"]
    assert last["allocation"] is None


def test_build_on_missing_server_and_acl(ptero: PanelClient) -> None:
    assert _build(ptero, 999, {}).status_code == 404
    created = _created(ptero)
    readonly = ptero.keys["read_servers_application"]
    response = ptero.api("PATCH", f"/api/application/servers/{created['id']}/build", key=readonly, json={})
    assert response.status_code == 403
