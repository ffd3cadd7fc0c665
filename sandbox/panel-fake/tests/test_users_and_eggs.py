"""Users and eggs: §11 cases 22 and 23, with Pelican's shapes."""

from __future__ import annotations

from typing import Any

import pytest
from panel_fake_support import PanelClient, base_body, errors_of

pytestmark = pytest.mark.contract

USER = {"email": "a@b.c", "username": "alice", "first_name": "A", "last_name": "B", "external_id": "cust-9"}
USERNAME_MESSAGE = (
    "The username must start and end with alpha-numeric characters and\n"
    "                contain only letters, numbers, dashes, underscores, and periods."
)


def test_case_22_create_user(panel: PanelClient) -> None:
    response = panel.api("POST", "/api/application/users", json=USER)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["object"] == "user"
    user_id = body["attributes"]["id"]
    assert body["meta"] == {"resource": f"{panel.base_url}/api/application/users/{user_id}"}
    attributes = body["attributes"]
    if panel.flavor == "pterodactyl":
        assert list(attributes) == [
            "id",
            "external_id",
            "uuid",
            "username",
            "email",
            "first_name",
            "last_name",
            "language",
            "root_admin",
            "2fa",
            "created_at",
            "updated_at",
        ]
        assert (attributes["first_name"], attributes["last_name"]) == ("A", "B")
    else:
        assert "first_name" not in attributes and "last_name" not in attributes
        assert attributes["is_managed_externally"] is False
        assert attributes["2fa_enabled"] is False
        assert attributes["2fa"] is False
    assert (attributes["external_id"], attributes["root_admin"], attributes["language"]) == ("cust-9", False, "en")


def test_case_22_repeat_gives_three_unique_errors(panel: PanelClient) -> None:
    assert panel.api("POST", "/api/application/users", json=USER).status_code == 201
    response = panel.api("POST", "/api/application/users", json=USER)
    assert response.status_code == 422
    assert [(e["meta"]["source_field"], e["meta"]["rule"], e["detail"]) for e in response.json()["errors"]] == [
        ("email", "unique", "The email has already been taken."),
        ("external_id", "unique", "The Third Party Identifier has already been taken."),
        ("username", "unique", "The username has already been taken."),
    ]
    shouting = dict(USER, email="A@B.C", username="ALICE", external_id="other")
    assert errors_of(panel.api("POST", "/api/application/users", json=shouting)) == [
        ("email", "unique"),
        ("username", "unique"),
    ]


def test_case_22_username_rule(panel: PanelClient) -> None:
    response = panel.api("POST", "/api/application/users", json=dict(USER, username="a!"))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["meta"] == {"source_field": "username", "rule": "p_username"}
    assert error["detail"] == USERNAME_MESSAGE
    stored = panel.api("POST", "/api/application/users", json=dict(USER, username="Alice.Smith"))
    assert stored.json()["attributes"]["username"] == "alice.smith"


def test_case_22_user_lookups(panel: PanelClient) -> None:
    created = panel.api("POST", "/api/application/users", json=USER).json()["attributes"]
    found = panel.api("GET", "/api/application/users/external/cust-9")
    assert (found.status_code, found.json()["attributes"]["id"]) == (200, created["id"])
    assert panel.api("GET", "/api/application/users/external/nil").status_code == 404
    partial = panel.api("GET", "/api/application/users?filter[email]=b.c").json()
    assert [u["attributes"]["email"] for u in partial["data"]] == ["a@b.c"]
    assert partial["meta"]["pagination"]["total"] == 1


def test_case_22_required_fields(ptero: PanelClient) -> None:
    response = ptero.api("POST", "/api/application/users", json={})
    assert errors_of(response) == [
        ("email", "required"),
        ("username", "required"),
        ("first_name", "required"),
        ("last_name", "required"),
    ]
    assert response.json()["errors"][2]["detail"] == "The first name field is required."


def test_user_external_id_unique_only_by_validation_and_patch(ptero: PanelClient) -> None:
    created = ptero.api("POST", "/api/application/users", json=USER).json()["attributes"]
    path = f"/api/application/users/{created['id']}"
    # PATCH keeps the create rules: required fields stay required, unique ignores the user itself.
    assert errors_of(ptero.api("PATCH", path, json={"email": "new@b.c"})) == [
        ("username", "required"),
        ("first_name", "required"),
        ("last_name", "required"),
    ]
    updated = ptero.api("PATCH", path, json=dict(USER, first_name="Alicia"))
    assert (updated.status_code, updated.json()["attributes"]["first_name"]) == (200, "Alicia")


def test_user_delete(ptero: PanelClient) -> None:
    created = ptero.api("POST", "/api/application/users", json=USER).json()["attributes"]
    body = base_body(user=created["id"])
    assert ptero.create(body).status_code == 201
    response = ptero.api("DELETE", f"/api/application/users/{created['id']}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DisplayException"


def _variables(response: Any) -> list[dict[str, Any]]:
    return [item["attributes"] for item in response.json()["attributes"]["relationships"]["variables"]["data"]]


def test_case_23_egg_lookup(ptero: PanelClient) -> None:
    response = ptero.api("GET", "/api/application/nests/1/eggs/1?include=variables")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "egg"
    attributes = body["attributes"]
    assert (attributes["nest"], attributes["name"]) == (1, "Paper")
    assert attributes["docker_images"]["Java 21"] == "ghcr.io/pterodactyl/yolks:java_21"
    assert attributes["docker_image"] == "ghcr.io/pterodactyl/yolks:java_21"
    assert body["attributes"]["relationships"]["variables"]["object"] == "list"
    variables = _variables(response)
    assert [v["env_variable"] for v in variables] == ["MINECRAFT_VERSION", "SERVER_JARFILE", "DL_PATH", "BUILD_NUMBER"]
    build = variables[3]
    assert list(build) == [
        "id",
        "egg_id",
        "name",
        "description",
        "env_variable",
        "default_value",
        "user_viewable",
        "user_editable",
        "rules",
        "created_at",
        "updated_at",
    ]
    assert (build["egg_id"], build["name"], build["default_value"]) == (1, "Build Number", "latest")
    assert (build["user_viewable"], build["user_editable"], build["rules"]) == (True, True, "required|string|max:20")
    assert build["created_at"].endswith(".000000Z")
    assert variables[1]["rules"] == r"required|regex:/^([\w\d._-]+)(\.jar)$/"
    assert variables[2]["user_viewable"] is False
    assert ptero.api("GET", "/api/application/nests/2/eggs/1").status_code == 404
    assert ptero.api("GET", "/api/application/nests/2/eggs/3").status_code == 200


def test_case_23_nest_egg_list_is_not_paginated(ptero: PanelClient) -> None:
    eggs = ptero.api("GET", "/api/application/nests/1/eggs").json()
    assert eggs["object"] == "list"
    assert "meta" not in eggs
    assert [e["attributes"]["name"] for e in eggs["data"]] == ["Paper", "Vanilla Minecraft"]
    nests = ptero.api("GET", "/api/application/nests?include=eggs").json()
    assert nests["meta"]["pagination"]["total"] == 2
    assert nests["meta"]["pagination"]["links"] == {}
    assert len(nests["data"][0]["attributes"]["relationships"]["eggs"]["data"]) == 2


def test_case_23_pelican_eggs(pelican: PanelClient) -> None:
    response = pelican.api("GET", "/api/application/eggs/1?include=variables")
    assert response.status_code == 200
    attributes = response.json()["attributes"]
    assert "nest" not in attributes
    assert attributes["startup_commands"] == {"Default": attributes["startup"]}
    variables = _variables(response)
    assert variables[3]["rules"] == ["required", "string", "max:20"]
    listing = pelican.api("GET", "/api/application/eggs").json()
    assert "meta" not in listing
    assert [e["attributes"]["id"] for e in listing["data"]] == [1, 2, 3]


def test_valheim_egg_variables(ptero: PanelClient) -> None:
    body = base_body(egg=3, docker_image="ghcr.io/ptero-eggs/games:valheim", startup="./valheim_server.x86_64")
    body["environment"] = {"SERVER_NAME": "My World", "WORLD_NAME": "bad name!", "SERVER_PASS": "abc"}
    response = ptero.create(body)
    assert [(e["meta"]["source_field"], e["meta"]["rule"], e["detail"]) for e in response.json()["errors"]] == [
        (
            "environment.WORLD_NAME",
            "alpha_dash",
            "The World Name variable may only contain letters, numbers, and dashes.",
        ),
        ("environment.SERVER_PASS", "min", "The Server Password variable must be at least 5 characters."),
    ]
    body["environment"] = {"SERVER_NAME": "My World", "WORLD_NAME": "Dedicated", "SERVER_PASS": ""}
    created = ptero.create(body)
    assert created.status_code == 201, created.text
    assert created.json()["attributes"]["nest"] == 2


def test_forbidden_include_is_null_resource(ptero: PanelClient) -> None:
    created = ptero.create(base_body()).json()["attributes"]
    response = ptero.api(
        "GET",
        f"/api/application/servers/{created['id']}?include=allocations,user,egg,unknown",
        key=ptero.keys["read_servers_application"],
    )
    relationships = response.json()["attributes"]["relationships"]
    null = {"object": "null_resource", "attributes": None}
    assert relationships == {"allocations": null, "user": null, "egg": null}
    full = ptero.api("GET", f"/api/application/servers/{created['id']}?include[]=user&include[]=location,node")
    relationships = full.json()["attributes"]["relationships"]
    assert relationships["user"]["attributes"]["username"] == "admin"
    assert relationships["location"]["attributes"]["short"] == "us1"
    assert relationships["node"]["attributes"]["allocated_resources"] == {"memory": 2048, "disk": 10240}
