"""The planner's SQL guard and the composer's Python twin pick the same clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.composition import Core
from storage.guards import is_reachable, reachable_sql, why_unreachable
from storage.tables import Client, ClientIdentity
from tests.chat import Clock
from tests.helpers import add_client


async def test_sql_and_python_agree_on_who_can_be_written_to(core: Core, clock: Clock) -> None:
    now, ago = clock.now, clock.now - timedelta(days=3)
    crafted: dict[str, dict[str, Any]] = {
        "telegram": {"telegram_id": 1, "consent_at": ago},
        "whatsapp": {"whatsapp_id": "79160000002", "consent_at": ago},
        "both, telegram blocked": {
            "telegram_id": 3,
            "whatsapp_id": "79160000003",
            "telegram_unreachable_at": now,
            "consent_at": ago,
        },
        "console only": {"consent_at": ago},
        "no chat": {"consent_at": ago},
        "no consent": {"telegram_id": 6},
        "deleted": {"telegram_id": 7, "consent_at": ago, "deleted_at": now},
        "blocked everywhere": {
            "telegram_id": 8,
            "telegram_unreachable_at": now,
            "unreachable_since": now,
            "consent_at": ago,
        },
        "only chat blocked": {"telegram_id": 9, "telegram_unreachable_at": now, "consent_at": ago},
    }
    ids: dict[str, int] = {}
    for name, fields in crafted.items():
        ids[name] = (await add_client(core, name=name, **fields)).id or 0
    async with core.db.transaction() as session:
        session.add(
            ClientIdentity(
                client_id=ids["console only"],
                channel="console",
                external_id="operator",
                created_at=now,
            )
        )

    async with core.db.reading() as session:
        by_sql = set((await session.exec(select(Client.name).where(reachable_sql()))).all())
        by_python = set()
        for client in (await session.exec(select(Client))).all():
            query = select(ClientIdentity).where(col(ClientIdentity.client_id) == client.id)
            if is_reachable(client, (await session.exec(query)).all()):
                by_python.add(client.name)
        deleted = await session.get(Client, ids["deleted"])
        assert deleted is not None
        assert why_unreachable(deleted, []) == "the client is deleted"

    assert by_sql == by_python == {"telegram", "whatsapp", "both, telegram blocked"}
