"""Rules about a client that both the planner (in SQL, over many clients) and the message
composer (for one message about to go) apply. Each rule is written here once, with its SQL
expression and its Python twin side by side, so the two cannot drift apart
(tests/test_guards.py checks that they agree). docs/retention.md ("Guards") says why each
exists."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import ACTIVE_VISIT, Channel, Client, ClientIdentity, Visit

MESSENGERS = (Channel.telegram, Channel.whatsapp)  # the console cannot be written to later


def reachable_sql() -> Any:
    """The client is alive, consented, and has a messenger chat that still works."""
    return and_(
        col(Client.deleted_at).is_(None),
        col(Client.unreachable_since).is_(None),
        col(Client.consent_at).is_not(None),
        exists().where(
            col(ClientIdentity.client_id) == col(Client.id),
            col(ClientIdentity.channel).in_(MESSENGERS),
            col(ClientIdentity.unreachable_since).is_(None),
        ),
    )


def why_unreachable(client: Client, identities: Iterable[ClientIdentity]) -> str | None:
    """The reason `reachable_sql()` leaves this client out, or None when it keeps them."""
    if client.deleted_at is not None:
        return "the client is deleted"
    if client.unreachable_since is not None:
        return "the client is unreachable"
    if client.consent_at is None:
        return "no consent to personal data processing"
    if not working_chats(identities):
        return "the client has no messenger the bot can reach"
    return None


def is_reachable(client: Client, identities: Iterable[ClientIdentity]) -> bool:
    return why_unreachable(client, identities) is None


class Chat(Protocol):
    """A chat of a client: a ClientIdentity row, or a row of its columns."""

    @property
    def channel(self) -> str: ...

    @property
    def unreachable_since(self) -> datetime | None: ...


ChatT = TypeVar("ChatT", bound=Chat)


def working_chats(identities: Iterable[ChatT]) -> list[ChatT]:
    return [i for i in identities if i.channel in MESSENGERS and i.unreachable_since is None]


def chosen_chat(
    preferred_channel: str | None,
    identities: Iterable[ChatT],
    channels: Collection[str] = MESSENGERS,
) -> ChatT | None:
    """The chat a message to the client goes to: the first working chat (in the order
    given) of the client's preferred messenger, else of Telegram, else of WhatsApp, among
    the `channels` the bot runs."""
    chats = {chat.channel: chat for chat in reversed(working_chats(identities))}
    for channel in (preferred_channel, Channel.telegram, Channel.whatsapp):
        chat = chats.get(channel or "")
        if chat is not None and chat.channel in channels:
            return chat
    return None


def open_visit_sql(*, many: bool = False) -> Any:
    """The client has an open visit: booked or confirmed and not yet marked completed,
    no-show or cancelled, whether its start is ahead or has just passed (the client may be
    sitting in the chair). Such a client gets no nudge, gift or win-back.

    `many=True` is the same rule for a query over many clients: the open visits are read
    once for the whole query (few: the ones ahead and under way) instead of an index probe
    per client."""
    is_open = col(Visit.status).in_(ACTIVE_VISIT)
    if many:
        return col(Client.id).in_(select(col(Visit.client_id)).where(is_open))
    return exists().where(col(Visit.client_id) == col(Client.id), is_open)


async def has_open_visit(*, session: AsyncSession, client_id: int) -> bool:
    """`open_visit_sql()` for one client."""
    query = select(col(Client.id)).where(col(Client.id) == client_id, open_visit_sql())
    return (await session.exec(query)).first() is not None


def marketing_allowed_sql() -> Any:
    """The client opted in to offers and did not withdraw it since (a later opt-in wins)."""
    return and_(
        col(Client.marketing_opt_in_at).is_not(None),
        or_(
            col(Client.marketing_opt_out_at).is_(None),
            col(Client.marketing_opt_out_at) < col(Client.marketing_opt_in_at),
        ),
    )


def marketing_allowed(client: Client) -> bool:
    """`marketing_allowed_sql()` for one client."""
    opted_in, opted_out = client.marketing_opt_in_at, client.marketing_opt_out_at
    return opted_in is not None and (opted_out is None or opted_out < opted_in)


def marketable_sql() -> Any:
    """Who may get a marketing message at all: reachable, and offers allowed."""
    return and_(reachable_sql(), marketing_allowed_sql())


def opt_out_of_marketing(client: Client, now: datetime) -> bool:
    """No more offers for this client (/stop, Preferences, WhatsApp's "stop promotions",
    a messenger's report); False when offers were off already (the first opt-out stands)."""
    if not marketing_allowed(client):
        return False
    client.marketing_opt_out_at = now
    return True


def opt_in_to_marketing(client: Client, now: datetime) -> None:
    client.marketing_opt_in_at = now
    client.marketing_opt_out_at = None
