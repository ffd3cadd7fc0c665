"""The committed AsyncAPI document and broker definitions match what the contracts and every service's
queues generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnpoint_contracts import BY_ROUTING_KEY
from spawnpoint_kit.asyncapi import PRODUCERS, document
from system_topology import ALL_QUEUES, render_asyncapi, render_definitions

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_document_has_not_drifted() -> None:
    assert (ROOT / "docs" / "asyncapi.json").read_text() == render_asyncapi(), "run: make asyncapi, and review"


def test_every_event_is_documented_with_its_producer() -> None:
    assert set(PRODUCERS) == set(BY_ROUTING_KEY)
    channels = document(ALL_QUEUES)["channels"]
    for key in BY_ROUTING_KEY:
        assert f"{key}:publish" in channels


def test_the_committed_broker_definitions_have_not_drifted() -> None:
    committed = ROOT / "deploy" / "rabbitmq" / "definitions.json"
    assert committed.read_text() == render_definitions(), "run: make definitions"


def test_every_queue_name_is_used_once() -> None:
    names = [spec.name for spec in ALL_QUEUES]
    assert len(names) == len(set(names))
