"""Creating servers: reference §11 cases 1–10 and 24, plus type semantics of the rule table."""

from __future__ import annotations

from typing import Any

import pytest
from panel_fake_support import PanelClient, base_body, errors_of, pelican_body

pytestmark = pytest.mark.contract


def test_case_01_create_ok(ptero: PanelClient) -> None:
    response = ptero.create(base_body(), include="allocations")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["object"] == "server"
    attributes = body["attributes"]
    assert list(attributes) == [
        "id",
        "external_id",
        "uuid",
        "identifier",
        "name",
        "description",
        "status",
        "suspended",
        "limits",
        "feature_limits",
        "user",
        "node",
        "allocation",
        "nest",
        "egg",
        "container",
        "updated_at",
        "created_at",
        "relationships",
    ]
    assert attributes["external_id"] == "order-1001"
    assert attributes["identifier"] == attributes["uuid"][:8]
    assert attributes["description"] == ""
    assert attributes["status"] == "installing"
    assert attributes["suspended"] is False
    assert attributes["limits"] == {
        "memory": 2048,
        "swap": 0,
        "disk": 10240,
        "io": 500,
        "cpu": 200,
        "threads": None,
        "oom_disabled": True,
    }
    assert attributes["feature_limits"] == {"databases": 0, "allocations": 0, "backups": 0}
    assert (attributes["user"], attributes["node"], attributes["nest"], attributes["egg"]) == (1, 1, 1, 1)
    container = attributes["container"]
    assert container["installed"] == 0
    assert container["image"] == "ghcr.io/pterodactyl/yolks:java_21"
    assert container["environment"] == {
        "MINECRAFT_VERSION": "latest",
        "SERVER_JARFILE": "server.jar",
        "DL_PATH": "",
        "BUILD_NUMBER": "latest",
        "STARTUP": base_body()["startup"],
        "P_SERVER_LOCATION": "us1",
        "P_SERVER_UUID": attributes["uuid"],
        "P_SERVER_ALLOCATION_LIMIT": 0,
    }
    assert attributes["created_at"].endswith("+00:00")
    allocations = attributes["relationships"]["allocations"]
    assert allocations["object"] == "list"
    [allocation] = allocations["data"]
    assert allocation["object"] == "allocation"
    assert allocation["attributes"]["id"] == attributes["allocation"]
    assert allocation["attributes"]["ip"] == "10.0.0.5"
    assert 25565 <= allocation["attributes"]["port"] <= 26564
    assert allocation["attributes"]["assigned"] is True
    assert set(allocation["attributes"]) == {"id", "ip", "alias", "port", "notes", "assigned"}


def test_case_01_omitted_variable_is_stored_empty_not_default(ptero: PanelClient) -> None:
    body = base_body()
    del body["environment"]["MINECRAFT_VERSION"]
    response = ptero.create(body)
    assert response.status_code == 201, response.text
    assert response.json()["attributes"]["container"]["environment"]["MINECRAFT_VERSION"] == ""


def test_case_02_duplicate_external_id(panel: PanelClient) -> None:
    body = base_body() if panel.flavor == "pterodactyl" else pelican_body()
    assert panel.create(body).status_code == 201
    response = panel.create(body)
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "code": "ValidationException",
                "status": "422",
                "detail": "The external id has already been taken.",
                "meta": {"source_field": "external_id", "rule": "unique"},
            }
        ]
    }
    upper = dict(body, external_id="ORDER-1001")
    assert errors_of(panel.create(upper)) == [("external_id", "unique")]


def test_case_03_numeric_external_id(ptero: PanelClient) -> None:
    response = ptero.create(base_body(external_id=1001))  # type: ignore[arg-type]
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["detail"] == "The external id must be a string."
    assert error["meta"] == {"source_field": "external_id", "rule": "string"}


def test_case_04_empty_body(ptero: PanelClient) -> None:
    response = ptero.create({})
    assert response.status_code == 422
    assert errors_of(response) == [
        ("name", "required"),
        ("user", "required"),
        ("egg", "required"),
        ("docker_image", "required"),
        ("startup", "required"),
        ("environment", "present"),
        ("limits", "required"),
        ("limits.memory", "required"),
        ("limits.swap", "required"),
        ("limits.disk", "required"),
        ("limits.io", "required"),
        ("limits.cpu", "required"),
        ("feature_limits", "required"),
        ("feature_limits.databases", "present"),
        ("feature_limits.backups", "present"),
        ("allocation.default", "required"),
    ]
    details = {e["meta"]["source_field"]: e["detail"] for e in response.json()["errors"]}
    assert details["docker_image"] == "The docker image field is required."
    assert details["environment"] == "The environment field must be present."
    assert details["feature_limits.databases"] == "The feature limits.databases field must be present."
    assert details["allocation.default"] == "The allocation.default field is required."
    assert all(e["status"] == "422" and e["code"] == "ValidationException" for e in response.json()["errors"])


def test_case_05_missing_and_out_of_range_io(ptero: PanelClient) -> None:
    body = base_body()
    del body["limits"]["io"]
    response = ptero.create(body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["meta"], error["detail"]) == (
        {"source_field": "limits.io", "rule": "required"},
        "The limits.io field is required.",
    )
    body["limits"]["io"] = 5
    [error] = ptero.create(body).json()["errors"]
    assert (error["meta"], error["detail"]) == (
        {"source_field": "limits.io", "rule": "between"},
        "The limits.io must be between 10 and 1000.",
    )


def test_case_06_egg_variable_errors(ptero: PanelClient) -> None:
    body = base_body()
    del body["environment"]["BUILD_NUMBER"]
    response = ptero.create(body)
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "code": "ValidationException",
                "status": "422",
                "detail": "The Build Number variable field is required.",
                "meta": {"source_field": "environment.BUILD_NUMBER", "rule": "required"},
            }
        ]
    }
    body = base_body()
    body["environment"]["SERVER_JARFILE"] = "server.zip"
    [error] = ptero.create(body).json()["errors"]
    assert error["detail"] == "The Server Jar File variable format is invalid."
    assert error["meta"] == {"source_field": "environment.SERVER_JARFILE", "rule": "regex"}
    assert ptero.control("GET", "/servers").json()["count"] == 0


def test_case_06_request_errors_come_alone(ptero: PanelClient) -> None:
    """Request-rule errors and environment errors never share a response."""
    body = base_body(name="")
    del body["environment"]["BUILD_NUMBER"]
    assert errors_of(ptero.create(body)) == [("name", "required")]


def test_case_07_no_capacity(panel: PanelClient) -> None:
    body = base_body() if panel.flavor == "pterodactyl" else pelican_body()
    body["limits"]["memory"] = 10**9
    response = panel.create(body)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "code": "NoViableNodeException",
                "status": "400",
                "detail": "No nodes satisfying the requirements specified for automatic deployment could be found.",
            }
        ]
    }
    if panel.flavor == "pterodactyl":
        wrong_location = base_body(deploy={"locations": [999], "dedicated_ip": False, "port_range": []})
        assert panel.create(wrong_location).json()["errors"][0]["code"] == "NoViableNodeException"
    assert panel.control("GET", "/servers").json()["count"] == 0


def test_case_07_non_public_node_and_overallocate(ptero: PanelClient) -> None:
    ptero.control("POST", "/nodes/1/capacity", {"public": False})
    response = ptero.create(base_body())
    assert response.json()["errors"][0]["code"] == "NoViableNodeException"
    ptero.control("POST", "/nodes/1/capacity", {"public": True, "memory": 2000, "memory_overallocate": 10})
    assert ptero.create(base_body()).status_code == 201  # 2048 <= 2000 * 1.10
    ptero.control("POST", "/nodes/1/capacity", {"memory": 2048, "memory_overallocate": -1})
    # -1 is not "unlimited" on Pterodactyl: the limit is 99% of memory.
    assert ptero.create(base_body("order-2")).json()["errors"][0]["code"] == "NoViableNodeException"


def test_case_08_no_port_in_range(ptero: PanelClient) -> None:
    body = base_body(deploy={"locations": [1], "dedicated_ip": False, "port_range": ["30000-30010"]})
    response = ptero.create(body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "NoViableAllocationException",
            "status": "400",
            "detail": "No allocations satisfying the requirements for automatic deployment were found.",
        }
    ]
    body["deploy"]["port_range"] = ["20000-22000"]
    response = ptero.create(body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "DisplayException",
            "status": "400",
            "detail": "Adding more than 1000 ports in a single range at once is not supported.",
        }
    ]
    body["deploy"]["port_range"] = [25565]
    response = ptero.create(body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["meta"] == {"source_field": "deploy.port_range.0", "rule": "string"}
    assert error["detail"] == "The deploy.port_range.0 must be a string."


def test_case_08_port_range_and_single_port_are_honoured(ptero: PanelClient) -> None:
    body = base_body(deploy={"locations": [1], "dedicated_ip": False, "port_range": ["25600"]})
    response = ptero.create(body, include="allocations")
    assert response.status_code == 201
    assert response.json()["attributes"]["relationships"]["allocations"]["data"][0]["attributes"]["port"] == 25600
    again = ptero.create(dict(body, external_id="order-2"))
    assert again.json()["errors"][0]["code"] == "NoViableAllocationException"
    body = base_body("order-3", deploy={"locations": [], "dedicated_ip": False, "port_range": ["26000-26002", "junk"]})
    port = ptero.create(body, include="allocations").json()["attributes"]["relationships"]["allocations"]["data"][0]
    assert 26000 <= port["attributes"]["port"] <= 26002


def test_case_08_dedicated_ip(ptero: PanelClient) -> None:
    dedicated = {"locations": [1], "dedicated_ip": True, "port_range": []}
    assert ptero.create(base_body(deploy=dedicated)).status_code == 201
    # 10.0.0.5 on node 1 now has an assigned port, and node 1 has no other IP.
    response = ptero.create(base_body("order-2", deploy=dedicated))
    assert response.json()["errors"][0]["code"] == "NoViableAllocationException"
    ptero.control("POST", "/nodes/1/allocations", {"ip": "10.0.0.50", "ports": "30000-30001"})
    response = ptero.create(base_body("order-3", deploy=dedicated), include="allocations")
    assert response.status_code == 201
    assert response.json()["attributes"]["relationships"]["allocations"]["data"][0]["attributes"]["ip"] == "10.0.0.50"


def test_case_09_bad_deploy_shape(ptero: PanelClient) -> None:
    response = ptero.create(base_body(deploy={"dedicated_ip": False}))
    assert errors_of(response) == [("deploy.locations", "present"), ("deploy.port_range", "present")]
    response = ptero.create(base_body(deploy={}))
    assert errors_of(response) == [("deploy", "required"), ("allocation.default", "required")]
    assert response.json()["errors"][0]["detail"] == "The deploy field is required."


def test_case_09_dedicated_ip_required_with_quirk(ptero: PanelClient) -> None:
    response = ptero.create(base_body(deploy={"locations": [1], "port_range": []}))
    [error] = response.json()["errors"]
    assert error["meta"] == {"source_field": "deploy.dedicated_ip", "rule": "required_with"}
    assert error["detail"] == "The deploy.dedicated ip field is required when deploy / boolean is present."
    # "boolean" is a field name there, so no type check happens.
    assert ptero.create(base_body(deploy={"locations": [1], "dedicated_ip": "x", "port_range": []})).status_code == 201


def test_case_10_explicit_allocation_in_use(ptero: PanelClient) -> None:
    first = ptero.create(base_body()).json()["attributes"]
    body = base_body("order-2")
    del body["deploy"]
    body["allocation"] = {"default": first["allocation"]}
    response = ptero.create(body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["meta"] == {"source_field": "allocation.default", "rule": "exists"}
    assert error["detail"] == "The selected allocation.default is invalid."
    body["allocation"] = {"default": 1500, "additional": [1501]}
    created = ptero.create(body, include="allocations")
    assert created.status_code == 201
    attributes = created.json()["attributes"]
    assert (attributes["allocation"], attributes["node"]) == (1500, 2)
    ids = [a["attributes"]["id"] for a in attributes["relationships"]["allocations"]["data"]]
    assert ids == [1500, 1501]
    assert attributes["container"]["environment"]["P_SERVER_LOCATION"] == "eu1"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"limits": {"memory": "2048", "swap": "0", "disk": "10240", "io": "500", "cpu": "200"}}, None),
        ({"user": "1"}, None),
        ({"user": 1.5}, [("user", "integer")]),
        ({"user": 99}, [("user", "exists")]),
        ({"user": "abc"}, [("user", "integer")]),
        ({"egg": 42}, [("egg", "exists")]),
        ({"name": 5}, [("name", "string")]),
        ({"name": "x" * 192}, [("name", "max")]),
        ({"skip_scripts": "yes"}, [("skip_scripts", "boolean")]),
        ({"skip_scripts": "1"}, None),
        ({"oom_disabled": None}, [("oom_disabled", "boolean")]),
        ({"docker_image": "bad image!"}, [("docker_image", "regex")]),
        ({"docker_image": "~ghcr.io/x:y"}, None),
        ({"environment": []}, [("environment.SERVER_JARFILE", "required"), ("environment.BUILD_NUMBER", "required")]),
        ({"environment": "x"}, [("environment", "array")]),
        ({"feature_limits": {"databases": None, "backups": None}}, None),
        ({"feature_limits": {"databases": -1, "backups": 0}}, [("feature_limits.databases", "min")]),
        ({"description": "   "}, None),
        ({"external_id": ""}, None),
        ({"nest": 99, "pack": 3, "node": 2}, None),
    ],
)
def test_rule_table_php_types(
    ptero: PanelClient, change: dict[str, Any], expected: list[tuple[str, str]] | None
) -> None:
    response = ptero.create(base_body(**change))
    if expected is None:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422, response.text
        assert errors_of(response) == expected


def test_normalisation_trims_and_nulls(ptero: PanelClient) -> None:
    response = ptero.create(base_body(external_id="  order-7  ", name="  Padded  ", description=""))
    attributes = response.json()["attributes"]
    assert (attributes["external_id"], attributes["name"], attributes["description"]) == ("order-7", "Padded", "")
    response = ptero.create(base_body(external_id=""))
    assert response.json()["attributes"]["external_id"] is None


def test_feature_limit_nulls_are_stored_as_zero(ptero: PanelClient) -> None:
    body = base_body(feature_limits={"databases": None, "allocations": None, "backups": None})
    attributes = ptero.create(body).json()["attributes"]
    assert attributes["feature_limits"] == {"databases": 0, "allocations": 0, "backups": 0}


def test_case_24_pelican_shape(pelican: PanelClient) -> None:
    response = pelican.create(base_body())
    assert response.status_code == 422
    assert errors_of(response) == [("deploy.tags", "present")]
    assert response.json()["errors"][0]["detail"] == "The deploy.tags field must be present."
    response = pelican.create(pelican_body())
    assert response.status_code == 201, response.text
    attributes = response.json()["attributes"]
    assert attributes["allocation"] is None
    assert "nest" not in attributes
    assert attributes["limits"]["oom_killer"] is False
    assert attributes["limits"]["oom_disabled"] is True
    environment = attributes["container"]["environment"]
    assert "P_SERVER_LOCATION" not in environment
    assert "P_SERVER_ALLOCATION_LIMIT" not in environment
    assert environment["P_SERVER_UUID"] == attributes["uuid"]
    missing = pelican.api("GET", "/api/application/nests/1/eggs/3")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["detail"] == "The route api/application/nests/1/eggs/3 could not be found."


def test_case_24_pelican_defaults_and_port_range(pelican: PanelClient) -> None:
    body = pelican_body()
    del body["docker_image"], body["startup"]
    body["limits"]["io"] = 0
    body["deploy"]["port_range"] = ["25570"]
    response = pelican.create(body, include="allocations")
    assert response.status_code == 201, response.text
    attributes = response.json()["attributes"]
    assert attributes["container"]["image"] == "ghcr.io/pterodactyl/yolks:java_21"
    assert attributes["container"]["startup_command"].endswith("-jar {{SERVER_JARFILE}}")
    assert attributes["relationships"]["allocations"]["data"][0]["attributes"]["port"] == 25570
    no_tag = pelican_body("order-2", deploy={"tags": ["nope"], "dedicated_ip": False, "port_range": []})
    assert pelican.create(no_tag).json()["errors"][0]["code"] == "NoViableNodeException"


def test_case_24_pelican_environment_defaults_only_for_validation(pelican: PanelClient) -> None:
    body = pelican_body()
    body["environment"] = {}
    response = pelican.create(body)
    assert response.status_code == 201, response.text
    environment = response.json()["attributes"]["container"]["environment"]
    assert environment["BUILD_NUMBER"] == ""
    assert environment["SERVER_JARFILE"] == ""
