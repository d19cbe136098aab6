"""The first schema: tasks, outcomes (with their outbox mark), the audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_task",
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("episode_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("district", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created_time", sa.String(40), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("due_time", sa.String(40), nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column("offset_min", sa.Integer, nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("contact_msisdn", sa.String(20)),
        sa.Column("bank", sa.String(128)),
        sa.Column("txn_id", sa.String(128)),
        sa.Column("account", sa.String(32)),
        sa.Column("amount_fen", sa.BigInteger),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("ruleset_version", sa.String(128), nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_ms", sa.BigInteger),
    )
    op.create_index("ix_desk_task_episode_id", "desk_task", ["episode_id"])
    op.create_index("ix_desk_task_queue", "desk_task", ["district", "status", "priority", "due_ms"])
    op.create_index("ix_desk_task_bank", "desk_task", ["bank", "status", "priority", "due_ms"])
    op.create_table(
        "desk_outcome",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(128), sa.ForeignKey("desk_task.task_id"), nullable=False,
                  unique=True),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("event_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.Column("published_ms", sa.BigInteger),
    )
    op.create_index("ix_desk_outcome_published_ms", "desk_outcome", ["published_ms"])
    op.create_table(
        "desk_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("role", sa.String(140), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(128)),
        sa.Column("detail", sa.String(500)),
    )
    op.create_index("ix_desk_audit_at_ms", "desk_audit", ["at_ms"])
    op.create_index("ix_desk_audit_task_id", "desk_audit", ["task_id"])


def downgrade() -> None:
    op.drop_table("desk_audit")
    op.drop_table("desk_outcome")
    op.drop_table("desk_task")
