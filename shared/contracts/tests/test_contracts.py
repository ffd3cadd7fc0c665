"""Contract guards: schemas do not drift silently, released samples keep parsing, readers are tolerant."""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from spawnpoint_contracts import ALL_EVENTS, BY_ROUTING_KEY, OrderPaid, parse_event
from spawnpoint_contracts.schemas import schema_files

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.unit


def test_committed_schemas_match_the_models() -> None:
    generated = schema_files()
    committed = {p.name: p.read_text() for p in (ROOT / "schemas").glob("*.json")}
    assert set(committed) == set(generated), "run: python -m spawnpoint_contracts.schemas"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted; regenerate and review the change"


def test_every_routing_key_names_aggregate_fact_and_version() -> None:
    for cls in ALL_EVENTS:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+\.v[0-9]+", cls.routing_key), cls.routing_key
        assert cls.routing_key.endswith(f".v{cls.model_fields['event_version'].default}")


@pytest.mark.parametrize("sample", sorted((ROOT / "samples").glob("*.json")), ids=lambda p: p.name)
def test_released_samples_still_parse(sample: Path) -> None:
    body = sample.read_bytes()
    event = parse_event(body)
    assert event.routing_key == sample.name.removesuffix(".json")


def test_there_is_a_sample_for_every_event_version() -> None:
    names = {p.name for p in (ROOT / "samples").glob("*.json")}
    for key in BY_ROUTING_KEY:
        assert f"{key}.json" in names, f"no sample for {key}"


def test_unknown_fields_are_ignored_by_readers() -> None:
    sample = json.loads((ROOT / "samples" / "order.paid.v1.json").read_text())
    sample["a_field_from_the_future"] = {"x": 1}
    sample["payload"]["another_one"] = 3
    event = parse_event(json.dumps(sample))
    assert isinstance(event, OrderPaid)


def test_unknown_event_type_and_bad_fields_are_rejected() -> None:
    sample = json.loads((ROOT / "samples" / "order.paid.v1.json").read_text())
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**sample, "event_type": "OrderTeleported"}))
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**sample, "order_id": "not-a-uuid"}))
    with pytest.raises(ValidationError):
        parse_event(b"{not json")


def test_naive_timestamps_are_refused_and_aware_ones_normalised_to_utc() -> None:
    sample = json.loads((ROOT / "samples" / "order.paid.v1.json").read_text())
    with pytest.raises(ValidationError):
        parse_event(json.dumps({**sample, "occurred_at": "2026-11-26T10:00:00"}))
    event = parse_event(json.dumps({**sample, "occurred_at": "2026-11-26T12:00:00+02:00"}))
    assert event.occurred_at.utcoffset() is not None
    assert event.occurred_at.isoformat().startswith("2026-11-26T10:00:00")


def test_caused_by_carries_correlation_and_causation() -> None:
    paid = parse_event((ROOT / "samples" / "order.paid.v1.json").read_bytes())
    from spawnpoint_contracts import ServerInstalled, ServerInstalledPayload

    follow = ServerInstalled.caused_by(
        paid, producer="provisioner", payload=ServerInstalledPayload(server_id=1, identifier="abcd1234")
    )
    assert follow.order_id == paid.order_id
    assert follow.correlation_id == paid.correlation_id
    assert follow.causation_id == paid.event_id
    assert follow.event_id != paid.event_id
    assert isinstance(follow.event_id, uuid.UUID)


def test_the_package_imports_no_orm_web_or_broker_library() -> None:
    forbidden = {"sqlalchemy", "sqlmodel", "fastapi", "starlette", "faststream", "aio_pika", "asyncpg"}
    for path in (ROOT / "src").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_the_topology_names_every_routing_key_once() -> None:
    from spawnpoint_contracts import topology

    named = {value for name, value in vars(topology).items() if name.isupper() and value.count(".") == 2}
    assert named == set(BY_ROUTING_KEY)
