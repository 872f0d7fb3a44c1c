"""Who the bot may write to, twice: as SQL for the planner's queries and in Python for the
message composer. Kept side by side so they cannot drift apart (tests/test_guards.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, exists
from sqlmodel import col

from storage.tables import Channel, Client, ClientIdentity

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


def working_chats(identities: Iterable[ClientIdentity]) -> list[ClientIdentity]:
    return [i for i in identities if i.channel in MESSENGERS and i.unreachable_since is None]
