"""Transport and authentication: §11 cases 18–21, routing errors and the check order."""

from __future__ import annotations

import pytest
from panel_fake_support import PanelClient, base_body, pelican_body

pytestmark = pytest.mark.contract


def test_case_18_bogus_key(panel: PanelClient) -> None:
    response = panel.api("GET", "/api/application/servers", key="ptla_" + "x" * 43)
    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"code": "AuthenticationException", "status": "401", "detail": "Unauthenticated."}]
    }
    assert "X-RateLimit-Limit" not in response.headers
    no_header = panel.http.get("/api/application/servers", headers={"Accept": "application/json"})
    assert no_header.status_code == 401


def test_case_18_non_admin_keys(panel: PanelClient) -> None:
    for role in ("customer_client", "customer_application"):
        response = panel.api("GET", "/api/application/servers", key=panel.keys[role])
        assert response.status_code == 403, role
        assert response.json()["errors"] == [
            {
                "code": "AccessDeniedHttpException",
                "status": "403",
                "detail": "This account does not have permission to access the API.",
            }
        ]


def test_case_18_acl_bits(panel: PanelClient) -> None:
    key = panel.keys["read_servers_application"]
    assert panel.api("GET", "/api/application/servers", key=key).status_code == 200
    body = base_body() if panel.flavor == "pterodactyl" else pelican_body()
    response = panel.api("POST", "/api/application/servers", key=key, json=body)
    assert response.status_code == 403
    assert response.json()["errors"][0]["detail"] == "This action is unauthorized."
    assert panel.api("GET", "/api/application/users", key=key).status_code == 403
    # A root admin's client key passes every ACL check on the application API.
    assert panel.api("POST", "/api/application/servers", key=panel.keys["admin_client"], json=body).status_code == 201


def test_case_18_application_key_on_client_api(panel: PanelClient) -> None:
    body = base_body() if panel.flavor == "pterodactyl" else pelican_body()
    created = panel.create(body).json()["attributes"]
    response = panel.api("GET", f"/api/client/servers/{created['identifier']}")
    assert response.status_code == 403
    assert response.json()["errors"][0]["detail"] == (
        "You are attempting to use an application API key on an endpoint that requires a client API key."
    )
    # Another user's client key does not see the server at all.
    other = panel.api("GET", f"/api/client/servers/{created['identifier']}", key=panel.keys["customer_client"])
    assert other.status_code == 404


def test_case_18_no_accept_redirects_to_login(ptero: PanelClient) -> None:
    response = ptero.api("GET", "/api/application/servers", key="ptla_bogus", accept=False)
    assert response.status_code == 302
    assert response.headers["location"].endswith("/auth/login")


def test_case_19_validation_without_accept_redirects_back(ptero: PanelClient) -> None:
    response = ptero.create({}, accept=False)
    assert response.status_code == 302
    response = ptero.create({}, accept=False, extra_headers={"Referer": "https://shop.example/checkout"})
    assert (response.status_code, response.headers["location"]) == (302, "https://shop.example/checkout")
    # Display-class errors redirect too; other HTTP errors become HTML pages.
    body = base_body()
    body["limits"]["memory"] = 10**9
    assert ptero.create(body, accept=False).status_code == 302
    missing = ptero.api("GET", "/api/application/servers/999", accept=False)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    # Successes are JSON either way.
    created = ptero.create(base_body(), accept=False)
    assert created.status_code == 201
    assert created.json()["object"] == "server"


def test_case_19_vendor_accept_and_xhr_count_as_json(ptero: PanelClient) -> None:
    vendor = ptero.create({}, extra_headers={"Accept": "Application/vnd.pterodactyl.v1+json"})
    assert vendor.status_code == 422
    xhr = ptero.create({}, accept=False, extra_headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 422


def test_case_20_bad_json(panel: PanelClient) -> None:
    response = panel.api("POST", "/api/application/servers", content=b'{"name":')
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "code": "BadRequestHttpException",
                "status": "400",
                "detail": "The JSON data passed in the request appears to be malformed: Syntax error",
            }
        ]
    }
    # Authentication comes first.
    unauthenticated = panel.api("POST", "/api/application/servers", key="nope", content=b'{"name":')
    assert unauthenticated.status_code == 401


def test_body_without_json_content_type_is_ignored(ptero: PanelClient) -> None:
    import json

    response = ptero.api(
        "POST",
        "/api/application/servers",
        content=json.dumps(base_body()).encode(),
        json_body=False,
        extra_headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["meta"] == {"source_field": "name", "rule": "required"}


def test_case_21_throttle(panel: PanelClient) -> None:
    limit = 240 if panel.flavor == "pterodactyl" else 256
    panel.control("POST", "/rate-limit", {"per_minute": limit})
    last = None
    for index in range(limit):
        last = panel.api("GET", "/api/application/users" if index % 2 else "/api/application/nodes")
    assert last is not None
    assert last.headers["X-RateLimit-Limit"] == str(limit)
    assert last.headers["X-RateLimit-Remaining"] == "0"
    response = panel.api("GET", "/api/application/servers")
    assert response.status_code == 429
    assert response.json() == {
        "errors": [{"code": "ThrottleRequestsException", "status": "429", "detail": "Too Many Attempts."}]
    }
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert int(response.headers["X-RateLimit-Reset"]) > 1_700_000_000
    # Keys of the same owner share the bucket; the control API is never limited.
    assert panel.api("GET", "/api/application/servers", key=panel.keys["admin_client"]).status_code == 429
    panel.control("GET", "/health")


def test_rate_limit_headers_on_errors(ptero: PanelClient) -> None:
    ptero.control("POST", "/rate-limit", {"per_minute": 10})
    ok = ptero.api("GET", "/api/application/servers")
    assert (ok.headers["X-RateLimit-Limit"], ok.headers["X-RateLimit-Remaining"]) == ("10", "9")
    invalid = ptero.create({})
    assert invalid.status_code == 422
    assert invalid.headers["X-RateLimit-Remaining"] == "8"
    missing = ptero.api("GET", "/api/application/servers/999")
    assert missing.status_code == 404
    assert missing.headers["X-RateLimit-Remaining"] == "7"


def test_unknown_route_and_wrong_verb(panel: PanelClient) -> None:
    response = panel.api("GET", "/api/application/nope", key="bogus")
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {
            "code": "NotFoundHttpException",
            "status": "404",
            "detail": "The route api/application/nope could not be found.",
        }
    ]
    response = panel.api("GET", "/api/application/servers/1/suspend")
    assert response.status_code == 405
    [error] = response.json()["errors"]
    assert error["code"] == "MethodNotAllowedHttpException"
    # DELETE /servers/{server}/{force?} matches this path too, as it does on the real panel.
    assert error["detail"] == (
        "The GET method is not supported for route api/application/servers/1/suspend. Supported methods: POST, DELETE."
    )
    response = panel.api("DELETE", "/api/application/users")
    assert response.json()["errors"][0]["detail"].endswith("Supported methods: GET, HEAD, POST.")
    response = panel.api("PUT", "/api/application/servers/1")
    assert response.json()["errors"][0]["detail"].endswith("Supported methods: GET, HEAD, DELETE.")


def test_missing_model_and_binding_before_admin_check(panel: PanelClient) -> None:
    response = panel.api("GET", "/api/application/servers/12345")
    assert response.status_code == 404
    assert response.json()["errors"][0]["detail"] == "The requested resource could not be found on the server."
    assert panel.api("GET", "/api/application/servers/abc").status_code == 404
    # Route-model binding (404) runs before the admin check (403).
    non_admin = panel.api("GET", "/api/application/servers/12345", key=panel.keys["customer_application"])
    assert non_admin.status_code == 404
    assert panel.api("GET", "/api/application/servers/external/").status_code == 404


def test_pelican_has_no_nests_or_locations(pelican: PanelClient) -> None:
    for path in ("/api/application/nests", "/api/application/locations"):
        response = pelican.api("GET", path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["detail"] == f"The route {path.lstrip('/')} could not be found."
