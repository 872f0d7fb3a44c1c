"""Client identities in their own table; client.phone_verified; churn_reason.outbox_id.

The per-channel columns of `client` (telegram_id, whatsapp_id, their unreachable and last
inbound times) become rows of `client_identity`, one per chat, so a client's chats can be
linked, proven and freed one by one. Existing ids are copied as verified: they were linked
by the bot itself or entered by staff. Of the phones already stored, only those staff
entered (an import, the console) or WhatsApp proved (the client's WhatsApp number) start
verified: the old code cannot tell a typed number from a shared contact, and a typed one
is only a claim.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPY = """
INSERT INTO client_identity
    (client_id, channel, external_id, verified, last_inbound_at, unreachable_since, created_at)
SELECT id, '{channel}', {external_id}, true, last_inbound_{channel}_at,
       {channel}_unreachable_at, created_at
FROM client WHERE {column} IS NOT NULL
"""

_RESTORE = """
UPDATE client SET
    {column} = (SELECT {external_id} FROM client_identity i
                WHERE i.client_id = client.id AND i.channel = '{channel}' ORDER BY i.id LIMIT 1),
    last_inbound_{channel}_at = (SELECT last_inbound_at FROM client_identity i
                WHERE i.client_id = client.id AND i.channel = '{channel}' ORDER BY i.id LIMIT 1),
    {channel}_unreachable_at = (SELECT unreachable_since FROM client_identity i
                WHERE i.client_id = client.id AND i.channel = '{channel}' ORDER BY i.id LIMIT 1)
"""

_PROVEN_PHONES = """
UPDATE client SET phone_verified = true
WHERE phone IS NOT NULL AND (source IN ('import', 'console') OR EXISTS (
    SELECT 1 FROM client_identity i
    WHERE i.client_id = client.id AND i.channel = 'whatsapp' AND '+' || i.external_id = phone))
"""

_OLD_COLUMNS = (
    "telegram_id",
    "whatsapp_id",
    "telegram_unreachable_at",
    "whatsapp_unreachable_at",
    "last_inbound_telegram_at",
    "last_inbound_whatsapp_at",
)


def upgrade() -> None:
    op.create_table(
        "client_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("last_inbound_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("unreachable_since", storage.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
    )
    op.create_index("ix_client_identity_client_id", "client_identity", ["client_id"])
    telegram_id = "CAST(telegram_id AS VARCHAR(64))"
    op.execute(_COPY.format(channel="telegram", column="telegram_id", external_id=telegram_id))
    op.execute(_COPY.format(channel="whatsapp", column="whatsapp_id", external_id="whatsapp_id"))
    with op.batch_alter_table("client") as batch_op:
        batch_op.add_column(
            sa.Column("phone_verified", sa.Boolean(), server_default="0", nullable=False)
        )
        for column in _OLD_COLUMNS:
            batch_op.drop_column(column)
    op.execute(_PROVEN_PHONES)
    with op.batch_alter_table("churn_reason") as batch_op:
        batch_op.add_column(sa.Column("outbox_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_churn_reason_outbox_id", ["outbox_id"])
        batch_op.create_foreign_key("fk_churn_reason_outbox_id", "outbox", ["outbox_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("churn_reason") as batch_op:
        batch_op.drop_constraint("fk_churn_reason_outbox_id", type_="foreignkey")
        batch_op.drop_constraint("uq_churn_reason_outbox_id", type_="unique")
        batch_op.drop_column("outbox_id")
    with op.batch_alter_table("client") as batch_op:
        batch_op.drop_column("phone_verified")
        batch_op.add_column(sa.Column("telegram_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("whatsapp_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        for column in _OLD_COLUMNS[2:]:
            batch_op.add_column(sa.Column(column, storage.types.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_client_telegram_id", ["telegram_id"])
        batch_op.create_unique_constraint("uq_client_whatsapp_id", ["whatsapp_id"])
    telegram_id = "CAST(external_id AS BIGINT)"
    op.execute(_RESTORE.format(channel="telegram", column="telegram_id", external_id=telegram_id))
    op.execute(_RESTORE.format(channel="whatsapp", column="whatsapp_id", external_id="external_id"))
    op.drop_index("ix_client_identity_client_id", table_name="client_identity")
    op.drop_table("client_identity")
