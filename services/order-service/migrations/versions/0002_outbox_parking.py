"""outbox parking (a row that keeps failing on its own is set aside for an operator) and the inbox's age index

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from spawnpoint_kit.migrations import add_outbox_parking_and_inbox_age, drop_outbox_parking_and_inbox_age

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_parking_and_inbox_age()


def downgrade() -> None:
    drop_outbox_parking_and_inbox_age()
