"""Explicit state machines: a transition table per aggregate, and one way to take a step.

Each service's ``domain/`` declares its table (order, payment, refund, provisioning) as a
``StateMachine``; every change of a status goes through ``transition`` so that a move the table does not
allow is a ``InvalidTransition`` (a domain error a handler can catch, log or turn into a 409), never an
``assert`` that vanishes under ``python -O`` and never a silent write.

Message-driven code often wants a guarded no-op instead (a redelivered ``OrderPaid`` must change nothing):
it asks ``allows`` (or ``next``) first. Both read the same table, so what is allowed is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T", bound=StrEnum)


class InvalidTransition(Exception):
    """The table has no move for this state and trigger."""

    def __init__(self, machine: str, state: StrEnum, trigger: StrEnum) -> None:
        super().__init__(f"{machine}: {state.value!r} does not allow {trigger.value!r}")
        self.machine = machine
        self.state = state
        self.trigger = trigger


class Stateful(Protocol[S]):
    """A row (or any object) with a ``status`` the machine moves."""

    status: S


class StateMachine(Generic[S, T]):
    """A named transition table: ``(state, trigger) -> next state``; pairs not listed are not allowed."""

    def __init__(self, name: str, transitions: Mapping[tuple[S, T], S]) -> None:
        self.name = name
        self.transitions: Mapping[tuple[S, T], S] = dict(transitions)

    def next(self, current: S, trigger: T) -> S | None:
        """The state after ``trigger``, or None when the table does not allow it."""
        return self.transitions.get((current, trigger))

    def allows(self, current: S, trigger: T) -> bool:
        return (current, trigger) in self.transitions

    def step(self, current: S, trigger: T) -> S:
        """The state after ``trigger``; ``InvalidTransition`` when the table does not allow it."""
        target = self.transitions.get((current, trigger))
        if target is None:
            raise InvalidTransition(self.name, current, trigger)
        return target

    def transition(self, row: Stateful[S], trigger: T, *, at: datetime | None = None) -> S:
        """Move ``row.status`` along the table and return the new state (``InvalidTransition`` if not allowed).

        A row with an ``updated_at`` (every table of ours has one) is stamped with ``at`` (now by default):
        a status change and its time are one step, written once."""
        row.status = self.step(row.status, trigger)
        if hasattr(row, "updated_at"):
            setattr(row, "updated_at", at or datetime.now(UTC))  # noqa: B010 (only rows that have one)
        return row.status

    def triggers_from(self, current: S) -> Iterable[T]:
        """The triggers ``current`` allows (for documentation and tests)."""
        return [trigger for (state, trigger) in self.transitions if state == current]
