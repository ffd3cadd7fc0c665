"""Fixtures: one fake panel per flavour, served on a real socket, reset before each test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panel_fake.config import Flavor, PanelConfig

# --import-mode=importlib does not put this folder on sys.path; the helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))

from panel_fake_support import HANG_SECONDS, INSTALL_SECONDS, PanelClient, RunningPanel


def _config(flavor: Flavor) -> PanelConfig:
    return PanelConfig(
        flavor=flavor, rate_limit=0, client_rate_limit=0, install_seconds=INSTALL_SECONDS, hang_seconds=HANG_SECONDS
    )


@pytest.fixture(scope="session")
def ptero_server() -> Iterator[RunningPanel]:
    running = RunningPanel(_config("pterodactyl")).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def pelican_server() -> Iterator[RunningPanel]:
    running = RunningPanel(_config("pelican")).start()
    yield running
    running.stop()


def _client(running: RunningPanel) -> Iterator[PanelClient]:
    client = PanelClient(running)
    client.control("DELETE", "/data")
    yield client
    client.close()


@pytest.fixture
def ptero(ptero_server: RunningPanel) -> Iterator[PanelClient]:
    """A freshly reset Pterodactyl-flavoured panel."""
    yield from _client(ptero_server)


@pytest.fixture
def pelican(pelican_server: RunningPanel) -> Iterator[PanelClient]:
    """A freshly reset Pelican-flavoured panel."""
    yield from _client(pelican_server)


@pytest.fixture(params=["pterodactyl", "pelican"])
def panel(request: pytest.FixtureRequest) -> Iterator[PanelClient]:
    """Either flavour, for behaviour both share."""
    running: RunningPanel = request.getfixturevalue(
        "ptero_server" if request.param == "pterodactyl" else "pelican_server"
    )
    yield from _client(running)
