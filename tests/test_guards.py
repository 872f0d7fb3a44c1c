"""The planner's SQL guard and the composer's Python twin pick the same clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.composition import Core
from storage.guards import (
    has_open_visit,
    is_reachable,
    marketing_allowed,
    marketing_allowed_sql,
    open_visit_sql,
    opt_out_of_marketing,
    reachable_sql,
    why_unreachable,
)
from storage.tables import Client, ClientIdentity
from testing.chat import Clock
from tests.helpers import add_client, add_visit


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


async def _names_by_sql(core: Core, guard: Any) -> set[str]:
    async with core.db.reading() as session:
        return set((await session.exec(select(Client.name).where(guard))).all())


async def test_sql_and_python_agree_on_who_may_get_offers(core: Core, clock: Clock) -> None:
    now, ago, later = clock.now, clock.now - timedelta(days=9), clock.now - timedelta(days=2)
    crafted: dict[str, dict[str, Any]] = {
        "opted in": {"marketing_opt_in_at": ago},
        "never asked": {},
        "opted out": {"marketing_opt_in_at": ago, "marketing_opt_out_at": later},
        "opted in again": {"marketing_opt_in_at": later, "marketing_opt_out_at": ago},
        "out, never in": {"marketing_opt_out_at": ago},
        "in and out at once": {"marketing_opt_in_at": ago, "marketing_opt_out_at": ago},
    }
    for name, fields in crafted.items():
        await add_client(core, name=name, consent_at=ago, **fields)

    async with core.db.reading() as session:
        clients = (await session.exec(select(Client))).all()
    by_python = {client.name for client in clients if marketing_allowed(client)}

    assert await _names_by_sql(core, marketing_allowed_sql()) == by_python
    assert by_python == {"opted in", "opted in again"}
    assert all(client.marketing_allowed == marketing_allowed(client) for client in clients)
    stays = next(client for client in clients if client.name == "opted out")
    assert not opt_out_of_marketing(stays, now)  # the first opt-out stands
    assert stays.marketing_opt_out_at == later


async def test_sql_and_python_agree_on_who_has_an_open_visit(core: Core, clock: Clock) -> None:
    now = clock.now
    crafted = {
        "booked ahead": [("booked", timedelta(days=2))],
        "confirmed ahead": [("confirmed", timedelta(hours=3))],
        "in the chair": [("booked", -timedelta(minutes=20))],  # started, not marked yet
        "completed": [("completed", -timedelta(days=5))],
        "cancelled": [("cancelled", timedelta(days=1))],
        "no-show": [("no_show", -timedelta(days=1))],
        "came and booked again": [("completed", -timedelta(days=20)), ("booked", timedelta(3))],
        "no visits": [],
    }
    ids: dict[str, int] = {}
    for name, visits in crafted.items():
        client = await add_client(core, name=name, consent_at=now - timedelta(days=30))
        ids[name] = client.id or 0
        for status, offset in visits:
            start = now + offset
            await add_visit(
                core,
                client_id=ids[name],
                master="marina",
                service="kids",
                start=start,
                status=status,
            )

    by_python = set()
    async with core.db.reading() as session:
        for name, client_id in ids.items():
            if await has_open_visit(session=session, client_id=client_id):
                by_python.add(name)

    assert await _names_by_sql(core, open_visit_sql()) == by_python
    assert by_python == {"booked ahead", "confirmed ahead", "in the chair", "came and booked again"}


async def test_the_open_visit_rule_for_many_clients_picks_the_same_ones(
    core: Core, clock: Clock
) -> None:
    now = clock.now
    crafted = {
        "booked ahead": [("booked", timedelta(days=2))],
        "in the chair": [("confirmed", -timedelta(minutes=20))],
        "completed": [("completed", -timedelta(days=5))],
        "cancelled and came": [("cancelled", timedelta(1)), ("completed", -timedelta(3))],
        "came and booked again": [("completed", -timedelta(days=20)), ("booked", timedelta(3))],
        "no visits": [],
    }
    for name, visits in crafted.items():
        client = await add_client(core, name=name, consent_at=now - timedelta(days=30))
        for status, offset in visits:
            await add_visit(
                core,
                client_id=client.id or 0,
                master="marina",
                service="kids",
                start=now + offset,
                status=status,
            )

    one_by_one = await _names_by_sql(core, open_visit_sql())
    assert await _names_by_sql(core, open_visit_sql(many=True)) == one_by_one
    assert await _names_by_sql(core, ~open_visit_sql(many=True)) == set(crafted) - one_by_one
    assert one_by_one == {"booked ahead", "in the chair", "came and booked again"}
