"""In-memory repository, unit of work and panel for the provisioner's handler tests (no database, no
broker, no HTTP).

Ships with the package, like ``payment_service.testing``; nothing in the service imports it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from spawnpoint_contracts import (
    Deploy,
    FeatureLimits,
    Limits,
    OrderPaid,
    OrderPaidPayload,
    OrderSnapshot,
    ServerSpec,
)
from spawnpoint_kit.unit_of_work import FakeUnitOfWork

from .adapters.repositories import new_provisioning
from .adapters.tables import ProvisioningRow, ServerStateRow
from .domain.drift import OrderRecord, ServerPage
from .domain.panel import Egg, EggVariable, Flavor, PanelError, PanelFieldError, PanelServer, PanelUnreachable
from .domain.provisioning import ProvisioningStatus
from .service_layer.drift import order_record
from .service_layer.unit_of_work import ProvisionerUnitOfWork


class FakeProvisionings:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, ProvisioningRow] = {}

    async def lock_or_create(self, event: OrderPaid) -> ProvisioningRow:
        row = self.rows.get(event.order_id)
        if row is None:
            row = self.rows[event.order_id] = new_provisioning(event)
        return row

    async def get(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        return self.rows.get(order_id)

    async def lock(self, order_id: uuid.UUID) -> ProvisioningRow | None:
        return self.rows.get(order_id)

    async def lease_due(self, *, limit: int, lease_seconds: float) -> list[ProvisioningRow]:
        now = datetime.now(UTC)
        due = sorted(
            (row for row in self.rows.values() if row.status == ProvisioningStatus.INSTALLING and _due(row, now)),
            key=lambda row: row.next_check_at or now,
        )[:limit]
        for row in due:
            row.next_check_at = now + timedelta(seconds=lease_seconds)
        return due

    async def count_installing(self) -> int:
        return sum(1 for row in self.rows.values() if row.status == ProvisioningStatus.INSTALLING)

    async def lease_to_suspend(self, *, limit: int, lease_seconds: float) -> list[uuid.UUID]:
        now = datetime.now(UTC)
        due = [
            row
            for row in self.rows.values()
            if row.refunded_at is not None
            and row.server_id is not None
            and row.suspended_at is None
            and (row.next_check_at is None or row.next_check_at <= now)
        ][:limit]
        for row in due:
            row.next_check_at = now + timedelta(seconds=lease_seconds)
        return [row.order_id for row in due]


def _due(row: ProvisioningRow, now: datetime) -> bool:
    return row.next_check_at is not None and row.next_check_at <= now


class FakeServerStates:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, ServerStateRow] = {}

    async def lock_or_create(self, row: ServerStateRow) -> ServerStateRow:
        return self.rows.setdefault(row.order_id, row)

    async def lock(self, order_id: uuid.UUID) -> ServerStateRow | None:
        return self.rows.get(order_id)

    async def get(self, order_id: uuid.UUID) -> ServerStateRow | None:
        return self.rows.get(order_id)


class FakeProvisionerUnitOfWork(FakeUnitOfWork, ProvisionerUnitOfWork):
    """Rows live as long as the fake; a rollback does not undo them (tests assert what was committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.provisionings = self.fake_provisionings = FakeProvisionings()
        self.server_states = self.fake_server_states = FakeServerStates()


class FakeDriftRecords:
    """``service_layer.drift.DriftRecords`` over the in-memory unit of work's rows."""

    def __init__(self, uow: FakeProvisionerUnitOfWork) -> None:
        self._uow = uow

    async def all(self) -> list[OrderRecord]:
        return list((await self.of(self._order_ids())).values())

    async def of(self, order_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, OrderRecord]:
        out = {}
        for order_id in order_ids:
            provisioning = self._uow.fake_provisionings.rows.get(order_id)
            state = self._uow.fake_server_states.rows.get(order_id)
            if provisioning is not None or state is not None:
                out[order_id] = order_record(provisioning, state)
        return out

    def _order_ids(self) -> list[uuid.UUID]:
        return list(dict.fromkeys([*self._uow.fake_provisionings.rows, *self._uow.fake_server_states.rows]))


class FakePanel:
    """The panel's Application API as the service layer sees it, in memory.

    ``create_failures`` are raised by the next ``create_server`` calls in turn; ``(error, True)`` creates
    the server first and then raises (a create that committed on the panel but whose answer was lost)."""

    flavor: Flavor = "pterodactyl"

    def __init__(self) -> None:
        self.servers: dict[int, PanelServer] = {}
        self.calls: list[str] = []
        self.create_bodies: list[dict[str, Any]] = []
        self.create_failures: list[tuple[Exception, bool]] = []
        self.always_unreachable = False
        self.server_errors: list[Exception] = []
        self.suspend_errors: list[Exception] = []
        self.action_errors: list[Exception] = []
        """Raised in turn by the next unsuspend, build or delete calls."""
        self.build_bodies: list[dict[str, Any]] = []
        self.listing_errors: list[Exception] = []
        """Raised in turn by the next ``list_servers`` calls."""
        self.lying_unsuspend = False
        """Unsuspend answers 204 but leaves the server suspended (a panel the read-back must catch)."""
        self._ids = 0

    def add_server(
        self,
        external_id: str | None,
        *,
        status: str | None = "installing",
        user: int = 42,
        limits: dict[str, Any] | None = None,
        feature_limits: dict[str, Any] | None = None,
    ) -> PanelServer:
        self._ids += 1
        server_id = self._ids
        server = PanelServer(
            server_id,
            f"uuid-{server_id}",
            f"id{server_id:06d}",
            external_id,
            status,
            user,
            1,
            limits={"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100, "threads": None, **(limits or {})},
            feature_limits={"databases": 0, "allocations": 0, "backups": 0, **(feature_limits or {})},
            allocation=server_id + 100,
        )
        self.servers[server_id] = server
        return server

    def set_status(self, server_id: int, status: str | None) -> None:
        self.servers[server_id] = dataclasses.replace(self.servers[server_id], status=status)

    def set_limits(self, server_id: int, **limits: Any) -> None:
        """Change limits (``memory=...``) or feature limits (``backups=...``) behind the shop's back."""
        server = self.servers[server_id]
        features = {k: v for k, v in limits.items() if k in server.feature_limits}
        plain = {k: v for k, v in limits.items() if k not in features}
        self.servers[server_id] = dataclasses.replace(
            server, limits={**server.limits, **plain}, feature_limits={**server.feature_limits, **features}
        )

    async def list_servers(self, *, page: int, per_page: int = 100) -> ServerPage:
        """``GET /servers?page=&per_page=`` as Laravel pages it: id order, a page past the end is empty."""
        self.calls.append("servers")
        if self.listing_errors:
            raise self.listing_errors.pop(0)
        ordered = [self.servers[k] for k in sorted(self.servers)]
        total_pages = max(1, -(-len(ordered) // per_page))
        start = (max(page, 1) - 1) * per_page
        return ServerPage(servers=ordered[start : start + per_page], page=max(page, 1), total_pages=total_pages)

    async def server_by_external_id(self, external_id: str) -> PanelServer | None:
        self.calls.append("server_by_external_id")
        return next((s for s in self.servers.values() if s.external_id == external_id), None)

    async def server(self, server_id: int) -> PanelServer | None:
        self.calls.append("server")
        if self.server_errors:
            raise self.server_errors.pop(0)
        return self.servers.get(server_id)

    async def create_server(self, body: dict[str, Any]) -> PanelServer:
        self.calls.append("create_server")
        self.create_bodies.append(body)
        if self.always_unreachable:
            raise PanelUnreachable("POST /servers: ConnectTimeout")
        if any(s.external_id == body["external_id"] for s in self.servers.values()):
            # The panel's validation (``unique:servers``): one server per external id, the order id.
            raise PanelError(
                422,
                "ValidationException",
                "The external id has already been taken.",
                [PanelFieldError("external_id", "unique", "The external id has already been taken.")],
            )
        if self.create_failures:
            error, created_anyway = self.create_failures.pop(0)
            if created_anyway:
                self.add_server(body["external_id"], user=body["user"])
            raise error
        return self.add_server(
            body["external_id"], user=body["user"], limits=body["limits"], feature_limits=body["feature_limits"]
        )

    async def suspend(self, server_id: int) -> None:
        self.calls.append("suspend")
        if self.suspend_errors:
            raise self.suspend_errors.pop(0)
        if server_id not in self.servers:
            raise PanelError(404, "NotFoundHttpException", "The requested resource could not be found on the server.")
        self.set_status(server_id, "suspended")

    async def unsuspend(self, server_id: int) -> None:
        self.calls.append("unsuspend")
        self._maybe_fail(server_id)
        if not self.lying_unsuspend:
            self.set_status(server_id, None)  # the panel always sets null, whatever the status was

    async def update_build(self, server_id: int, body: dict[str, Any]) -> PanelServer:
        self.calls.append("update_build")
        self._maybe_fail(server_id)
        self.build_bodies.append(body)
        limits = {k: body[k] for k in ("memory", "swap", "disk", "io", "cpu", "threads")}
        server = dataclasses.replace(
            self.servers[server_id], limits=limits, feature_limits=dict(body["feature_limits"])
        )
        self.servers[server_id] = server
        return server

    async def delete_server(self, server_id: int, *, force: bool = False) -> bool:
        self.calls.append("delete_server_force" if force else "delete_server")
        if server_id not in self.servers:
            return False
        if self.action_errors and not force:
            raise self.action_errors.pop(0)
        del self.servers[server_id]
        return True

    def _maybe_fail(self, server_id: int) -> None:
        if self.action_errors:
            raise self.action_errors.pop(0)
        if server_id not in self.servers:
            raise PanelError(404, "NotFoundHttpException", "The requested resource could not be found on the server.")

    async def ensure_user(self, *, user_id: str, email: str) -> int:
        self.calls.append("ensure_user")
        return 7

    async def egg(self, *, nest_id: int | None, egg_id: int) -> Egg:
        self.calls.append("egg")
        return Egg(egg_id, (EggVariable("SERVER_JARFILE", "server.jar", ("required",)),))


def order_paid() -> OrderPaid:
    """An OrderPaid for a new order (a Minecraft server on the standard plan), as payment-service sends it."""
    order = OrderSnapshot(
        order_id=uuid.uuid4(),
        user_id="alice",
        email="alice@example.test",
        game_id="minecraft-paper",
        game_name="Minecraft",
        plan_id="standard",
        plan_name="Standard",
        server_name="Alice world",
        amount=900,
        currency="eur",
        server_spec=ServerSpec(
            nest_id=1,
            egg_id=3,
            docker_image="img",
            startup="run",
            limits=Limits(memory=1024, swap=0, disk=2048, io=500, cpu=100),
            feature_limits=FeatureLimits(databases=0, backups=0, allocations=0),
            deploy=Deploy(locations=[1]),
        ),
    )
    return OrderPaid(
        order_id=order.order_id,
        correlation_id="corr-1",
        producer="payment-service",
        payload=OrderPaidPayload(
            session_id="cs_1", payment_intent="pi_1", amount=order.amount, currency=order.currency, order=order
        ),
    )
