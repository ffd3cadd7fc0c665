"""The committed AsyncAPI document matches what the contracts and the topology generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnpoint_contracts import BY_ROUTING_KEY
from spawnpoint_kit.asyncapi import PRODUCERS, document, render

pytestmark = pytest.mark.unit
COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_the_committed_document_has_not_drifted() -> None:
    assert COMMITTED.read_text() == render(), "run: make asyncapi, and review the change"


def test_every_event_is_documented_with_its_producer() -> None:
    assert set(PRODUCERS) == set(BY_ROUTING_KEY)
    channels = document()["channels"]
    for key in BY_ROUTING_KEY:
        assert f"{key}:publish" in channels


def test_the_committed_broker_definitions_have_not_drifted() -> None:
    from spawnpoint_kit.definitions import render as render_definitions

    committed = COMMITTED.parents[1] / "deploy" / "rabbitmq" / "definitions.json"
    assert committed.read_text() == render_definitions(), "run: make definitions"
