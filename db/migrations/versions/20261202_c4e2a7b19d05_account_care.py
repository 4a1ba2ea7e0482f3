"""account care: backup codes saved, 2FA check-up, indexes for the activity log's pages and chart

Revision ID: c4e2a7b19d05
Revises: c4e7a1b2d3f5
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "c4e2a7b19d05"
down_revision = "c4e7a1b2d3f5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("backup_codes_saved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("mfa_checkup_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index("ix_security_event_kind_at", "security_event", ["kind", "at"])
    op.create_index("ix_security_event_actor_id_id", "security_event", ["actor_id", "id"])
    op.create_index("ix_security_event_target_id_id", "security_event", ["target_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_security_event_target_id_id", table_name="security_event")
    op.drop_index("ix_security_event_actor_id_id", table_name="security_event")
    op.drop_index("ix_security_event_kind_at", table_name="security_event")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("mfa_checkup_at")
        batch.drop_column("backup_codes_saved_at")
