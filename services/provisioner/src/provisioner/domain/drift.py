"""Drift: where Spawnpoint's records and the panel disagree about a server, as a pure classification.

The provisioner's records of an order (``provisionings`` and ``server_states``, one ``OrderRecord``) are
compared with every server the panel lists (``PanelServer``, matched by the recorded server id, else by
``external_id`` = the order id). Each disagreement is a ``Drift`` of one stable ``DriftKind`` with a
default action:

=====================  ===========================================================================  ========
kind                   when                                                                         default
=====================  ===========================================================================  ========
suspended_by_hand      the panel shows suspended, the applied desired state is running              converge
unsuspended_by_hand    the panel shows not suspended, the applied desired state is suspended        converge
limits_differ          the panel's limits are not the desired build (``server_state.build_differs``)  converge
deleted_on_panel       a ready order's recorded server is not on the panel (desired not terminated)  report
vanished               an installing order's server is found neither by id nor by external id       report
orphan                 a panel server with a UUID external id that is no live order of ours          report
=====================  ===========================================================================  ========

``deleted_on_panel`` and ``vanished`` are the same fact (the server is gone) at two moments of the order's
life: ``deleted_on_panel`` once the install was confirmed (the order is ``ready``: someone removed a
finished server; nothing of ours will notice, so a person decides: refund, or replay to recreate), and
``vanished`` while it is still ``installing`` (the server never finished; the install watcher fails the
order, ``install_failed``, at its next check, and the refund follows).

``orphan`` is a server that follows our external-id format (a UUID) and is not a live server of ours: no
order here has that id, the order's desired state was terminated and applied, the order failed (or was
never paid here) without recording a server, or a second server carries the external id of an order whose
recorded server is another one. A server with a null or non-UUID external id belongs to someone else (a
hand-made one, another tenant, WHMCS's numeric ids) and is never reported; it is only counted
(``Classified.foreign``).

No false positive is invented (a clean system gives none):

- a server the panel shows ``installing``/``restoring_backup`` is left alone (it ends by itself), and so is
  one whose install failed (convergence is ``BLOCKED`` there on purpose);
- the suspension and limits kinds need an order that is ``ready`` with a desired state that is *applied*
  (``applied_version >= desired_version``): a newer desired state in flight, waiting for its install or
  dead-lettered belongs to convergence and to the dead-letter queue, not to drift;
- a refunded order's server is suspended by the refund job whatever the desired state says: its suspension
  is never ``suspended_by_hand``, and its disappearance is not drift;
- an order still being created (``requested``/``retry_scheduled``, no server recorded yet) owns the server
  that carries its id: the creation adopts it;
- a failed order whose server is gone (the install failed, it was refunded) is the provisioning's failure,
  already reported (``ProvisionFailed``), not drift.

The service layer (``service_layer/drift.py``) then confirms every candidate with fresh reads before it is
reported (the records read again around a new read of the server), so a change made meanwhile by the
normal paths is never mistaken for one made by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from spawnpoint_contracts import DesiredServerState

from .panel import PanelServer
from .provisioning import ProvisioningStatus
from .server_state import FAILED_INSTALL, FEATURE_KEYS, INSTALLING, LIMIT_KEYS, Desired, Observed, build_differs


class DriftKind(StrEnum):
    SUSPENDED_BY_HAND = "suspended_by_hand"
    UNSUSPENDED_BY_HAND = "unsuspended_by_hand"
    LIMITS_DIFFER = "limits_differ"
    DELETED_ON_PANEL = "deleted_on_panel"
    VANISHED = "vanished"
    ORPHAN = "orphan"


class DriftAction(StrEnum):
    CONVERGE = "converge"
    """Send the latest desired state back to ``provisioner.desired-state``: convergence puts the panel right."""
    REPORT = "report"
    """For a person: never recreate or delete a server silently."""


DEFAULT_ACTIONS: dict[DriftKind, DriftAction] = {
    DriftKind.SUSPENDED_BY_HAND: DriftAction.CONVERGE,
    DriftKind.UNSUSPENDED_BY_HAND: DriftAction.CONVERGE,
    DriftKind.LIMITS_DIFFER: DriftAction.CONVERGE,
    DriftKind.DELETED_ON_PANEL: DriftAction.REPORT,
    DriftKind.VANISHED: DriftAction.REPORT,
    DriftKind.ORPHAN: DriftAction.REPORT,
}


@dataclass(frozen=True)
class StateRecord:
    """The order's ``server_states`` row, as drift needs it."""

    desired: Desired
    applied_version: int
    applied_state: str | None
    failed_version: int | None = None
    waiting: str | None = None
    updated_at: datetime | None = None

    @property
    def settled(self) -> bool:
        """The panel was confirmed to match the newest desired state (nothing in flight or dead-lettered)."""
        return self.applied_version >= self.desired.version

    @property
    def terminated(self) -> bool:
        return self.desired.state == DesiredServerState.TERMINATED


@dataclass(frozen=True)
class OrderRecord:
    """What Spawnpoint knows about one order: its provisioning row (``status`` None: never paid here) and
    its server state (None: no desired state received)."""

    order_id: uuid.UUID
    status: ProvisioningStatus | None = None
    server_id: int | None = None
    refunded: bool = False
    state: StateRecord | None = None
    fingerprint: tuple[Any, ...] = ()
    """Changes whenever either row changes (``service_layer/drift.py`` compares two reads of it)."""

    @property
    def terminated_applied(self) -> bool:
        return self.state is not None and self.state.terminated and self.state.settled


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    order_id: uuid.UUID | None
    server_id: int | None
    detail: str
    external_id: str | None = None

    @property
    def default_action(self) -> DriftAction:
        return DEFAULT_ACTIONS[self.kind]

    @property
    def key(self) -> tuple[DriftKind, uuid.UUID | None, int | None]:
        """The same drift in two reads (the detail may read differently)."""
        return self.kind, self.order_id, self.server_id


@dataclass(frozen=True)
class Classified:
    drifts: list[Drift]
    foreign: int = 0
    """Servers with a null or non-UUID external id: someone else's, never reported."""
    installing: int = 0
    """Servers still installing (or restoring a backup), left alone."""


@dataclass(frozen=True)
class ServerPage:
    """One page of ``GET /api/application/servers``."""

    servers: list[PanelServer]
    page: int
    total_pages: int | None = None
    """From ``meta.pagination``; None when the panel did not say (then a short page is the last)."""


def order_id_of(external_id: str | None) -> uuid.UUID | None:
    """The order id an external id names, when it follows our format (a UUID; any case), else None."""
    if not external_id:
        return None
    try:
        return uuid.UUID(external_id.strip())
    except ValueError:
        return None


def classify(records: Iterable[OrderRecord], servers: Iterable[PanelServer]) -> Classified:
    """Every disagreement between ``records`` and the panel's ``servers`` (module docstring)."""
    by_order = {record.order_id: record for record in records}
    by_server_id = {record.server_id: record for record in by_order.values() if record.server_id is not None}
    listed = {server.id: server for server in servers}
    by_external: dict[uuid.UUID, PanelServer] = {}
    for server in listed.values():
        order_id = order_id_of(server.external_id)
        if order_id is not None:
            by_external.setdefault(order_id, server)

    drifts: list[Drift] = []
    for record in by_order.values():
        drifts.extend(_record_drifts(record, listed, by_external))
    foreign = installing = 0
    for server in listed.values():
        if server.status in INSTALLING:
            installing += 1
            continue
        owner = by_server_id.get(server.id)
        order_id = order_id_of(server.external_id)
        if owner is None and order_id is None:
            foreign += 1
            continue
        found = _orphan(server, owner, by_order.get(order_id) if order_id else None, listed)
        if found is not None:
            drifts.append(found)
    return Classified(drifts, foreign=foreign, installing=installing)


def _record_drifts(
    record: OrderRecord, listed: dict[int, PanelServer], by_external: dict[uuid.UUID, PanelServer]
) -> list[Drift]:
    if record.server_id is None:
        return []
    server = listed.get(record.server_id)
    state = record.state
    if server is None:
        if (state is not None and state.terminated) or record.refunded:
            return []  # gone as wished, or the refund's business
        carrier = by_external.get(record.order_id)
        elsewhere = f"; server #{carrier.id} carries the order's external id" if carrier is not None else ""
        if record.status == ProvisioningStatus.READY:
            return [
                Drift(
                    DriftKind.DELETED_ON_PANEL,
                    record.order_id,
                    record.server_id,
                    f"the panel has no server #{record.server_id} (the order is ready, desired "
                    f"{state.desired.state.value if state else 'running'}){elsewhere}",
                    str(record.order_id),
                )
            ]
        if record.status == ProvisioningStatus.INSTALLING and carrier is None:
            return [
                Drift(
                    DriftKind.VANISHED,
                    record.order_id,
                    record.server_id,
                    f"server #{record.server_id} is gone while installing, and no server carries the order's "
                    "external id (the install watcher fails the order at its next check)",
                    str(record.order_id),
                )
            ]
        return []
    if (
        record.status != ProvisioningStatus.READY
        or state is None
        or not state.settled
        or state.terminated
        or server.status in INSTALLING
        or server.status in FAILED_INSTALL
    ):
        return []
    observed = Observed(status=server.status, limits=server.limits, feature_limits=server.feature_limits)
    out: list[Drift] = []
    wanted = state.desired.state
    if wanted == DesiredServerState.RUNNING and observed.suspended and not record.refunded:
        out.append(
            Drift(
                DriftKind.SUSPENDED_BY_HAND,
                record.order_id,
                server.id,
                f"the panel shows suspended; desired running (version {state.desired.version})",
                server.external_id,
            )
        )
    if wanted == DesiredServerState.SUSPENDED and not observed.suspended:
        out.append(
            Drift(
                DriftKind.UNSUSPENDED_BY_HAND,
                record.order_id,
                server.id,
                f"the panel shows {server.status or 'running (status null)'}; desired suspended "
                f"(version {state.desired.version})",
                server.external_id,
            )
        )
    if build_differs(state.desired, observed):
        out.append(
            Drift(
                DriftKind.LIMITS_DIFFER,
                record.order_id,
                server.id,
                limits_difference(state.desired, observed),
                server.external_id,
            )
        )
    return out


def _orphan(
    server: PanelServer, owner: OrderRecord | None, named: OrderRecord | None, listed: dict[int, PanelServer]
) -> Drift | None:
    """``server`` (not installing) as an orphan, or None when it is a live server of ours (or no UUID's)."""
    external = server.external_id

    def orphan(why: str, order_id: uuid.UUID | None) -> Drift:
        return Drift(DriftKind.ORPHAN, order_id, server.id, f"external id {external}: {why}", external)

    if owner is not None:  # the server we recorded for an order
        if owner.terminated_applied:
            return orphan("the order's server was terminated here, yet this one is on the panel", owner.order_id)
        return None
    if external is None:  # no owner by id: only a UUID external id brings a server here
        return None
    if named is None:
        return orphan("no order of ours has this id", order_id_of(external))
    if named.terminated_applied:
        return orphan("the order's server was terminated here, yet this one is on the panel", named.order_id)
    if named.server_id is None:
        if named.status in (ProvisioningStatus.REQUESTED, ProvisioningStatus.RETRY_SCHEDULED):
            return None  # being created: the creation adopts it by external id
        if named.status is None:
            return orphan("the order was never paid here", named.order_id)
        return orphan(f"the order is {named.status.value} here and recorded no server", named.order_id)
    if named.server_id in listed:
        return orphan(f"the order's server is #{named.server_id}; this is a second one", named.order_id)
    return None  # the recorded one is gone: reported with the order (deleted_on_panel names this one)


def limits_difference(desired: Desired, observed: Observed) -> str:
    """``memory: panel 4096, plan 2048; backups: panel 0, plan 1``: what ``build_differs`` saw."""
    parts = []
    for key in LIMIT_KEYS:
        if key in desired.limits and _norm(desired.limits.get(key)) != _norm(observed.limits.get(key)):
            parts.append(f"{key}: panel {_shown(observed.limits.get(key))}, plan {_shown(desired.limits.get(key))}")
    for key in FEATURE_KEYS:
        if key in desired.feature_limits and int(desired.feature_limits[key] or 0) != int(
            observed.feature_limits.get(key) or 0
        ):
            parts.append(
                f"{key}: panel {int(observed.feature_limits.get(key) or 0)}, "
                f"plan {int(desired.feature_limits[key] or 0)}"
            )
    return "; ".join(parts) or "the panel's build differs from the plan"


def _norm(value: Any) -> Any:
    """As ``server_state.build_differs`` compares limits (null and "" are unset; numbers as integers)."""
    return None if value in (None, "") else (int(value) if isinstance(value, int | float) else str(value))


def _shown(value: Any) -> str:
    normal = _norm(value)
    return "unset" if normal is None else str(normal)
