"""locks held by the system; full sweeps marked; batch leases of distributed runs

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scanrun", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("full_sweep", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("scanrun", schema=None) as batch_op:
        batch_op.drop_column("full_sweep")
