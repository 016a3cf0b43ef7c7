"""community notices: notices, notice_runs, notice_prefs, staff_communities, outbox.notice_run_id

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=True),
        sa.Column("photo_ref", S(length=200), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("audience", S(length=20), nullable=False),
        sa.Column("topic", S(length=20), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("send_at", T(), nullable=False),
        sa.Column("weekly", sa.Boolean(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"]),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_author_user_id"), ["author_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_status"), ["status"], unique=False)

    op.create_table(
        "notice_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("planned_at", T(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("muted", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("deferred", sa.Integer(), nullable=False),
        sa.Column("reported", sa.Integer(), nullable=False),
        sa.Column("started_at", T(), nullable=False),
        sa.Column("finished_at", T(), nullable=True),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notice_id", "planned_at"),
    )
    with op.batch_alter_table("notice_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_runs_notice_id"), ["notice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_runs_status"), ["status"], unique=False)

    op.create_table(
        "notice_prefs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("muted", S(length=200), nullable=False),
        sa.Column("quiet_on", sa.Boolean(), nullable=False),
        sa.Column("quiet_start", S(length=5), nullable=False),
        sa.Column("quiet_end", S(length=5), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "staff_communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "community_id"),
    )
    with op.batch_alter_table("staff_communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_communities_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_run_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_notice_run_id"), ["notice_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_notice_run_id"))
        batch_op.drop_column("notice_run_id")
    with op.batch_alter_table("staff_communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_communities_user_id"))
    op.drop_table("staff_communities")
    op.drop_table("notice_prefs")
    with op.batch_alter_table("notice_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_runs_status"))
        batch_op.drop_index(batch_op.f("ix_notice_runs_notice_id"))
    op.drop_table("notice_runs")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_status"))
        batch_op.drop_index(batch_op.f("ix_notices_community_id"))
        batch_op.drop_index(batch_op.f("ix_notices_author_user_id"))
    op.drop_table("notices")
