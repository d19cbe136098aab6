"""The work itself: claims that lapse, hand-over, call attempts, the registry's persons, shifts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("desk_task") as t:
        t.add_column(sa.Column("claim_until_ms", sa.BigInteger))
        t.add_column(sa.Column("released_by", sa.String(64)))
        t.add_column(sa.Column("retry_ms", sa.BigInteger))
        t.add_column(sa.Column("updated_ms", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_desk_task_updated_ms", "desk_task", ["updated_ms"])
    op.create_table(
        "desk_attempt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(128), sa.ForeignKey("desk_task.task_id"), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("retry_ms", sa.BigInteger),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_desk_attempt_task_id", "desk_attempt", ["task_id"])
    op.create_table(
        "desk_person",
        sa.Column("person_id", sa.String(128), primary_key=True),
        sa.Column("event_ms", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("birth_year", sa.Integer),
        sa.Column("district", sa.String(128)),
        sa.Column("msisdns", sa.JSON, nullable=False),
    )
    op.create_table(
        "desk_shift",
        sa.Column("user", sa.String(64), primary_key=True),
        sa.Column("on_shift", sa.Boolean, nullable=False),
        sa.Column("since_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("desk_shift")
    op.drop_table("desk_person")
    op.drop_table("desk_attempt")
    op.drop_index("ix_desk_task_updated_ms", "desk_task")
    with op.batch_alter_table("desk_task") as t:
        for col in ("updated_ms", "retry_ms", "released_by", "claim_until_ms"):
            t.drop_column(col)
