"""provisionings: delayed redelivery through the broker (retry count and the expected retry's token)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("provisionings", sa.Column("broker_retries", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("provisionings", sa.Column("retry_token", postgresql.UUID(as_uuid=True), nullable=True))


def downgrade() -> None:
    op.drop_column("provisionings", "retry_token")
    op.drop_column("provisionings", "broker_retries")
