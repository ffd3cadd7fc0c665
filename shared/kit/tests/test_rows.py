"""``spawnpoint_kit.rows`` against the real PostgreSQL: the rows a repository reads and writes with driver
statements behave as the ORM's did (changed columns written at commit, one object per row, a staged row
inserted before its table is read, nothing left after a rollback)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Column, Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.rows import Table, new_row
from spawnpoint_kit.unit_of_work import SqlUnitOfWork

pytestmark = pytest.mark.component


class GadgetRow(SQLModel, table=True):
    __tablename__ = "kit_test_gadgets"

    id: uuid.UUID = Field(primary_key=True)
    name: str
    count: int = Field(default=0)
    facts: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(sa.dialects.postgresql.JSONB(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_column=Column(sa.DateTime(timezone=True))
    )


GADGETS = Table(GadgetRow, key="id", json_columns=("facts",))
_GET = f"SELECT {GADGETS.select_list} FROM kit_test_gadgets WHERE id = $1"


@pytest.fixture
async def gadgets(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: GadgetRow.__table__.create(sync, checkfirst=True))  # type: ignore[attr-defined]


async def _stored(engine: AsyncEngine, gadget_id: uuid.UUID) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.text("SELECT name, count, facts FROM kit_test_gadgets WHERE id = :id"), {"id": gadget_id}
        )
        row = found.first()
        return None if row is None else {"name": row[0], "count": row[1], "facts": row[2]}


@pytest.mark.usefixtures("gadgets")
async def test_a_staged_row_is_inserted_at_commit_and_its_later_changes_are_written_too(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    uow = SqlUnitOfWork(sessions, Topology())
    gadget = new_row(GadgetRow, id=uuid.uuid4(), name="crate", facts={"colour": "red"})
    async with uow:
        uow.rows.stage(GADGETS, gadget)
        assert await _stored(engine, gadget.id) is None
        await uow.commit()
    assert await _stored(engine, gadget.id) == {"name": "crate", "count": 0, "facts": {"colour": "red"}}


@pytest.mark.usefixtures("gadgets")
async def test_a_staged_row_is_seen_by_a_read_of_its_table_in_the_same_transaction_as_the_same_object(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    uow = SqlUnitOfWork(sessions, Topology())
    gadget = new_row(GadgetRow, id=uuid.uuid4(), name="crate")
    async with uow:
        uow.rows.stage(GADGETS, gadget)
        found = await uow.rows.one(GADGETS, _GET, gadget.id)
        assert found is gadget
        found.count = 3
        again = await uow.rows.one(GADGETS, _GET, gadget.id)
        assert again is gadget and again.count == 3  # the change was written before the second read
        await uow.commit()
    stored = await _stored(engine, gadget.id)
    assert stored is not None and stored["count"] == 3


@pytest.mark.usefixtures("gadgets")
async def test_only_changed_columns_are_written_and_a_rollback_keeps_nothing(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    gadget_id = uuid.uuid4()
    uow = SqlUnitOfWork(sessions, Topology())
    async with uow:
        uow.rows.stage(GADGETS, new_row(GadgetRow, id=gadget_id, name="crate", count=1))
        await uow.commit()

    async with uow:
        row = await uow.rows.one(GADGETS, _GET, gadget_id)
        row.count = 2
        async with engine.begin() as other:  # a concurrent writer of another column, not overwritten
            await other.execute(sa.text("UPDATE kit_test_gadgets SET name = 'box' WHERE id = :id"), {"id": gadget_id})
        await uow.commit()
    assert await _stored(engine, gadget_id) == {"name": "box", "count": 2, "facts": {}}

    async with uow:
        row = await uow.rows.one(GADGETS, _GET, gadget_id)
        row.count = 99
        uow.rows.stage(GADGETS, new_row(GadgetRow, id=uuid.uuid4(), name="never"))
        await uow.rows.flush()
        await uow.rollback()
    assert await _stored(engine, gadget_id) == {"name": "box", "count": 2, "facts": {}}


@pytest.mark.usefixtures("gadgets")
async def test_a_staged_row_whose_key_exists_fails_the_commit_as_the_orm_would(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    gadget_id = uuid.uuid4()
    uow = SqlUnitOfWork(sessions, Topology())
    async with uow:
        uow.rows.stage(GADGETS, new_row(GadgetRow, id=gadget_id, name="first"))
        await uow.commit()
    async with uow:
        uow.rows.stage(GADGETS, new_row(GadgetRow, id=gadget_id, name="second"))
        with pytest.raises(sa.exc.IntegrityError):
            await uow.commit()
