"""Every table of docs/architecture.md ("Data"). Timestamps are aware UTC and never
default to the wall clock; money is Decimal."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import Money, UTCDateTime


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _required_ts() -> Any:
    # No default: the wall clock belongs to the composition root, so whoever writes the row
    # says when (a simulated clock, an import's "now", a turn's received_at).
    return Field(sa_type=UTCDateTime)


def _money(default: Decimal | None = None) -> Any:
    return Field(default=default, sa_type=Money, nullable=default is None)


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    master = "master"


class VisitStatus(StrEnum):
    booked = "booked"
    confirmed = "confirmed"
    completed = "completed"
    cancelled = "cancelled"
    no_show = "no_show"


ACTIVE_VISIT = (VisitStatus.booked, VisitStatus.confirmed)


class Channel(StrEnum):
    telegram = "telegram"
    whatsapp = "whatsapp"
    console = "console"


class Client(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=20, unique=True)
    # A channel proved the number (Telegram's own contact, the WhatsApp sender) or staff
    # entered it; a typed number is only a claim and never links anything.
    phone_verified: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    preferred_channel: str | None = None
    locale: str = "ru"
    birthday: date | None = Field(default=None, index=True)
    source: str = "telegram"
    referral_code: str | None = Field(default=None, max_length=16, unique=True)
    referred_by_id: int | None = Field(default=None, foreign_key="client.id")
    staff_notes: str = ""
    favourite_master_id: int | None = Field(default=None, foreign_key="staff.id")
    preferred_time_of_day: str | None = None  # morning / afternoon / evening
    preference_note: str = ""
    consent_at: datetime | None = _ts()
    consent_text: str = Field(default="", sa_column_kwargs={"server_default": ""})  # as shown
    marketing_opt_in_at: datetime | None = _ts()
    marketing_opt_out_at: datetime | None = _ts()
    # Every messenger identity of the client is unreachable (see ClientIdentity).
    unreachable_since: datetime | None = _ts()
    holdout: bool = False
    created_at: datetime = _required_ts()
    deleted_at: datetime | None = _ts()
    # Kept up to date from the client's completed visits (storage/stats.py), so the planner
    # finds who is due for a nudge with one indexed query instead of reading every visit.
    completed_visits: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The first completed visit ever: the digest counts new clients by it.
    first_visit_at: datetime | None = _ts(index=True)
    last_visit_at: datetime | None = _ts()
    last_service_id: int | None = Field(default=None, foreign_key="service.id")
    last_master_id: int | None = Field(default=None, foreign_key="staff.id")
    rhythm_days: int | None = None
    next_visit_due: date | None = Field(default=None, index=True)
    nudge_snoozed_until: date | None = None  # "not now" on a return nudge
    # The add-on service the client said "no, thanks" to when booking: the next booking does
    # not offer it again (never twice in a row), the one after may.
    declined_addon_id: int | None = Field(default=None, foreign_key="service.id")

    @property
    def marketing_allowed(self) -> bool:
        from storage.guards import marketing_allowed  # the rule's one home, beside its SQL

        return marketing_allowed(self)


class ClientIdentity(SQLModel, table=True):
    """One chat of a client on one messenger: a Telegram user id, a WhatsApp number, a
    console user. A chat belongs to one client; a client may have several."""

    __tablename__ = "client_identity"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        # A client's chats, and whether one still works, from the index alone.
        Index("ix_client_identity_client_reach", "client_id", "channel", "unreachable_since"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    # The chat itself wrote to us; an imported Telegram id is not verified until then.
    verified: bool = False
    last_inbound_at: datetime | None = _ts()  # WhatsApp's 24-hour window needs it
    unreachable_since: datetime | None = _ts()  # blocked the bot, number gone…
    created_at: datetime = _required_ts()


class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=24, unique=True)
    name: str = Field(max_length=60)
    telegram_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    role: str = Role.master
    active: bool = True
    # "config": a [[masters]] entry of business.toml; "invite": joined through /invite
    # (kept when business.toml does not list them).
    source: str = Field(
        default="config", max_length=10, sa_column_kwargs={"server_default": "config"}
    )


class StaffInvite(SQLModel, table=True):
    """A one-time link that makes whoever opens it a member of staff (/invite)."""

    __tablename__ = "staff_invite"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    role: str = Role.master
    staff_id: int | None = Field(default=None, foreign_key="staff.id")  # binds this master
    created_by: int = Field(foreign_key="staff.id")
    created_at: datetime = _required_ts()
    expires_at: datetime = _required_ts()
    used_at: datetime | None = _ts()
    used_by: int | None = Field(default=None, sa_type=BigInteger)  # the Telegram id


class Service(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=24, unique=True)
    name: str = Field(max_length=60)
    name_en: str = ""
    duration_minutes: int
    price: Decimal = _money(Decimal("0"))
    return_interval_days: int = 30
    care_tip: str = ""
    care_tip_en: str = ""
    active: bool = True


class StaffService(SQLModel, table=True):
    __tablename__ = "staff_service"

    staff_id: int = Field(foreign_key="staff.id", primary_key=True)
    service_id: int = Field(foreign_key="service.id", primary_key=True)


class WorkingHoursRow(SQLModel, table=True):
    __tablename__ = "working_hours"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    weekday: int  # 0 = Monday, local
    opens: time
    closes: time


class TimeOff(SQLModel, table=True):
    __tablename__ = "time_off"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    reason: str = ""


class Visit(SQLModel, table=True):
    __table_args__ = (
        # A master's visits in a period; the end and the status ride along, so the busy
        # times every day list and time list reads (storage.queries.busy_intervals) come
        # from the index alone.
        Index("ix_visit_master_busy", "master_id", "starts_at", "ends_at", "status"),
        Index("ix_visit_client_status_start", "client_id", "status", "starts_at"),
        # Visits by status in a period; the client and the price ride along, so the
        # digest's tallies (revenue per client, visits per week) never read a table row.
        Index("ix_visit_status_start_client_price", "status", "starts_at", "client_id", "price"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    master_id: int = Field(foreign_key="staff.id")
    service_id: int = Field(foreign_key="service.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: str = VisitStatus.booked
    price: Decimal = _money(Decimal("0"))
    paid_amount: Decimal | None = _money()
    # `price` is what the client pays; `discount` was taken off the list price at booking,
    # for the reason in `discount_source` ("winback:<outbox id>", "birthday:<outbox id>",
    # "reward", "points"; docs/loyalty.md).
    discount: Decimal | None = _money()
    discount_source: str | None = Field(default=None, max_length=32)
    source: str = "telegram"
    created_at: datetime = _required_ts()
    confirmed_at: datetime | None = _ts()
    rescheduled_at: datetime | None = _ts()
    cancelled_at: datetime | None = _ts()
    cancel_reason: str | None = None
    completed_at: datetime | None = _ts()
    comment: str = ""
    # A service added at booking (the cross-sell "add a beard trim?"): the visit lasts both
    # services and costs both; `service_id` stays the one the client chose first.
    addon_service_id: int | None = Field(default=None, foreign_key="service.id")


class FeedbackStatus(StrEnum):
    ok = "ok"  # a rating of 4 or 5
    open = "open"  # a complaint (3 or less) nobody has resolved yet
    resolved = "resolved"


class Feedback(SQLModel, table=True):
    # Open complaints of the last days: the planner's repeated alerts, /complaints.
    __table_args__ = (Index("ix_feedback_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id", unique=True)
    rating: int
    comment: str = ""
    status: str = "ok"  # ok / open / resolved
    resolved_by_id: int | None = Field(default=None, foreign_key="staff.id")
    resolved_at: datetime | None = _ts()
    resolution: str = ""
    created_at: datetime = _required_ts()


class ChurnReason(SQLModel, table=True):
    __tablename__ = "churn_reason"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    answer: str
    # The win-back this answers: one answer per win-back message.
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id", unique=True)
    created_at: datetime = _required_ts()


class LedgerKind(StrEnum):
    earn = "earn"  # a completed visit, a referral
    spend = "spend"  # a reward or points taken off a booked visit
    expire = "expire"  # what lapsed unspent after the programme's valid_days
    reverse = "reverse"  # undoes an earning (a no-show after all) or a spend (cancelled)


class LoyaltyEntry(SQLModel, table=True):
    """One line of a client's loyalty ledger (docs/loyalty.md): the balance is the sum of
    `delta`, in the programme's unit (stamps or points)."""

    __tablename__ = "loyalty_entry"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    kind: str = Field(
        default=LedgerKind.earn, max_length=8, sa_column_kwargs={"server_default": "earn"}
    )
    delta: int
    reason: str  # visit / referral (earnings), reward / points (spends), expiry
    # The visit it is for: the one that earned it (for a referral, the friend's first
    # visit), or the one it was spent on.
    visit_id: int | None = Field(default=None, foreign_key="visit.id", index=True)
    created_at: datetime = _required_ts()
    expires_at: datetime | None = _ts()  # an earning lapses then, if still unspent


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
    held_out = "held_out"


class Outbox(SQLModel, table=True):
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "due_at"),
        # A client's messages of a kind in a period, with their status (the index alone
        # answers): caps, win-backs per absence.
        Index("ix_outbox_client_kind_due_status", "client_id", "kind", "due_at", "status"),
        # Messages of a kind due in a period: the day's first win-backs.
        Index("ix_outbox_kind_due", "kind", "due_at"),
        # Nudges sent in a period (warm offers follow them).
        Index("ix_outbox_kind_status_sent", "kind", "status", "sent_at"),
        # A broadcast's progress: its rows by status.
        Index("ix_outbox_campaign_status", "campaign", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    client_id: int | None = Field(default=None, foreign_key="client.id")
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    channel: str | None = None
    due_at: datetime = Field(sa_type=UTCDateTime)
    dedupe_key: str = Field(max_length=120, unique=True)
    status: str = OutboxStatus.pending
    attempts: int = 0
    last_error: str | None = None
    claimed_at: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    campaign: str | None = None
    created_at: datetime = _required_ts()


class Broadcast(SQLModel, table=True):
    """A message the owner or an administrator wrote to a group of clients (/broadcast):
    an outbox row of kind `broadcast` per client, with `campaign` = `broadcast:<id>`."""

    id: int | None = Field(default=None, primary_key=True)
    created_by: int = Field(foreign_key="staff.id")
    audience: str = Field(max_length=16)  # a domain.loyalty.Group
    text: str = Field(max_length=1000)
    group_size: int = 0  # clients in the group when it was confirmed
    recipients: int = 0  # of them, those it was queued for
    created_at: datetime = _required_ts()
    due_at: datetime = _required_ts()  # when it goes: now, or when offers may go
    # Every row settled and the sender told (the planner's broadcast_report).
    finished_at: datetime | None = _ts()

    @property
    def campaign(self) -> str:
        return f"broadcast:{self.id}"


class Conversation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    flow: str = "start"
    step: str = "start"
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _required_ts()


class ProcessedMessage(SQLModel, table=True):
    """Inbound message ids already handled: webhook retries are processed once."""

    __tablename__ = "processed_message"

    channel: str = Field(max_length=16, primary_key=True)
    message_id: str = Field(max_length=128, primary_key=True)
    received_at: datetime = _required_ts()


class SendPace(SQLModel, table=True):
    """The next free sending slot of one messenger account (the Telegram bot, the WhatsApp
    number), shared by every replica on this database: `next_at` is in seconds on the
    database server's clock, the one clock every replica sees (scheduler/sender.py,
    SharedPacer). Only differences of it are ever used; no date is read from it."""

    __tablename__ = "send_pace"

    channel: str = Field(max_length=16, primary_key=True)
    next_at: float = Field(default=0.0)
