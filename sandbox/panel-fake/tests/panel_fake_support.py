"""Running the fake panel on a real socket for contract tests, and small helpers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from panel_fake import create_app
from panel_fake.config import Flavor, PanelConfig
from panel_fake.seed import seed_keys


class RunningPanel:
    """A fake panel served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, config: PanelConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="critical", access_log=False, timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self.keys = seed_keys(config.flavor)

    def start(self) -> RunningPanel:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("panel-fake did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def headers(key: str, *, accept: bool = True, json_body: bool = True) -> dict[str, str]:
    """The headers a correct client sends (``H`` in the reference's test cases)."""
    result = {"Authorization": f"Bearer {key}"}
    if accept:
        result["Accept"] = "application/json"
    if json_body:
        result["Content-Type"] = "application/json"
    return result


def base_body(external_id: str = "order-1001", **overrides: Any) -> dict[str, Any]:
    """The reference's body ``B``, adapted to the seed: user 1 (admin), egg 1 (Paper)."""
    body: dict[str, Any] = {
        "external_id": external_id,
        "name": "Paper #1001",
        "user": 1,
        "egg": 1,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
        "startup": (
            "java -Xms128M -XX:MaxRAMPercentage=95.0 -Dterminal.jline=false -Dterminal.ansi=true "
            "-jar {{SERVER_JARFILE}}"
        ),
        "environment": {
            "MINECRAFT_VERSION": "latest",
            "SERVER_JARFILE": "server.jar",
            "DL_PATH": "",
            "BUILD_NUMBER": "latest",
        },
        "limits": {"memory": 2048, "swap": 0, "disk": 10240, "io": 500, "cpu": 200},
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 0},
        "deploy": {"locations": [1], "dedicated_ip": False, "port_range": []},
        "start_on_completion": True,
    }
    body.update(overrides)
    return body


def pelican_body(external_id: str = "order-1001", **overrides: Any) -> dict[str, Any]:
    """``B`` with Pelican's tag-based deploy."""
    body = base_body(external_id)
    body["deploy"] = {"tags": ["game"], "dedicated_ip": False, "port_range": []}
    body.update(overrides)
    return body


def errors_of(response: httpx.Response) -> list[tuple[str, str]]:
    """``(source_field, rule)`` pairs of a 422, in order."""
    return [(e["meta"]["source_field"], e["meta"]["rule"]) for e in response.json()["errors"]]


# Tests poll to deadlines; these keep the waits short.
INSTALL_SECONDS = 0.3
HANG_SECONDS = 1.0


class PanelClient:
    """An httpx client for one running fake panel, plus shortcuts for the control API."""

    def __init__(self, running: RunningPanel) -> None:
        self.running = running
        self.flavor: Flavor = running.config.flavor
        self.keys = running.keys
        self.admin_key = self.keys["admin_application"]
        self.http = httpx.Client(base_url=running.base_url, timeout=10.0, follow_redirects=False)

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def api(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json: Any = None,
        accept: bool = True,
        json_body: bool = True,
        content: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        sent = headers(key or self.admin_key, accept=accept, json_body=json_body)
        sent.update(extra_headers or {})
        if json is not None:
            content = httpx_json(json)
        return self.http.request(
            method, path, headers=sent, content=content, timeout=timeout if timeout is not None else 10.0
        )

    def create(self, body: dict[str, Any], *, include: str | None = None, **kwargs: Any) -> httpx.Response:
        path = "/api/application/servers" + (f"?include={include}" if include else "")
        return self.api("POST", path, json=body, **kwargs)

    def control(self, method: str, path: str, json: Any = None) -> httpx.Response:
        response = self.http.request(method, f"/_fake{path}", json=json)
        assert response.status_code < 400, response.text
        return response

    def server(self, server_id: int) -> dict[str, Any]:
        response = self.api("GET", f"/api/application/servers/{server_id}")
        assert response.status_code == 200, response.text
        attributes: dict[str, Any] = response.json()["attributes"]
        return attributes

    def close(self) -> None:
        self.http.close()


def httpx_json(value: Any) -> bytes:
    return json.dumps(value).encode()
