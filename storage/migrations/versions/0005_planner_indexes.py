"""Indexes for the planner: birthdays, the day's win-backs, caps from the index alone.

- `ix_client_birthday`: today's birthdays are a few index probes (one per birth year),
  not a read of every client.
- `ix_outbox_client_kind_due_status` replaces `ix_outbox_client_kind_due`: with the status
  in the index, the caps and the win-backs since a client's last visit are answered
  without reading the outbox rows.
- `ix_outbox_kind_due`: the first win-backs planned today, counted from the index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_client_birthday", "client", ["birthday"])
    op.create_index(
        "ix_outbox_client_kind_due_status", "outbox", ["client_id", "kind", "due_at", "status"]
    )
    op.drop_index("ix_outbox_client_kind_due", table_name="outbox")
    op.create_index("ix_outbox_kind_due", "outbox", ["kind", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_kind_due", table_name="outbox")
    op.create_index("ix_outbox_client_kind_due", "outbox", ["client_id", "kind", "due_at"])
    op.drop_index("ix_outbox_client_kind_due_status", table_name="outbox")
    op.drop_index("ix_client_birthday", table_name="client")
