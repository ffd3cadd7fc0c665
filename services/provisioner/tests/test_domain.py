"""Unit tests of the provisioner's pure rules: failure classification and the create request."""

from __future__ import annotations

import uuid

import pytest

from provisioner.domain.failures import Kind, classify
from provisioner.domain.panel import Egg, EggVariable, PanelError, PanelFieldError, PanelUnreachable
from provisioner.domain.server_request import create_body
from spawnpoint_contracts import Deploy, FailureReason, FeatureLimits, Limits, OrderSnapshot, ServerSpec

pytestmark = pytest.mark.unit


def _error(status: int, code: str | None, *fields: tuple[str, str]) -> PanelError:
    return PanelError(status, code, "x", [PanelFieldError(f, r, "x") for f, r in fields])


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (PanelUnreachable("timeout"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE),
        (_error(429, "ThrottleRequestsException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE),
        (_error(503, None), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE),
        (_error(504, "DaemonConnectionException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE),
        (_error(422, "DaemonConnectionException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE),
        (_error(401, "AuthenticationException"), Kind.PERMANENT, FailureReason.PANEL_AUTH),
        (_error(403, "AccessDeniedHttpException"), Kind.PERMANENT, FailureReason.PANEL_AUTH),
        (_error(400, "NoViableNodeException"), Kind.PERMANENT, FailureReason.NO_CAPACITY),
        (_error(400, "NoViableAllocationException"), Kind.PERMANENT, FailureReason.NO_CAPACITY),
        (
            _error(422, "ValidationException", ("environment.BUILD_NUMBER", "required")),
            Kind.PERMANENT,
            FailureReason.INVALID_EGG_VARIABLES,
        ),
        (_error(422, "ValidationException", ("limits.io", "between")), Kind.PERMANENT, FailureReason.INVALID_REQUEST),
        (_error(404, "NotFoundHttpException"), Kind.PERMANENT, FailureReason.UNKNOWN_EGG),
    ],
)
def test_classification(exc: Exception, kind: Kind, reason: FailureReason) -> None:
    result = classify(exc)
    assert (result.kind, result.reason) == (kind, reason)


def test_retry_after_is_carried() -> None:
    error = PanelError(429, "ThrottleRequestsException", "Too Many Attempts.", retry_after=2.0)
    assert classify(error).retry_after == 2.0


def _order() -> OrderSnapshot:
    return OrderSnapshot(
        order_id=uuid.uuid4(),
        user_id="u",
        email="u@example.test",
        game_id="g",
        game_name="G",
        plan_id="p",
        plan_name="P",
        server_name="World",
        amount=1,
        currency="eur",
        server_spec=ServerSpec(
            nest_id=1,
            egg_id=3,
            docker_image="img",
            startup="run",
            environment={"A": "mine"},
            limits=Limits(memory=1024, swap=0, disk=2048, io=500, cpu=100),
            feature_limits=FeatureLimits(databases=0, backups=1, allocations=0),
            deploy=Deploy(locations=[1], tags=["game"]),
        ),
    )


def test_every_egg_variable_is_sent_as_a_string_with_the_egg_default_last() -> None:
    egg = Egg(3, (EggVariable("A", "default-a", "required"), EggVariable("B", "default-b", "nullable|string")))
    body = create_body(_order(), user_id=7, egg=egg, flavor="pterodactyl")
    assert body["environment"] == {"A": "mine", "B": "default-b"}
    assert body["deploy"] == {"locations": [1], "dedicated_ip": False, "port_range": []}
    assert body["limits"]["io"] == 500
    assert body["feature_limits"] == {"databases": 0, "allocations": 0, "backups": 1}
    assert isinstance(body["external_id"], str)


def test_pelican_deploys_by_tags() -> None:
    body = create_body(_order(), user_id=7, egg=Egg(3, ()), flavor="pelican")
    assert body["deploy"] == {"tags": ["game"], "dedicated_ip": False, "port_range": []}
