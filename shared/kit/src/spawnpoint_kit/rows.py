"""The rows one transaction reads and writes, with the driver's own statements instead of the ORM's.

Why: every order passes through a handful of row reads and writes in each service (the order locked when
it is paid, the provisioning at each phase), and through the ORM each cost 0.3 to 0.6 ms of CPU here
(cache key, compiled-statement lookup, identity map, flush) where asyncpg's own ``fetch``, with its
prepared-statement cache, costs a fraction of that. The statements run on the unit of work's connection
(``db.driver_connection``), in its transaction, so they commit or roll back with the inbox entry and the
outbox rows exactly as the ORM's did.

The service layer still works on row objects (the SQLModel classes) and only assigns their attributes.
``TransactionRows`` keeps what each row looked like when it was read and, before the unit of work commits,
writes back the columns that changed (``flush``), as the ORM's flush did. A row read twice in one
transaction is one object (the ORM's identity map), refreshed from the second read after its own changes
were written. A row ``stage``d (the ORM's ``session.add``) is inserted at the flush, or before a read of its
table (the ORM's autoflush), and tracked from then on.

``SqlUnitOfWork`` gives every transaction one (``uow.rows``); a repository that uses it reads and writes its
table only through it, never also through the ORM, so that a row is never two objects with two sets of
changes.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlalchemy.orm.attributes import manager_of_class
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from .db import as_sqlalchemy_errors, driver_connection

R = TypeVar("R", bound=SQLModel)
Key = tuple[str, Any]


def columns(table: type[SQLModel]) -> tuple[str, ...]:
    """The table's column names, in the table's order."""
    return tuple(c.name for c in table.__table__.columns)  # type: ignore[attr-defined]


@functools.cache
def _manager(table: type[SQLModel]) -> Any:
    """The table's instrumentation, its mappers configured first (the ORM does that on its first use)."""
    sa.orm.configure_mappers()
    return manager_of_class(table)


def loaded(table: type[R], values: Mapping[str, Any]) -> R:
    """A row object holding ``values`` (every column), built as the ORM builds a row it loaded: changing an
    attribute afterwards goes through the instrumentation as usual."""
    row: R = _manager(table).new_instance()
    row.__dict__.update(values)
    return row


def new_row(table: type[R], **values: Any) -> R:
    """A row not stored yet: ``values``, and every other column at its model default."""
    for name, info in table.model_fields.items():
        if name in values:
            continue
        if info.default_factory is not None:
            values[name] = info.default_factory()  # type: ignore[call-arg]
        elif info.default is PydanticUndefined:
            raise TypeError(f"{table.__name__}.{name} has no default and was not given")
        else:
            values[name] = info.default
    return loaded(table, values)


class Table:
    """What the statements need to know of one table: its name, columns, key and JSONB columns."""

    def __init__(
        self,
        model: type[SQLModel],
        *,
        key: str,
        json_columns: Iterable[str] = (),
        enums: Mapping[str, type[enum.Enum]] | None = None,
    ) -> None:
        self.model = model
        self.name: str = model.__tablename__  # type: ignore[assignment]
        self.columns = columns(model)
        self.key = key
        self.json_columns = frozenset(json_columns)
        self.enums = dict(enums or {})
        self.select_list = ", ".join(self.columns)
        self._updates: dict[tuple[str, ...], str] = {}
        self.plain_insert_sql = self._insert()

    def _insert(self) -> str:
        values = ", ".join(self.placeholder(c, i) for i, c in enumerate(self.columns, start=1))
        return f"INSERT INTO {self.name} ({self.select_list}) VALUES ({values})"  # noqa: S608 - the model's names

    def insert_sql(self, *, returning: str) -> str:
        """``INSERT`` of every column (JSONB ones as text), doing nothing when the key exists."""
        return f"{self.plain_insert_sql} ON CONFLICT ({self.key}) DO NOTHING RETURNING {returning}"

    def insert_arguments(self, row: SQLModel) -> list[Any]:
        """The row's values in ``columns`` order, as the insert statements take them."""
        values = row.__dict__
        return [self.argument(c, values[c]) for c in self.columns]

    def update_sql(self, changed: tuple[str, ...]) -> str:
        """``UPDATE`` of the ``changed`` columns of one row (one statement text per set of columns, so that
        asyncpg prepares each once per connection)."""
        sql = self._updates.get(changed)
        if sql is None:
            sets = ", ".join(f"{c} = {self.placeholder(c, i)}" for i, c in enumerate(changed, start=2))
            sql = self._updates[changed] = f"UPDATE {self.name} SET {sets} WHERE {self.key} = $1"  # noqa: S608
        return sql

    def placeholder(self, column: str, position: int) -> str:
        return f"${position}::text::jsonb" if column in self.json_columns else f"${position}"

    def argument(self, column: str, value: Any) -> Any:
        """A Python value as the statement's parameter (JSONB as its text, an enum as its value)."""
        if column in self.json_columns:
            return None if value is None else json.dumps(value)
        return value.value if isinstance(value, enum.Enum) else value

    def decoded(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A record's values as the row holds them: enums as enums, JSONB decoded (when the connection has
        no codec for it)."""
        values = dict(record)
        for column in self.json_columns:
            value = values.get(column)
            if isinstance(value, str | bytes):
                values[column] = json.loads(value)
        for column, kind in self.enums.items():
            if values.get(column) is not None:
                values[column] = kind(values[column])
        return values


class TransactionRows:
    """The rows the open transaction read or staged, and its connection (see the module docstring)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._connection: asyncpg.Connection | None = None
        self._rows: dict[Key, tuple[Table, SQLModel, dict[str, Any]]] = {}
        self._staged: list[tuple[Table, SQLModel]] = []
        self._inserted: set[Key] = set()
        """Rows this transaction inserted (``insert``): locked by the insert itself, until the end."""

    async def connection(self) -> asyncpg.Connection:
        """The session's driver connection, looked up once per transaction (the look-up costs as much as a
        short statement)."""
        if self._connection is None:
            self._connection = await driver_connection(self._session)
        return self._connection

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        connection = await self.connection()
        with as_sqlalchemy_errors(sql):
            return list(await connection.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        connection = await self.connection()
        with as_sqlalchemy_errors(sql):
            return await connection.fetchrow(sql, *args)

    async def one(self, table: Table, sql: str, key: Any) -> Any:
        """The row ``sql`` finds by its key (None if there is none), tracked: a read of one row by its key."""
        await self.before_read(table, key)
        record = await self.fetchrow(sql, key)
        return None if record is None else self.track(table, table.decoded(record))

    async def get(self, table: Table, sql: str, key: Any) -> Any:
        """The row as this transaction holds it if it read it already, else ``one`` (the ORM's
        ``session.get``)."""
        known = self.tracked(table, key)
        return known if known is not None else await self.one(table, sql, key)

    async def lock(self, table: Table, sql: str, key: Any) -> Any:
        """``one`` with a locking ``sql`` (``FOR UPDATE``: read afresh), except for a row this transaction
        inserted, which no one else can have changed: that one is handed back as it is, without a statement."""
        if (table.name, key) in self._inserted:
            return self.tracked(table, key)
        return await self.one(table, sql, key)

    async def first(self, table: Table, sql: str, *args: Any) -> Any:
        """The first row ``sql`` finds (any query of ``table``), tracked; None if there is none."""
        await self.before_read(table)
        record = await self.fetchrow(sql, *args)
        return None if record is None else self.track(table, table.decoded(record))

    async def many(self, table: Table, sql: str, *args: Any) -> list[Any]:
        """Every row ``sql`` finds (any query of ``table``), tracked, in its order."""
        await self.before_read(table)
        return [self.track(table, table.decoded(r)) for r in await self.fetch(sql, *args)]

    async def insert(self, table: Table, sql: str, row: SQLModel) -> bool:
        """Insert ``row`` now with ``sql`` (``Table.insert_sql``: nothing when its key exists); True when it was
        new, and from then on it is tracked and ``lock`` needs no statement for it."""
        key = row.__dict__[table.key]
        await self.before_read(table, key)
        if await self.fetchrow(sql, *table.insert_arguments(row)) is None:
            return False
        self.adopt(table, row)
        self._inserted.add((table.name, key))
        return True

    async def before_read(self, table: Table, key: Any = None) -> None:
        """Write what is staged for ``table`` and what changed in the row about to be read again (any row of
        ``table`` when ``key`` is None), so that the read sees it, as the ORM's autoflush does."""
        if any(staged is table for staged, _ in self._staged):
            await self._insert_staged()
        for (name, tracked_key), (tracked_table, row, seen) in list(self._rows.items()):
            if name == table.name and (key is None or tracked_key == key):
                await self._write(tracked_table, row, seen)

    def track(self, table: Table, values: Mapping[str, Any]) -> Any:
        """The row object for ``values`` (every column, as ``Table.decoded`` gives them); the same object
        when the row was read before in this transaction, then holding the new values."""
        key: Key = (table.name, values[table.key])
        known = self._rows.get(key)
        if known is not None:
            row = known[1]
            row.__dict__.update(values)
        else:
            row = loaded(table.model, values)
        self._rows[key] = (table, row, {c: row.__dict__[c] for c in table.columns})
        return row

    def tracked(self, table: Table, key: Any) -> Any:
        """The row of ``table`` with ``key`` if this transaction read or inserted it (its copy wins: it may
        have changes not written yet), else None: the ORM's identity map."""
        known = self._rows.get((table.name, key))
        if known is None:
            return None
        return known[1]

    def adopt(self, table: Table, row: R) -> R:
        """``row`` as this transaction just inserted it: from now on its changes are written back."""
        self._rows[(table.name, row.__dict__[table.key])] = (table, row, {c: row.__dict__[c] for c in table.columns})
        return row

    def stage(self, table: Table, row: SQLModel) -> None:
        """Insert ``row`` at the next flush (or before the next read of its table), then track it; a key that
        exists already fails there, as the ORM's flush would (``IntegrityError``)."""
        self._staged.append((table, row))

    async def flush(self) -> None:
        """Insert what is staged, then write back every changed row (its changed columns only)."""
        await self._insert_staged()
        for table, row, seen in list(self._rows.values()):
            await self._write(table, row, seen)

    def clear(self) -> None:
        """The transaction ended: forget its rows and its connection (the pool has it back)."""
        self._rows.clear()
        self._staged.clear()
        self._inserted.clear()
        self._connection = None

    async def _insert_staged(self) -> None:
        staged, self._staged = self._staged, []
        connection = await self.connection()
        for table, row in staged:
            with as_sqlalchemy_errors(table.plain_insert_sql):
                await connection.execute(table.plain_insert_sql, *table.insert_arguments(row))
            self.adopt(table, row)

    async def _write(self, table: Table, row: SQLModel, seen: dict[str, Any]) -> None:
        current = row.__dict__
        changed = tuple(c for c in table.columns if c in current and current[c] != seen[c])
        if not changed:
            return
        sql = table.update_sql(changed)
        args: Sequence[Any] = [current[table.key], *(table.argument(c, current[c]) for c in changed)]
        connection = await self.connection()
        with as_sqlalchemy_errors(sql):
            await connection.execute(sql, *args)
        for c in changed:
            seen[c] = current[c]


__all__ = ["Key", "Table", "TransactionRows", "columns", "loaded", "new_row"]
