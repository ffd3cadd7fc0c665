"""The unit of work: one transaction, the inbox claim, the repositories and the messages it decided.

Every handler in every service runs in one, whether it handles a message from a queue, a stored Stripe
event, a background job's step or an HTTP request that changes state:

```
async with uow:                        # opens the transaction (a session, or memory in tests)
    if not await uow.claim(consumer, event_id):
        return                         # handled before: a redelivery or a duplicate
    payment = await uow.payments.lock(order_id)
    ...                                # change rows through the repositories
    uow.publish(OrderPaid(...))        # collected, not yet written
    await uow.commit()                 # outbox rows + inbox row + effects: one commit
```

Nothing is published by a handler. ``publish``, ``send`` and ``dead_letter`` only collect; ``commit``
writes them to the outbox in the same transaction as the effects and the inbox row, and the relay
publishes them afterwards. Leaving the block without ``commit`` (an exception, a duplicate) rolls
everything back: effect, inbox row and outbox rows together. ``after_commit`` callbacks run once the
commit succeeded (best effort: calls to the outside world that must not hold the transaction open).

``SqlUnitOfWork`` is the real one (PostgreSQL through SQLModel); each service subclasses it to expose
its repositories. ``FakeUnitOfWork`` keeps everything in memory so that a service's handlers can be
tested without a database or a broker, as in cosmicpython's ``FakeUnitOfWork``. A unit of work may be
entered again after it was left: each ``async with`` is a new transaction (the provisioner talks to the
panel between two of them).

``async with uow.reading():`` is for a request that only reads (``GET /orders/{id}``): no transaction is
opened, each statement runs on its own (PostgreSQL's autocommit), so a one-row read costs one round trip
instead of three (``BEGIN``, the ``SELECT``, ``ROLLBACK``). A read-only unit of work refuses to claim,
publish, send or commit: writing without a transaction is never what a caller meant.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event

from .db import reader
from .logs import get_logger
from .messaging.delivery import Delivery
from .messaging.messages import QueueMessage, dead_letter_copy
from .messaging.topology import Topology
from .rows import TransactionRows

log = get_logger(__name__)


@dataclass(frozen=True)
class Claim:
    """One inbox key to claim (``UnitOfWork.claim_many``), with what the inbox row records of it."""

    key: str
    event_type: str | None = None
    order_id: uuid.UUID | None = None


AfterCommit = Callable[[], Awaitable[None]]
E = TypeVar("E", bound=Event)


class UnitOfWork(abc.ABC):
    """One transaction's worth of work (see the module docstring)."""

    delivery: Delivery | None = None
    """The queue message this unit of work handles, if any: what ``dead_letter`` copies by default."""

    def __init__(self) -> None:
        self.published: list[tuple[Event, dict[str, Any]]] = []
        """Events collected in the open transaction, with their extra headers."""
        self.sent: list[QueueMessage] = []
        """Queue messages (delayed retries, dead-letter copies) collected in the open transaction."""
        self._after_commit: list[AfterCommit] = []
        self._open = False
        self._committed = False
        self._read_only = False

    def reading(self) -> Self:
        """The next ``async with`` reads without a transaction (see the module docstring)."""
        if self._open:
            raise RuntimeError("this unit of work is already open")
        self._read_only = True
        return self

    @property
    def read_only(self) -> bool:
        return self._read_only

    async def __aenter__(self) -> Self:
        if self._open:
            raise RuntimeError("this unit of work is already open")
        self.published, self.sent, self._after_commit = [], [], []
        self._committed = False
        await self._begin()
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        try:
            if not self._committed:
                await self._abandon()
        finally:
            self._read_only = False
            await self._end()

    # what a handler does ---------------------------------------------------------------------------

    async def claim(
        self, consumer: str, key: str, *, event_type: str | None = None, order_id: uuid.UUID | None = None
    ) -> bool:
        """Record in this transaction that ``consumer`` handles ``key``; False if it was handled before."""
        self._require_open()
        return await self._claim(consumer, key, event_type=event_type, order_id=order_id)

    async def claim_many(self, consumer: str, claims: Sequence[Claim]) -> list[bool]:
        """``claim`` for several keys at once (a batch of deliveries, ``messaging.group_commit``): for each,
        in order, True if it is the first time ``consumer`` handles it. A key repeated in ``claims`` is
        first only where it first appears."""
        self._require_open()
        return await self._claim_many(consumer, claims)

    def publish(self, event: Event, *, headers: dict[str, Any] | None = None) -> None:
        """Announce ``event`` if (and only if) this transaction commits."""
        self._require_open()
        self.published.append((event, dict(headers or {})))

    def send(self, message: QueueMessage) -> None:
        """Put ``message`` on its queue if this transaction commits (a delayed retry, a dead-letter copy)."""
        self._require_open()
        self.sent.append(message)

    def dead_letter(
        self,
        reason: str,
        detail: str,
        *,
        extra_headers: dict[str, Any] | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        """Copy the message being handled into its queue's ``.dlq`` with the reason, on commit."""
        message = delivery or self.delivery
        if message is None:
            raise RuntimeError("dead_letter needs the delivery this unit of work handles")
        self.send(dead_letter_copy(message, reason=reason, detail=detail, extra_headers=extra_headers))

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once this transaction has committed (never if it rolls back)."""
        self._require_open()
        self._after_commit.append(callback)

    async def commit(self) -> None:
        """Stage what was collected and commit it together with the effects; then run the callbacks."""
        self._require_open()
        await self._commit()
        self._committed = True
        for callback in self._after_commit:
            try:
                await callback()
            except Exception as exc:
                log.warning("after-commit step failed", step=getattr(callback, "__qualname__", ""), error=repr(exc))

    async def rollback(self) -> None:
        self._require_open(writes=False)
        self.published, self.sent, self._after_commit = [], [], []
        await self._rollback()

    def _require_open(self, *, writes: bool = True) -> None:
        if not self._open:
            raise RuntimeError("use the unit of work inside 'async with uow:'")
        if writes and self._read_only:
            raise RuntimeError("this unit of work only reads (uow.reading()): it cannot claim, publish or commit")

    # what an implementation provides --------------------------------------------------------------

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _claim(self, consumer: str, key: str, *, event_type: str | None, order_id: uuid.UUID | None) -> bool: ...

    @abc.abstractmethod
    async def _commit(self) -> None: ...

    async def _claim_many(self, consumer: str, claims: Sequence[Claim]) -> list[bool]:
        """One claim after the other; the SQL unit of work does them in one statement."""
        return [await self._claim(consumer, c.key, event_type=c.event_type, order_id=c.order_id) for c in claims]

    @abc.abstractmethod
    async def _rollback(self) -> None: ...

    @abc.abstractmethod
    async def _end(self) -> None:
        """Release what ``_begin`` opened (after commit or rollback)."""

    async def _abandon(self) -> None:
        """Undo an uncommitted transaction when the block is left (by default, a rollback)."""
        await self._rollback()


class SqlUnitOfWork(UnitOfWork):
    """The real unit of work: one SQLModel session, its inbox row and its outbox rows in one transaction.

    Subclasses expose their repositories by overriding ``_repositories(session)``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], topology: Topology) -> None:
        super().__init__()
        self._sessions = sessions
        self.topology = topology
        self._session: AsyncSession | None = None
        self._rows: TransactionRows | None = None

    @property
    def session(self) -> AsyncSession:
        """The open transaction's session, for repositories (handlers use repositories, not this)."""
        if self._session is None:
            raise RuntimeError("use the unit of work inside 'async with uow:'")
        return self._session

    @property
    def rows(self) -> TransactionRows:
        """The open transaction's rows read and written with driver statements (``rows.py``), for
        repositories that do not go through the ORM; written back at commit, before the outbox rows."""
        if self._rows is None:
            raise RuntimeError("use the unit of work inside 'async with uow:'")
        return self._rows

    def _repositories(self, session: AsyncSession) -> None:
        """Bind the service's repositories to the new session and ``self.rows`` (override in a service's unit
        of work)."""

    async def _begin(self) -> None:
        if self.read_only:
            self._session = self._sessions(bind=reader(self._sessions.kw["bind"]))
        else:
            self._session = self._sessions()
        self._rows = TransactionRows(self._session)
        self._repositories(self._session)

    async def _claim(self, consumer: str, key: str, *, event_type: str | None, order_id: uuid.UUID | None) -> bool:
        from .messaging import inbox

        return await inbox.claim(self.session, consumer, key, event_type=event_type, order_id=order_id)

    async def _claim_many(self, consumer: str, claims: Sequence[Claim]) -> list[bool]:
        from .messaging import inbox

        first = await inbox.claim_many(self.session, consumer, claims)
        seen: set[str] = set()
        answers = []
        for c in claims:
            answers.append(c.key in first and c.key not in seen)
            seen.add(c.key)
        return answers

    async def _commit(self) -> None:
        from .messaging.outbox import event_row, message_row, stage_rows

        rows = [event_row(event, self.topology, headers=headers) for event, headers in self.published]
        rows += [
            message_row(
                queue=message.queue,
                body=message.body,
                message_id=message.message_id,
                message_type=message.message_type,
                headers=message.headers,
                correlation_id=message.correlation_id,
                order_id=message.order_id,
                delay=message.delay,
            )
            for message in self.sent
        ]
        await self.rows.flush()
        await stage_rows(self.session, rows)
        await self.session.commit()
        self.rows.clear()

    async def _rollback(self) -> None:
        if self._rows is not None:
            self._rows.clear()
        if self._session is not None:
            await self._session.rollback()

    async def _abandon(self) -> None:
        """Leaving without commit: ``_end`` closes the session, which discards the transaction without
        expiring the rows read in it (a rollback would expire them, and a use case that returns a row it
        only read, such as a replayed order, would find it unreadable)."""

    async def _end(self) -> None:
        if self._rows is not None:
            self._rows.clear()
            self._rows = None
        if self._session is not None:
            await self._session.close()
            self._session = None


class FakeUnitOfWork(UnitOfWork):
    """An in-memory unit of work for handler tests: no database, no broker.

    It remembers every inbox key it was asked to claim and everything committed, so a test asserts what
    a handler decided (``events`` of a type, ``messages`` for a queue, ``commits``). Repositories are the
    service's own in-memory fakes, set as attributes by a subclass or the test."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: set[tuple[str, str]] = set()
        self.committed_events: list[Event] = []
        self.committed_messages: list[QueueMessage] = []
        self.commits = 0
        self.rollbacks = 0
        self._claimed_here: set[tuple[str, str]] = set()

    async def _begin(self) -> None:
        self._claimed_here = set()

    async def _claim(self, consumer: str, key: str, *, event_type: str | None, order_id: uuid.UUID | None) -> bool:
        entry = (consumer, key)
        if entry in self.inbox or entry in self._claimed_here:
            return False
        self._claimed_here.add(entry)
        return True

    async def _commit(self) -> None:
        self.inbox |= self._claimed_here
        self.committed_events.extend(event for event, _ in self.published)
        self.committed_messages.extend(self.sent)
        self.commits += 1

    async def _rollback(self) -> None:
        self._claimed_here = set()
        self.rollbacks += 1

    async def _end(self) -> None:
        self._claimed_here = set()

    def events(self, kind: type[E]) -> list[E]:
        """The committed events of type ``kind`` (``Event`` for all of them)."""
        return [e for e in self.committed_events if isinstance(e, kind)]

    def messages(self, queue: str | None = None) -> list[QueueMessage]:
        """The committed queue messages, for one queue or all."""
        return [m for m in self.committed_messages if queue is None or m.queue == queue]


def count_after_commit(uow: UnitOfWork, count: Callable[[], None]) -> None:
    """Count an outcome (a metric's ``inc``) once ``uow`` has committed: a rolled-back one counts nothing."""

    async def counted() -> None:
        count()

    uow.after_commit(counted)
