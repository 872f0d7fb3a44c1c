"""The loyalty ledger: loyalty_entry.kind and expires_at (and an index by visit), and
visit.discount_source (what the booking's discount came from).

Entries written before this revision were earnings (a negative one, a spend).

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-01 15:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loyalty_entry") as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="earn",
            )
        )
        batch_op.add_column(sa.Column("expires_at", storage.types.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_loyalty_entry_visit_id", ["visit_id"])
    op.execute("UPDATE loyalty_entry SET kind = 'spend' WHERE delta < 0")
    with op.batch_alter_table("visit") as batch_op:
        batch_op.add_column(
            sa.Column(
                "discount_source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("visit") as batch_op:
        batch_op.drop_column("discount_source")
    with op.batch_alter_table("loyalty_entry") as batch_op:
        batch_op.drop_index("ix_loyalty_entry_visit_id")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("kind")
