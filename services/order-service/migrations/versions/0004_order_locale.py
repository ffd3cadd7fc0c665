"""orders record the customer's locale and time zone, for what they are told (the notification service)

Orders placed before locales existed read as English in UTC (the defaults stay on the columns: an order
without them is one placed by a client that does not send them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("locale", sa.String(16), nullable=False, server_default="en"))
    op.add_column("orders", sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    op.drop_column("orders", "time_zone")
    op.drop_column("orders", "locale")
