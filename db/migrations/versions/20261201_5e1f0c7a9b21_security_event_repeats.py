"""security_event.repeats: anonymous failures repeated in a window are counted on one row

Revision ID: 5e1f0c7a9b21
Revises: 5b1c0e7a9d42
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5e1f0c7a9b21"
down_revision = "5b1c0e7a9d42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("security_event") as batch:
        batch.add_column(sa.Column("repeats", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("security_event") as batch:
        batch.drop_column("repeats")
