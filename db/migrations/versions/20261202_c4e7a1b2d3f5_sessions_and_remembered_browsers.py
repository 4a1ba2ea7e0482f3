"""session last activity, remembered browsers and their policy

Revision ID: c4e7a1b2d3f5
Revises: 5e1f0c2a9b7d
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "c4e7a1b2d3f5"
down_revision = "5e1f0c2a9b7d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_session") as batch:
        batch.add_column(sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute("UPDATE auth_session SET last_seen_at = created_at")
    with op.batch_alter_table("auth_session") as batch:
        batch.alter_column("last_seen_at", existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
    with op.batch_alter_table("org_policy") as batch:
        batch.add_column(sa.Column("remember_admins", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("remember_agents", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("remember_days", sa.Integer(), nullable=False, server_default="30"))
    op.create_table(
        "remembered_browser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("remembered_browser") as batch:
        batch.create_index(batch.f("ix_remembered_browser_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remembered_browser") as batch:
        batch.drop_index(batch.f("ix_remembered_browser_user_id"))
    op.drop_table("remembered_browser")
    with op.batch_alter_table("org_policy") as batch:
        batch.drop_column("remember_days")
        batch.drop_column("remember_agents")
        batch.drop_column("remember_admins")
    with op.batch_alter_table("auth_session") as batch:
        batch.drop_column("last_seen_at")
