"""key holder: which keys each app process has loaded

Revision ID: 4b7d2e91c0a3
Revises: 5e1f0c7a9b21
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "4b7d2e91c0a3"
down_revision = "5e1f0c7a9b21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_holder",
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("fingerprints", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("sealed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("old_sealed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("report_every", sa.Float(), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )


def downgrade() -> None:
    op.drop_table("key_holder")
