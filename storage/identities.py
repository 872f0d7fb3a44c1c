"""A client's chats (ClientIdentity rows): finding the client behind a chat, linking a chat,
and what the messengers tell us about it (the client wrote, the chat is gone)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.entities import IDENTITY
from storage.guards import opt_out_of_marketing, working_chats
from storage.prepared import Prepared, run_sync
from storage.tables import Channel, Client, ClientIdentity

# When a client last wrote matters to the hour (WhatsApp's 24-hour window): a few minutes'
# precision is plenty, and spares a write on every tap.
INBOUND_PRECISION = timedelta(minutes=10)


def _identity_query() -> Select[Any]:
    return select(*IDENTITY.columns).where(
        col(ClientIdentity.channel) == bindparam("channel"),
        col(ClientIdentity.external_id) == bindparam("external_id"),
    )


IDENTITY_OF = Prepared(_identity_query)


async def identity_of(
    *, session: AsyncSession, channel: str, external_id: str
) -> ClientIdentity | None:
    return await IDENTITY_OF.load_first(session, IDENTITY, channel=channel, external_id=external_id)


async def identities_of(*, session: AsyncSession, client_id: int) -> Sequence[ClientIdentity]:
    query = select(ClientIdentity).where(ClientIdentity.client_id == client_id)
    return (await session.exec(query.order_by(col(ClientIdentity.id)))).all()


async def client_of_chat(*, session: AsyncSession, channel: str, external_id: str) -> Client | None:
    """The live client this chat is linked to, if any."""
    identity = await identity_of(session=session, channel=channel, external_id=external_id)
    if identity is None:
        return None
    client = await session.get(Client, identity.client_id)
    return client if client is not None and client.deleted_at is None else None


async def link_chat(
    *,
    session: AsyncSession,
    client: Client,
    channel: str,
    external_id: str,
    verified: bool,
    now: datetime,
) -> ClientIdentity:
    """Link the chat to `client`. A chat left behind by a deleted client moves over: the
    person writing from it now is who it belongs to. `verified`: the chat proves it, being
    the one writing now."""
    assert client.id is not None
    identity = await identity_of(session=session, channel=channel, external_id=external_id)
    if identity is None:
        return await run_sync(
            session,
            IDENTITY.insert,
            client_id=client.id,
            channel=channel,
            external_id=external_id,
            verified=verified,
            # Verified: the chat itself is writing (`record_inbound` would note it next).
            last_inbound_at=now if verified else None,
            created_at=now,
        )
    if identity.client_id != client.id:
        identity.client_id = client.id
        identity.last_inbound_at = identity.unreachable_since = None
    identity.verified = identity.verified or verified
    session.add(identity)
    await session.flush()
    return identity


async def record_inbound(
    *,
    session: AsyncSession,
    client: Client,
    channel: str,
    external_id: str,
    now: datetime,
    identity: ClientIdentity | None = None,
) -> None:
    """The client wrote from this chat: it is theirs, it works, and the time is noted.
    `identity`: the chat's row when the caller has it already (else it is looked up)."""
    if identity is None:
        identity = await identity_of(session=session, channel=channel, external_id=external_id)
    if identity is None or identity.client_id != client.id:
        return
    changed = not identity.verified or identity.unreachable_since is not None
    last = identity.last_inbound_at
    if last is None or now - last >= INBOUND_PRECISION:
        identity.last_inbound_at, changed = now, True
    if changed:
        identity.verified, identity.unreachable_since = True, None
        session.add(identity)
    if client.unreachable_since is not None:  # a blocked bot was unblocked
        client.unreachable_since = None
        session.add(client)


async def mark_unreachable(
    *, session: AsyncSession, client_id: int, channel: str, external_id: str, now: datetime
) -> bool:
    """The messenger says this chat is gone: no more messages there, and none at all when it
    was the client's last working one. False when it was known already."""
    identity = await identity_of(session=session, channel=channel, external_id=external_id)
    if identity is None or identity.client_id != client_id or identity.unreachable_since:
        return False
    identity.unreachable_since = now
    session.add(identity)
    await session.flush()
    client = await session.get(Client, client_id)
    chats = await identities_of(session=session, client_id=client_id)
    if client is not None and not working_chats(chats):
        client.unreachable_since = now
        session.add(client)
    return True


async def whatsapp_unreachable(*, session: AsyncSession, wa_id: str, now: datetime) -> int | None:
    """A WhatsApp number the messages cannot reach; the id of its client, or None when it
    is nobody's or was known already."""
    identity = await identity_of(session=session, channel=Channel.whatsapp, external_id=wa_id)
    if identity is None:
        return None
    gone = await mark_unreachable(
        session=session,
        client_id=identity.client_id,
        channel=Channel.whatsapp,
        external_id=wa_id,
        now=now,
    )
    return identity.client_id if gone else None


async def whatsapp_stopped_marketing(*, session: AsyncSession, wa_id: str, now: datetime) -> None:
    """The WhatsApp user turned marketing messages off in the app: that is an opt-out."""
    client = await client_of_chat(session=session, channel=Channel.whatsapp, external_id=wa_id)
    if client is not None and opt_out_of_marketing(client, now):
        session.add(client)
