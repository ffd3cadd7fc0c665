"""contacts keep the customer's display name from the order's snapshot, what e-mails greet them by

Nullable: the token's ``name`` claim is optional and contacts from before names have none (their e-mails
keep the greeting without a name).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("customer_name", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("contacts", "customer_name")
