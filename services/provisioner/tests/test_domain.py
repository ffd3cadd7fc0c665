"""Unit tests of the provisioner's pure rules: failure classification, the state machine (its table and
its decisions), the create request and how the environment is filled."""

from __future__ import annotations

import uuid

import pytest

from provisioner.domain.failures import Kind, classify, field_details
from provisioner.domain.panel import Egg, EggVariable, PanelError, PanelFieldError, PanelUnreachable
from provisioner.domain.provisioning import (
    PROVISIONING,
    Decision,
    ProvisioningStatus,
    ProvisioningTrigger,
    decide,
)
from provisioner.domain.server_request import create_body, environment_for
from spawnpoint_contracts import Deploy, FailureReason, FeatureLimits, Limits, OrderSnapshot, ServerSpec
from spawnpoint_kit.state_machine import InvalidTransition

pytestmark = pytest.mark.unit


def _error(status: int, code: str | None, *fields: tuple[str, str], envelope: bool = True) -> PanelError:
    return PanelError(status, code, "x", [PanelFieldError(f, r, "x") for f, r in fields], envelope=envelope)


@pytest.mark.parametrize(
    ("exc", "kind", "reason", "replayable"),
    [
        (PanelUnreachable("timeout"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(429, "ThrottleRequestsException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(503, None, envelope=False), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(500, "QueryException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(504, "DaemonConnectionException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(422, "DaemonConnectionException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (_error(409, "ConflictHttpException"), Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, True),
        (
            _error(422, "ValidationException", ("external_id", "unique")),
            Kind.TRANSIENT,
            FailureReason.PANEL_UNAVAILABLE,
            True,
        ),
        (_error(401, "AuthenticationException"), Kind.PERMANENT, FailureReason.PANEL_AUTH, True),
        (_error(403, "AccessDeniedHttpException"), Kind.PERMANENT, FailureReason.PANEL_AUTH, True),
        (_error(400, "TwoFactorAuthRequiredException"), Kind.PERMANENT, FailureReason.PANEL_AUTH, True),
        (_error(400, "NoViableNodeException"), Kind.PERMANENT, FailureReason.NO_CAPACITY, True),
        (_error(400, "NoViableAllocationException"), Kind.PERMANENT, FailureReason.NO_CAPACITY, True),
        (
            _error(422, "ValidationException", ("environment.BUILD_NUMBER", "required")),
            Kind.PERMANENT,
            FailureReason.INVALID_EGG_VARIABLES,
            False,
        ),
        (
            _error(422, "ValidationException", ("limits.io", "between")),
            Kind.PERMANENT,
            FailureReason.INVALID_REQUEST,
            False,
        ),
        (_error(400, "DisplayException"), Kind.PERMANENT, FailureReason.INVALID_REQUEST, False),
        (_error(404, "NotFoundHttpException"), Kind.PERMANENT, FailureReason.UNKNOWN_EGG, True),
        (KeyError("attributes"), Kind.PERMANENT, FailureReason.INTERNAL_ERROR, True),
    ],
)
def test_classification(exc: Exception, kind: Kind, reason: FailureReason, replayable: bool) -> None:
    result = classify(exc)
    assert (result.kind, result.reason, result.replayable) == (kind, reason, replayable)
    assert result.message


def test_retry_after_is_carried_and_field_details_are_kept() -> None:
    error = PanelError(429, "ThrottleRequestsException", "Too Many Attempts.", retry_after=2.0)
    assert classify(error).retry_after == 2.0
    invalid = _error(422, "ValidationException", ("environment.SERVER_JARFILE", "regex"))
    assert field_details(invalid) == {"environment.SERVER_JARFILE": "regex"}
    assert "environment.SERVER_JARFILE (regex)" in classify(invalid).message


TOKEN = uuid.uuid4()


@pytest.mark.parametrize(
    ("status", "seen", "expected_token", "replays", "token", "decision"),
    [
        (ProvisioningStatus.REQUESTED, 0, None, 0, None, Decision.PROCEED),  # first delivery or after a crash
        (ProvisioningStatus.INSTALLING, 0, None, 0, None, Decision.SKIP_DONE),  # duplicate
        (ProvisioningStatus.READY, 0, None, 0, None, Decision.SKIP_DONE),
        (ProvisioningStatus.FAILED, 0, None, 0, None, Decision.SKIP_FAILED),  # waits for a replay
        (ProvisioningStatus.FAILED, 0, None, 1, None, Decision.REPLAY),
        (ProvisioningStatus.FAILED, 1, None, 1, None, Decision.SKIP_FAILED),  # the same replay again
        (ProvisioningStatus.READY, 0, None, 1, None, Decision.NOTE_REPLAY),
        (ProvisioningStatus.RETRY_SCHEDULED, 0, TOKEN, 0, TOKEN, Decision.PROCEED),  # the delayed retry
        (ProvisioningStatus.RETRY_SCHEDULED, 0, TOKEN, 0, None, Decision.SKIP_STALE),  # a late duplicate
        (ProvisioningStatus.RETRY_SCHEDULED, 0, TOKEN, 0, uuid.uuid4(), Decision.SKIP_STALE),
        (ProvisioningStatus.RETRY_SCHEDULED, 0, TOKEN, 1, None, Decision.REPLAY),
    ],
)
def test_decisions(
    status: ProvisioningStatus,
    seen: int,
    expected_token: uuid.UUID | None,
    replays: int,
    token: uuid.UUID | None,
    decision: Decision,
) -> None:
    got = decide(
        status,
        seen_replays=seen,
        expected_retry_token=expected_token,
        delivery_replays=replays,
        delivery_retry_token=token,
    )
    assert got == decision


S, T = ProvisioningStatus, ProvisioningTrigger


@pytest.mark.parametrize(
    ("trigger", "allowed_from", "target"),
    [
        (T.ATTEMPT, {S.REQUESTED, S.RETRY_SCHEDULED}, S.REQUESTED),
        (T.OPERATOR_REPLAY, {S.REQUESTED, S.RETRY_SCHEDULED, S.FAILED}, S.REQUESTED),
        (T.SCHEDULE_RETRY, {S.REQUESTED}, S.RETRY_SCHEDULED),
        (T.PANEL_FAILED, {S.REQUESTED, S.RETRY_SCHEDULED}, S.FAILED),
        (T.SERVER_RECORDED, {S.REQUESTED, S.RETRY_SCHEDULED, S.FAILED}, S.INSTALLING),
        (T.INSTALLED, {S.INSTALLING}, S.READY),
        (T.INSTALL_FAILED, {S.INSTALLING}, S.FAILED),
    ],
)
def test_the_provisioning_table(
    trigger: ProvisioningTrigger, allowed_from: set[ProvisioningStatus], target: ProvisioningStatus
) -> None:
    """Where each trigger is allowed is what the handlers' guards rely on: nothing records a second server
    once an order is installing or ready, only a replay restarts a failed order, and a retry is scheduled
    only from ``requested``."""
    assert {state for state in S if PROVISIONING.allows(state, trigger)} == allowed_from
    for state in allowed_from:
        assert PROVISIONING.step(state, trigger) == target


def test_a_move_the_table_does_not_allow_is_a_domain_error() -> None:
    class Row:
        status = S.READY

    row = Row()
    with pytest.raises(InvalidTransition):
        PROVISIONING.transition(row, T.ATTEMPT)
    assert row.status == S.READY
    row.status = S.INSTALLING
    assert PROVISIONING.transition(row, T.INSTALLED) == S.READY and row.status == S.READY


def _order(settings: dict[str, str] | None = None, environment: dict[str, str] | None = None) -> OrderSnapshot:
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
        settings=settings or {},
        server_spec=ServerSpec(
            nest_id=1,
            egg_id=3,
            docker_image="img",
            startup="run",
            environment=environment if environment is not None else {"A": "mine"},
            limits=Limits(memory=1024, swap=0, disk=2048, io=500, cpu=100, threads="0-1"),
            feature_limits=FeatureLimits(databases=1, backups=2, allocations=3),
            deploy=Deploy(locations=[1, 2], tags=["game"], port_range=["25565-25600"]),
        ),
    )


EGG = Egg(
    3,
    (
        EggVariable("A", "default-a", ("required",)),
        EggVariable("B", "default-b", ("nullable", "string")),
        EggVariable("C", "", ("nullable", "string")),
    ),
)


def test_environment_is_customer_setting_then_catalog_default_then_egg_default() -> None:
    filled = environment_for(EGG, settings={"A": "customer", "X": "dropped"}, defaults={"A": "catalog", "B": "catalog"})
    assert filled == {"A": "customer", "B": "catalog", "C": ""}
    assert environment_for(EGG, settings={}, defaults={}) == {"A": "default-a", "B": "default-b", "C": ""}


def test_the_create_request_carries_limits_feature_limits_deploy_and_every_variable_as_a_string() -> None:
    body = create_body(
        _order(settings={"B": "chosen"}, environment={"A": "catalog", "B": "catalog"}),
        user_id=7,
        egg=EGG,
        flavor="pterodactyl",
    )
    assert body["environment"] == {"A": "catalog", "B": "chosen", "C": ""}
    assert body["deploy"] == {"locations": [1, 2], "dedicated_ip": False, "port_range": ["25565-25600"]}
    assert body["limits"] == {"memory": 1024, "swap": 0, "disk": 2048, "io": 500, "cpu": 100, "threads": "0-1"}
    assert body["feature_limits"] == {"databases": 1, "allocations": 3, "backups": 2}
    assert body["start_on_completion"] is True
    assert body["user"] == 7 and body["egg"] == 3
    assert isinstance(body["external_id"], str)
    assert all(isinstance(v, str) for v in body["environment"].values())


def test_pelican_deploys_by_tags() -> None:
    body = create_body(_order(), user_id=7, egg=Egg(3, ()), flavor="pelican")
    assert body["deploy"] == {"tags": ["game"], "dedicated_ip": False, "port_range": ["25565-25600"]}
