"""visit(status, starts_at, client_id, price) in place of visit(status, starts_at).

The owner's digest tallies completed visits by period: each client's revenue over a year,
the visits of each of twelve weeks. With the client and the price in the index those
tallies read the index alone instead of a table row per visit (at 1,000,000 visits the
year's revenue went from 0.8 s to 0.2 s). Every query the old index served starts with
the same two columns, so the new one serves it as well and the old one goes.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 12:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_visit_status_start_client_price",
        "visit",
        ["status", "starts_at", "client_id", "price"],
    )
    op.drop_index("ix_visit_status_start", table_name="visit")


def downgrade() -> None:
    op.create_index("ix_visit_status_start", "visit", ["status", "starts_at"])
    op.drop_index("ix_visit_status_start_client_price", table_name="visit")
