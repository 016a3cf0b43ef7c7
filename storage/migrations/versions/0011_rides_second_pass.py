"""rides, second pass: community English name and phone, driver-group invite link,
the moment a driver arrived at the pickup point

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN: a batch copy of communities would trip the foreign keys on SQLite.
    op.add_column(
        "communities",
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=""),
    )
    op.add_column(
        "communities",
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False, server_default=""),
    )
    op.add_column(
        "driver_groups",
        sa.Column(
            "invite_link", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default=""
        ),
    )
    op.add_column("rides", sa.Column("arrived_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("rides", "arrived_at")
    op.drop_column("driver_groups", "invite_link")
    op.drop_column("communities", "phone")
    op.drop_column("communities", "name_en")
