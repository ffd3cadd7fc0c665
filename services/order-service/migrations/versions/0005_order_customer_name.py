"""orders record the customer's display name (the token's ``name`` claim), what e-mails greet them by

Nullable and without a default: the claim is optional, and orders placed before names have none (their
e-mails keep the greeting without a name).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("customer_name", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "customer_name")
