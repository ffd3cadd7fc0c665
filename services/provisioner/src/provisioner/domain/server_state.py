"""A server's whole life on the panel: converge it to the rental's desired state, never replay commands.

Billing (payment-service) publishes a desired state with a version (``DesiredServerStateChanged``):
running, suspended or terminated, with the plan's complete build. The provisioner keeps, per order, the
highest version it has seen (``desired``) and the one the panel was last confirmed to match
(``applied``). Converging is always read first, act second, read back third:

1. read the server from the panel (``Observed``);
2. ``next_step`` says the one action that brings it closer to the desired state, or why none is taken:
   ``DONE`` (it already matches: nothing to call, which is what makes a redelivery after a crash between
   the panel's 204 and our commit harmless), ``WAIT`` (the server is still installing: suspending it now
   would be overwritten when the install ends, so the install watcher brings the request back once it
   has), ``BLOCKED`` (a failed install: unsuspending it would mark it installed, see the reference),
   ``VANISHED`` (the server is gone although the rental wants it: drift, for a person);
3. act, read back, and repeat until ``DONE`` (a resize, then a suspension, at most a few steps).

A suspend and an unsuspend that arrive in either order, twice or after a crash therefore end in the
state of the higher version: the lower one finds ``desired`` newer than itself and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spawnpoint_contracts import DesiredServerState, ServerAction

INSTALLING = frozenset({"installing", "restoring_backup"})
"""Panel statuses that end by themselves: wait for them."""
FAILED_INSTALL = frozenset({"install_failed", "reinstall_failed"})
"""Panel statuses a suspension must not touch (unsuspend would set them to null: "installed")."""

LIMIT_KEYS = ("memory", "swap", "disk", "io", "cpu", "threads")
FEATURE_KEYS = ("databases", "allocations", "backups")


class Step(StrEnum):
    DONE = "done"
    WAIT = "wait"
    BLOCKED = "blocked"
    VANISHED = "vanished"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    RESIZE = "resize"
    TERMINATE = "terminate"

    @property
    def action(self) -> ServerAction | None:
        return {
            Step.SUSPEND: ServerAction.SUSPEND,
            Step.UNSUSPEND: ServerAction.UNSUSPEND,
            Step.RESIZE: ServerAction.RESIZE,
            Step.TERMINATE: ServerAction.TERMINATE,
        }.get(self)


@dataclass(frozen=True)
class Desired:
    """The rental's wish for the server, at one version."""

    state: DesiredServerState
    version: int
    limits: dict[str, Any]
    feature_limits: dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """The server as the panel shows it now."""

    status: str | None
    limits: dict[str, Any]
    feature_limits: dict[str, Any]

    @property
    def suspended(self) -> bool:
        return self.status == "suspended"


def build_differs(desired: Desired, observed: Observed) -> bool:
    """The panel's limits are not the plan's (the keys the plan sets; ``threads`` null means unset)."""
    for key in LIMIT_KEYS:
        if key in desired.limits and _norm(desired.limits.get(key)) != _norm(observed.limits.get(key)):
            return True
    return any(
        key in desired.feature_limits
        and int(desired.feature_limits[key] or 0) != int(observed.feature_limits.get(key) or 0)
        for key in FEATURE_KEYS
    )


def _norm(value: Any) -> Any:
    return None if value in (None, "") else (int(value) if isinstance(value, int | float) else str(value))


def next_step(desired: Desired, observed: Observed | None) -> Step:
    """The one action that brings the panel closer to ``desired`` (see the module docstring)."""
    if observed is None:
        return Step.DONE if desired.state == DesiredServerState.TERMINATED else Step.VANISHED
    if desired.state == DesiredServerState.TERMINATED:
        return Step.TERMINATE
    if observed.status in INSTALLING:
        return Step.WAIT
    if observed.status in FAILED_INSTALL:
        return Step.BLOCKED
    if build_differs(desired, observed):
        return Step.RESIZE
    if desired.state == DesiredServerState.SUSPENDED and not observed.suspended:
        return Step.SUSPEND
    if desired.state == DesiredServerState.RUNNING and observed.suspended:
        return Step.UNSUSPEND
    return Step.DONE


def confirmed(step: Step, desired: Desired, after: Observed | None) -> bool:
    """The panel's read-back shows what ``step`` was for (a 204 alone is not believed)."""
    if step == Step.TERMINATE:
        return after is None
    if after is None:
        return False
    if step == Step.SUSPEND:
        return after.suspended
    if step == Step.UNSUSPEND:
        return not after.suspended
    if step == Step.RESIZE:
        return not build_differs(desired, after)
    return True


def build_body(desired: Desired, current: dict[str, Any]) -> dict[str, Any]:
    """The complete ``PATCH /servers/{id}/build`` body: the panel rejects a partial one, so everything it
    requires is sent, the server's current allocation and OOM setting kept, the plan's limits applied."""
    limits = {key: desired.limits.get(key) for key in LIMIT_KEYS}
    body: dict[str, Any] = {
        "allocation": current["allocation"],
        **{key: limits[key] for key in ("memory", "swap", "disk", "io", "cpu")},
        "threads": limits["threads"],
        "feature_limits": {key: int(desired.feature_limits.get(key) or 0) for key in FEATURE_KEYS},
    }
    if "oom_disabled" in current:
        body["oom_disabled"] = current["oom_disabled"]
    return body
