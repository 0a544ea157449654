"""locks held by the system; full sweeps marked; batch leases of distributed runs

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vigie.db.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scanrun", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("full_sweep", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "runbatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", vigie.db.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", vigie.db.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["scanrun.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "number"),
    )
    with op.batch_alter_table("runbatch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runbatch_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runbatch_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runbatch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runbatch_status"))
        batch_op.drop_index(batch_op.f("ix_runbatch_run_id"))
    op.drop_table("runbatch")
    with op.batch_alter_table("scanrun", schema=None) as batch_op:
        batch_op.drop_column("full_sweep")
