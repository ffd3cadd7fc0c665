"""How many event streams are open, per user and per process, so that nobody can hold them all.

A stream is cheap but not free (a task, a subscription, a socket): without a bound one customer's script,
or a crowd, could open streams until the process runs out. ``take`` refuses past ``per_user`` for one user
(429: the client should poll or close its other tabs) and past ``per_process`` (503: another replica may
have room); the slot is given back once, whichever of the stream's end or the response's end comes first.
"""

from __future__ import annotations

from collections.abc import Callable


class StreamsFull(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class StreamSlots:
    def __init__(self, *, per_user: int, per_process: int) -> None:
        self._per_user = per_user
        self._per_process = per_process
        self._open: dict[str, int] = {}
        self._total = 0

    @property
    def open(self) -> int:
        return self._total

    def take(self, user_id: str) -> Callable[[], None]:
        """A slot for ``user_id`` (``StreamsFull`` if none is left); returns its one-time release."""
        if self._open.get(user_id, 0) >= self._per_user:
            raise StreamsFull(429, f"at most {self._per_user} open event streams per user; close one or poll")
        if self._total >= self._per_process:
            raise StreamsFull(503, "this process holds as many event streams as it may; retry (or poll)")
        self._open[user_id] = self._open.get(user_id, 0) + 1
        self._total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._total -= 1
            left = self._open[user_id] - 1
            if left:
                self._open[user_id] = left
            else:
                del self._open[user_id]

        return release
