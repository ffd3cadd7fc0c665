"""The daemon side: Wings fault modes per node and the install simulation.

The panel calls Wings after committing a new server; how that call goes decides what the
client sees (section 10 C.10 of the reference):

* ``ok``: Wings accepts (202) and installs asynchronously;
* ``unreachable``: no response. Pterodactyl force-deletes the row and answers 504
  ``DaemonConnectionException``; Pelican deletes it and answers 500 ``ConnectionException``;
* ``error:<code>``: Wings answers with that status. Pterodactyl deletes the row and passes the
  status through; Pelican does not catch it, so the row stays ``installing`` and it answers 500;
* ``commit_then_hang``: the row is committed and Wings accepts, but the response only comes
  after ``hang_seconds``: the client times out while the server exists (the ghost case).

Installs are simulated lazily: each install has a due time, and every request first applies
the installs that are due (``tick``), so no background task is needed and tests stay
deterministic.
"""

from __future__ import annotations

import heapq
import itertools
import math
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from panel_fake import errors
from panel_fake.config import Flavor
from panel_fake.store import (
    STATUS_INSTALL_FAILED,
    STATUS_INSTALLING,
    STATUS_REINSTALL_FAILED,
    STATUS_SUSPENDED,
    PanelState,
    Server,
    utcnow,
)

WingsKind = Literal["ok", "unreachable", "error", "commit_then_hang"]
WingsAction = Literal["create", "delete", "suspend", "unsuspend", "build", "reinstall", "resources"]
WINGS_ACTIONS: tuple[WingsAction, ...] = ("create", "delete", "suspend", "unsuspend", "build", "reinstall", "resources")
# The panel calls Wings' ``/sync`` for suspension and build changes alike.
ACTION_ALIASES: dict[str, tuple[WingsAction, ...]] = {"sync": ("suspend", "unsuspend", "build")}
InstallOutcome = Literal["ok", "failed", "stuck"]

_WINGS_ERRORS = {
    400: "The data passed in the request was not in a parsable format. Please try again.",
    404: "The requested resource does not exist on this instance.",
    409: "A server with this identifier already exists on this instance.",
    422: "The data passed in the request was not valid.",
}


def parse_actions(names: list[str]) -> frozenset[WingsAction]:
    """Action names (or the alias ``sync``) to the set a mode applies to."""
    result: set[WingsAction] = set()
    for name in names:
        value = name.strip().lower()
        if value in ACTION_ALIASES:
            result.update(ACTION_ALIASES[value])
            continue
        matched = next((action for action in WINGS_ACTIONS if action == value), None)
        if matched is None:
            raise ValueError(f"unknown Wings action {name!r}: expected one of {', '.join(WINGS_ACTIONS)} or sync")
        result.add(matched)
    if not result:
        raise ValueError("actions must name at least one Wings action")
    return frozenset(result)


@dataclass
class WingsMode:
    """How Wings calls for one node behave.

    ``actions=None`` is the original catch-all: every call sees the mode and ``remaining`` counts
    create calls only. With ``actions``, only those calls see it and ``remaining`` counts them.
    """

    kind: WingsKind = "ok"
    status: int = 0
    remaining: int | None = None
    request_id: str | None = None
    error: str | None = None
    actions: frozenset[WingsAction] | None = None

    def describe(self) -> str:
        return f"error:{self.status}" if self.kind == "error" else self.kind

    def applies_to(self, action: WingsAction) -> bool:
        return self.actions is None or action in self.actions

    def counts(self, action: WingsAction) -> bool:
        return action in self.actions if self.actions is not None else action == "create"

    def summary(self) -> dict[str, object]:
        return {
            "mode": self.describe(),
            "actions": sorted(self.actions) if self.actions is not None else None,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class WingsResult:
    """The outcome of one Wings call."""

    kind: WingsKind
    status: int = 0
    request_id: str = ""
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.kind in ("unreachable", "error")

    @property
    def hangs(self) -> bool:
        return self.kind == "commit_then_hang"

    @property
    def not_found(self) -> bool:
        """Wings answered 404: the panel treats the server as already gone on deletes."""
        return self.kind == "error" and self.status == 404


def parse_mode(text: str) -> tuple[WingsKind, int]:
    """``"ok"``, ``"unreachable"``, ``"commit_then_hang"`` or ``"error:<status>"``."""
    value = text.strip().lower()
    if value in ("ok", "unreachable", "commit_then_hang"):
        kind: WingsKind = "ok" if value == "ok" else "unreachable" if value == "unreachable" else "commit_then_hang"
        return kind, 0
    if value.startswith("error:"):
        status = int(value.split(":", 1)[1])
        if not 100 <= status <= 599:
            raise ValueError("error status must be an HTTP status code")
        return "error", status
    raise ValueError("mode must be ok, unreachable, commit_then_hang or error:<status>")


class WingsSimulator:
    """Per-node rules, first match wins: action-filtered rules go in front of the catch-all."""

    def __init__(self) -> None:
        self.rules: dict[int, list[WingsMode]] = {}

    def reset(self) -> None:
        self.rules.clear()

    def set_mode(self, node_id: int, mode: WingsMode) -> None:
        """A catch-all mode replaces every rule of the node (``ok`` clears them); a filtered one
        takes those actions over from older filtered rules and overrides the catch-all for them."""
        if mode.actions is None:
            self.rules[node_id] = [] if mode.kind == "ok" else [mode]
        else:
            kept: list[WingsMode] = []
            for rule in self.rules.get(node_id, []):
                if rule.actions is None:
                    kept.append(rule)
                    continue
                left = rule.actions - mode.actions
                if left:
                    rule.actions = frozenset(left)
                    kept.append(rule)
            self.rules[node_id] = [mode, *kept]
        if not self.rules[node_id]:
            del self.rules[node_id]

    def mode_for(self, node_id: int) -> WingsMode:
        """The catch-all mode of a node (``ok`` when there is none)."""
        return next((rule for rule in self.rules.get(node_id, []) if rule.actions is None), WingsMode())

    def describe(self, node_id: int) -> list[dict[str, object]]:
        return [rule.summary() for rule in self.rules.get(node_id, [])]

    def call(self, node_id: int, action: WingsAction) -> WingsResult:
        rules = self.rules.get(node_id, [])
        rule = next((candidate for candidate in rules if candidate.applies_to(action)), None)
        if rule is None:
            return WingsResult("ok")
        if rule.remaining is not None and rule.counts(action):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
                if not rules:
                    self.rules.pop(node_id, None)
        if rule.kind == "ok":
            return WingsResult("ok")
        return WingsResult(
            kind=rule.kind,
            status=rule.status,
            request_id=rule.request_id or str(uuidlib.uuid4()),
            error=rule.error,
        )


def daemon_error(result: WingsResult, flavor: Flavor) -> errors.PanelError:
    """The exception the panel turns a failed Wings call into."""
    if flavor == "pelican":
        return errors.generic("ConnectionException" if result.kind == "unreachable" else "RequestException")
    if result.kind == "unreachable":
        return errors.display("DaemonConnectionException", errors.WINGS_UNREACHABLE, status=504)
    status = result.status if result.status >= 400 else 502
    message = (
        "There was an error while communicating with the machine running this server. This error has been "
        f"logged, please try again. (code: {result.status}) (request_id: {result.request_id})"
    )
    if status < 500:
        wings_error = result.error or _WINGS_ERRORS.get(result.status, message)
        message = f"An error occurred on the remote host: {wings_error}. (request id: {result.request_id})"
    return errors.display("DaemonConnectionException", message, status=status)


# --------------------------------------------------------------------------- installs


@dataclass(frozen=True)
class InstallPlan:
    outcome: InstallOutcome
    seconds: float


@dataclass
class PendingInstall:
    server_id: int
    due: float
    outcome: InstallOutcome
    reinstall: bool
    token: int


@dataclass
class InstallSimulator:
    """Decides how each install ends and applies the endings when they are due."""

    default: InstallPlan
    by_external: dict[str, InstallPlan] = field(default_factory=dict)
    queue: deque[InstallPlan] = field(default_factory=deque)
    pending: dict[int, PendingInstall] = field(default_factory=dict)
    _heap: list[tuple[float, int, int]] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=itertools.count)

    def reset(self, default: InstallPlan) -> None:
        self.default = default
        self.by_external.clear()
        self.queue.clear()
        self.pending.clear()
        self._heap.clear()

    def plan_for(self, server: Server) -> InstallPlan:
        """Per-external-id override, then the ``times`` queue, then the default."""
        if server.external_id is not None:
            override = self.by_external.get(server.external_id.casefold())
            if override is not None:
                return override
        if self.queue:
            return self.queue.popleft()
        return self.default

    def start(self, server: Server, *, reinstall: bool, now: float) -> PendingInstall:
        plan = self.plan_for(server)
        outcome, seconds = plan.outcome, plan.seconds
        if server.skip_scripts and outcome != "stuck":
            # Wings skips the script but still reports success, almost at once.
            outcome, seconds = "ok", 0.0
        return self._schedule(server.id, outcome, now + seconds, reinstall)

    def _schedule(self, server_id: int, outcome: InstallOutcome, due: float, reinstall: bool) -> PendingInstall:
        token = next(self._tokens)
        if outcome == "stuck":
            due = math.inf
        pending = PendingInstall(server_id=server_id, due=due, outcome=outcome, reinstall=reinstall, token=token)
        self.pending[server_id] = pending
        if math.isfinite(due):
            heapq.heappush(self._heap, (due, token, server_id))
        return pending

    def override_pending(self, server_id: int, outcome: InstallOutcome, seconds: float | None, now: float) -> None:
        """Re-plan an install already running (``POST /_fake/install`` with an external id)."""
        current = self.pending.get(server_id)
        if current is None:
            return
        due = now + seconds if seconds is not None else current.due
        if not math.isfinite(due):
            due = now + self.default.seconds
        self._schedule(server_id, outcome, due, current.reinstall)

    def cancel(self, server_id: int) -> None:
        self.pending.pop(server_id, None)

    def tick(self, state: PanelState, now: float) -> None:
        """Apply every install whose due time has passed."""
        while self._heap and self._heap[0][0] <= now:
            _, token, server_id = heapq.heappop(self._heap)
            pending = self.pending.get(server_id)
            if pending is None or pending.token != token:
                continue
            del self.pending[server_id]
            server = state.servers.get(server_id)
            if server is not None:
                finish_install(server, successful=pending.outcome == "ok", reinstall=pending.reinstall)

    def finish_now(self, state: PanelState, server: Server, successful: bool) -> None:
        pending = self.pending.pop(server.id, None)
        reinstall = pending.reinstall if pending is not None else False
        finish_install(server, successful=successful, reinstall=reinstall)


def finish_install(server: Server, *, successful: bool, reinstall: bool) -> None:
    """``ServerInstallController::store``: Wings reports the install result to the panel."""
    status: str | None = None
    if not successful:
        status = STATUS_REINSTALL_FAILED if reinstall else STATUS_INSTALL_FAILED
    if server.status == STATUS_SUSPENDED:
        status = STATUS_SUSPENDED
    server.status = status
    if successful:
        server.installed_at = utcnow()
    server.touch()


def is_installed(server: Server, flavor: Flavor) -> bool:
    """``Server::isInstalled``; Pelican also counts ``reinstall_failed`` as not installed."""
    not_installed = {STATUS_INSTALLING, STATUS_INSTALL_FAILED}
    if flavor == "pelican":
        not_installed.add(STATUS_REINSTALL_FAILED)
    return server.status not in not_installed
