"""Initial schema: every table, index and unique constraint of storage/tables.py.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:35:54.669182

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: create every table."""
    op.create_table(
        "processed_message",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("received_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "message_id"),
    )
    op.create_table(
        "service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("price", storage.types.Money(), nullable=False),
        sa.Column("return_interval_days", sa.Integer(), nullable=False),
        sa.Column("care_tip", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("care_tip_en", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
        sa.UniqueConstraint("telegram_id"),
    )
    op.create_table(
        "client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("telegram_id", sa.BigInteger(), nullable=True),
        sa.Column("whatsapp_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("preferred_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("referral_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("referred_by_id", sa.Integer(), nullable=True),
        sa.Column("staff_notes", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("favourite_master_id", sa.Integer(), nullable=True),
        sa.Column("preferred_time_of_day", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("preference_note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("consent_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("marketing_opt_in_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("marketing_opt_out_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("unreachable_since", storage.types.UTCDateTime(), nullable=True),
        sa.Column("telegram_unreachable_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("whatsapp_unreachable_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_inbound_telegram_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_inbound_whatsapp_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("completed_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_visit_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("last_service_id", sa.Integer(), nullable=True),
        sa.Column("last_master_id", sa.Integer(), nullable=True),
        sa.Column("rhythm_days", sa.Integer(), nullable=True),
        sa.Column("next_visit_due", sa.Date(), nullable=True),
        sa.Column("nudge_snoozed_until", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_service_id"],
            ["service.id"],
        ),
        sa.ForeignKeyConstraint(
            ["last_master_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["favourite_master_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referred_by_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone"),
        sa.UniqueConstraint("referral_code"),
        sa.UniqueConstraint("telegram_id"),
        sa.UniqueConstraint("whatsapp_id"),
    )
    op.create_index("ix_client_next_visit_due", "client", ["next_visit_due"])
    op.create_table(
        "staff_service",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["service.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("staff_id", "service_id"),
    )
    op.create_table(
        "time_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_time_off_staff_id", "time_off", ["staff_id"])
    op.create_table(
        "working_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_working_hours_staff_id", "working_hours", ["staff_id"])
    op.create_table(
        "churn_reason",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_churn_reason_client_id", "churn_reason", ["client_id"])
    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("flow", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
    )
    op.create_index("ix_conversation_client_id", "conversation", ["client_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("due_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("claimed_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("sent_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("campaign", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_outbox_client_kind_due", "outbox", ["client_id", "kind", "due_at"])
    op.create_index("ix_outbox_kind_status_sent", "outbox", ["kind", "status", "sent_at"])
    op.create_index("ix_outbox_status_due", "outbox", ["status", "due_at"])
    op.create_table(
        "visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("ends_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("price", storage.types.Money(), nullable=False),
        sa.Column("paid_amount", storage.types.Money(), nullable=True),
        sa.Column("discount", storage.types.Money(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("rescheduled_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("completed_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["master_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["service.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_client_status_start", "visit", ["client_id", "status", "starts_at"])
    op.create_index("ix_visit_master_start", "visit", ["master_id", "starts_at"])
    op.create_index("ix_visit_status_start", "visit", ["status", "starts_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("resolution", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("visit_id"),
    )
    op.create_table(
        "loyalty_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["client.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loyalty_entry_client_id", "loyalty_entry", ["client_id"])


def downgrade() -> None:
    """Downgrade schema: drop every table (their indexes go with them)."""
    op.drop_table("loyalty_entry")
    op.drop_table("feedback")
    op.drop_table("visit")
    op.drop_table("outbox")
    op.drop_table("conversation")
    op.drop_table("churn_reason")
    op.drop_table("working_hours")
    op.drop_table("time_off")
    op.drop_table("staff_service")
    op.drop_table("client")
    op.drop_table("staff")
    op.drop_table("service")
    op.drop_table("processed_message")
