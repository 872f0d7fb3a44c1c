"""Whether a client can be reached, from an index alone.

`ix_client_identity_client_reach` (client, channel, unreachable since) replaces
`ix_client_identity_client_id`: every planner query asks, per client, whether a messenger
chat of theirs still works (`storage.guards.reachable_sql`), and with the channel and the
reachability in the index that question no longer reads a table row. It still serves every
lookup of a client's chats.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_client_identity_client_reach",
        "client_identity",
        ["client_id", "channel", "unreachable_since"],
    )
    op.drop_index("ix_client_identity_client_id", table_name="client_identity")


def downgrade() -> None:
    op.create_index("ix_client_identity_client_id", "client_identity", ["client_id"])
    op.drop_index("ix_client_identity_client_reach", table_name="client_identity")
