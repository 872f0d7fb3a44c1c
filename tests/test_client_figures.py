"""The figures kept on the client row (storage/stats.py: the first and the last completed
visit, how many) follow the visits whatever writes them: a master marking a visit came or
a no-show and taking it back, the planner completing an unanswered visit at 23:00, an
import, the demo history. The digest counts new clients by `first_visit_at`."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from bot.composition import Core, build_core_on
from bot.tools.demo_history import seed_history
from bot.tools.importer import import_files
from domain import vocabulary as press
from domain.business import BusinessConfig
from storage.db import Database
from storage.tables import Client, Visit, VisitStatus
from testing.chat import ChatClient, Clock
from tests.helpers import add_client, add_visit, utc_visit

DATA = Path(__file__).resolve().parent / "data"
MASTER_CHAT = 7002  # Илья's Telegram id in these tests


async def _figures(core: Core) -> dict[int, tuple[datetime | None, datetime | None, int]]:
    """(first completed visit, last one, how many) per client, as stored on the client row."""
    async with core.db.reading() as session:
        clients = (await session.exec(select(Client))).all()
    return {c.id or 0: (c.first_visit_at, c.last_visit_at, c.completed_visits) for c in clients}


async def _from_visits(core: Core) -> dict[int, tuple[datetime | None, datetime | None, int]]:
    """The same, counted from the visits themselves."""
    async with core.db.reading() as session:
        clients = (await session.exec(select(Client.id))).all()
        done = (
            await session.exec(select(Visit).where(Visit.status == VisitStatus.completed))
        ).all()
    starts: dict[int, list[datetime]] = defaultdict(list)
    for visit in done:
        starts[visit.client_id].append(visit.starts_at)
    figures = {}
    for client_id in clients:
        theirs = sorted(starts[client_id or 0])
        figures[client_id or 0] = (
            theirs[0] if theirs else None,
            theirs[-1] if theirs else None,
            len(theirs),
        )
    return figures


async def _master_shop(db: Database, config: BusinessConfig) -> Core:
    masters = [
        m.model_copy(update={"telegram_id": MASTER_CHAT}) if m.key == "ilya" else m
        for m in config.masters
    ]
    return await build_core_on(db=db, config=config.model_copy(update={"masters": masters}))


async def test_a_master_marking_visits_and_taking_a_mark_back(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    core = await _master_shop(db, config)
    client = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    assert client.id is not None
    # The earlier visit was counted as done at 23:00 (nobody answered the visit check).
    earlier, later = [
        await add_visit(
            core, client_id=client.id, master="ilya", service="fade", start=start, status=status
        )
        for start, status in (
            (utc_visit(2026, 11, 20, 12), VisitStatus.completed),
            (utc_visit(2026, 11, 22, 12), VisitStatus.booked),
        )
    ]
    master = ChatClient(core.conversations, clock, external_id=str(MASTER_CHAT), language="ru")
    first_visits = []
    for payload in (
        press.staff_came(later.id),
        press.staff_no_show(earlier.id),  # the morning after: it was a no-show after all
        press.staff_came(earlier.id),  # "Came after all"
    ):
        await master.press(payload)
        figures = await _figures(core)
        assert figures == await _from_visits(core)
        first_visits.append(figures[client.id][0])
    assert first_visits == [earlier.starts_at, later.starts_at, earlier.starts_at]


async def test_the_planner_completing_an_unanswered_visit_at_the_end_of_the_day(
    core: Core, clock: Clock
) -> None:
    client = await add_client(core, name="Анна", phone="+79990000002", consent_at=clock.now)
    assert client.id is not None
    start = utc_visit(2026, 11, 22, 12)
    await add_visit(
        core, client_id=client.id, master="artem", service="haircut", start=start, status="booked"
    )
    planner = core.engine(channels={}, clock=lambda: clock.now).planner
    async with core.db.transaction() as session:
        await planner.plan(session, utc_visit(2026, 11, 22, 23))  # 23:00 in Moscow
    figures = await _figures(core)
    assert figures == await _from_visits(core)
    assert figures[client.id] == (start, start, 1)


async def test_an_import(core: Core, clock: Clock) -> None:
    await import_files(
        core=core, now=clock.now, clients=DATA / "clients.csv", visits=DATA / "visits.csv"
    )
    figures = await _figures(core)
    assert figures == await _from_visits(core)
    assert sum(first is not None for first, _, _ in figures.values()) > 20


async def test_the_demo_history(core: Core) -> None:
    now = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)
    await seed_history(
        db=core.db, catalog=core.deps.catalog, config=core.config, now=now, clients=40
    )
    figures = await _figures(core)
    assert figures == await _from_visits(core)
    assert sum(first is not None for first, _, _ in figures.values()) > 30
