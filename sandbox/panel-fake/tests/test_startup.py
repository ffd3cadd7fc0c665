"""Startup options (flags and environment) and a custom seed file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from panel_fake_support import RunningPanel, headers

from panel_fake.__main__ import parse_args
from panel_fake.config import PanelConfig, default_app_key, env_defaults
from panel_fake.seed import default_seed


@pytest.mark.unit
def test_defaults_per_flavor() -> None:
    assert default_app_key("pterodactyl") == "ptla_spawnpointdevkey0000000000000000000000000000"
    assert default_app_key("pelican").startswith("papp_")
    assert PanelConfig().effective_rate_limit == 240
    assert PanelConfig(flavor="pelican").effective_rate_limit == 256
    assert PanelConfig(rate_limit=0).effective_rate_limit == 0


@pytest.mark.unit
def test_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {
        "PANEL_FAKE_PORT": "9999",
        "PANEL_FAKE_FLAVOR": "pelican",
        "PANEL_FAKE_APP_KEY": "papp_custom",
        "PANEL_FAKE_RATE_LIMIT": "0",
        "PANEL_FAKE_INSTALL_SECONDS": "0.5",
        "PANEL_FAKE_HANG_SECONDS": "7",
    }
    values = env_defaults(environ)
    assert values == {
        "port": 9999,
        "flavor": "pelican",
        "app_key": "papp_custom",
        "rate_limit": 0,
        "install_seconds": 0.5,
        "hang_seconds": 7.0,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = parse_args(["--port", "8123", "--install-seconds", "1"])
    assert (config.port, config.flavor, config.app_key, config.install_seconds) == (8123, "pelican", "papp_custom", 1.0)
    assert config.effective_rate_limit == 0
    assert parse_args(["--flavor", "pterodactyl"]).flavor == "pterodactyl"


@pytest.mark.contract
def test_seed_file_and_configured_key(tmp_path: Path) -> None:
    seed = default_seed("pterodactyl")
    seed["locations"] = [{"id": 7, "short": "lab", "long": "Lab"}]
    seed["nodes"] = [dict(seed["nodes"][0], id=7, location_id=7, allocations=[{"ip": "192.0.2.1", "ports": "27000"}])]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed), encoding="utf-8")
    running = RunningPanel(PanelConfig(seed_path=str(path), app_key="ptla_" + "k" * 43, rate_limit=0)).start()
    try:
        with httpx.Client(base_url=running.base_url) as client:
            key = "ptla_" + "k" * 43
            nodes = client.get("/api/application/nodes", headers=headers(key)).json()
            assert [n["attributes"]["id"] for n in nodes["data"]] == [7]
            old_key = client.get("/api/application/nodes", headers=headers(default_app_key("pterodactyl")))
            assert old_key.status_code == 401
            allocations = client.get("/api/application/nodes/7/allocations", headers=headers(key)).json()
            assert [a["attributes"]["port"] for a in allocations["data"]] == [27000]
    finally:
        running.stop()
