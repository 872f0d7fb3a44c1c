"""Complaints, the cross-sell at booking: visit.addon_service_id, client.declined_addon_id,
and an index on feedback (status, created_at) for the open complaints.

A visit booked with an add-on ("add a beard trim?") keeps the service chosen first in
`service_id` and the added one in `addon_service_id`; its price and end cover both. A
client who declined an add-on is not offered it at the next booking.

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-01 14:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visit") as batch_op:
        batch_op.add_column(sa.Column("addon_service_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_visit_addon_service_id_service", "service", ["addon_service_id"], ["id"]
        )
    with op.batch_alter_table("client") as batch_op:
        batch_op.add_column(sa.Column("declined_addon_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_client_declined_addon_id_service", "service", ["declined_addon_id"], ["id"]
        )
    op.create_index("ix_feedback_status_created", "feedback", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_status_created", table_name="feedback")
    with op.batch_alter_table("client") as batch_op:
        batch_op.drop_constraint("fk_client_declined_addon_id_service", type_="foreignkey")
        batch_op.drop_column("declined_addon_id")
    with op.batch_alter_table("visit") as batch_op:
        batch_op.drop_constraint("fk_visit_addon_service_id_service", type_="foreignkey")
        batch_op.drop_column("addon_service_id")
