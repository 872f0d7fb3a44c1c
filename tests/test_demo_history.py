"""The demo history: realistic, consistent with the shop's hours and reproducible."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, col, select

from bot.config import load_business_config
from bot.tools.demo_history import HistoryStats, seed_history, with_more_masters
from domain.business import BusinessConfig
from domain.retention import in_holdout
from storage.catalog import Catalog, load_catalog, sync_catalog
from storage.db import Database, create_engine
from storage.tables import ACTIVE_VISIT, Client, ClientIdentity, Feedback, Visit, VisitStatus

NOW = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)  # Wednesday 12:30 in Moscow
MSK = ZoneInfo("Europe/Moscow")
CONFIG_PATH = Path(__file__).resolve().parent.parent / "business.example.toml"


@dataclass
class Shop:
    db: Database
    catalog: Catalog
    config: BusinessConfig


async def open_shop(path: Path, config: BusinessConfig | None = None) -> Shop:
    config = config or load_business_config(CONFIG_PATH)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    db = Database(engine)
    async with db.transaction() as session:
        await sync_catalog(session, config)
        catalog = await load_catalog(session, config)
    return Shop(db, catalog, config)


async def seeded(path: Path, *, seed: int = 7) -> tuple[Shop, HistoryStats]:
    shop = await open_shop(path)
    stats = await seed_history(
        db=shop.db, catalog=shop.catalog, config=shop.config, now=NOW, clients=300, seed=seed
    )
    return shop, stats


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Shop, HistoryStats]]:
    shop, stats = await seeded(tmp_path / "x.db")
    yield shop, stats
    await shop.db.dispose()


async def all_clients(db: Database) -> Sequence[Client]:
    async with db.reading() as session:
        return (await session.exec(select(Client).order_by(col(Client.id)))).all()


async def telegram_chats(db: Database) -> dict[int, str]:
    """Client id -> their Telegram chat."""
    async with db.reading() as session:
        query = select(ClientIdentity.client_id, ClientIdentity.external_id).where(
            ClientIdentity.channel == "telegram"
        )
        return dict((await session.exec(query)).all())


async def all_visits(db: Database) -> Sequence[Visit]:
    async with db.reading() as session:
        return (await session.exec(select(Visit).order_by(col(Visit.id)))).all()


async def digest(db: Database) -> str:
    """A hash of every seeded row, to compare two databases."""
    sha = hashlib.sha256()
    async with db.engine.connect() as connection:
        for table in ("client", "visit", "feedback"):
            rows = await connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            for row in rows:
                sha.update(repr(tuple(row)).encode())
    return sha.hexdigest()


def local_day(moment: datetime) -> date:
    return moment.astimezone(MSK).date()


async def test_seeding_fills_a_few_thousand_visits_of_every_kind(
    demo: tuple[Shop, HistoryStats],
) -> None:
    shop, stats = demo
    visits = await all_visits(shop.db)
    statuses = [v.status for v in visits]
    assert stats.clients == len(await all_clients(shop.db)) == 300
    assert stats.visits == len(visits)
    assert 1_200 <= stats.visits <= 4_000
    assert stats.completed == statuses.count(VisitStatus.completed)
    assert stats.upcoming == sum(1 for s in statuses if s in ACTIVE_VISIT) > 10
    assert 0.02 <= statuses.count(VisitStatus.no_show) / len(visits) <= 0.09
    assert 0.03 <= statuses.count(VisitStatus.cancelled) / len(visits) <= 0.12
    prices = {s.id: s.price for s in shop.catalog.services.values()}
    assert all(v.price == prices[v.service_id] for v in visits)
    for visit in visits:
        if visit.status == VisitStatus.completed:
            assert visit.completed_at == visit.ends_at
            assert visit.paid_amount == visit.price
        if visit.status == VisitStatus.cancelled:
            assert visit.cancelled_at is not None and visit.cancel_reason
            assert visit.created_at <= visit.cancelled_at <= visit.starts_at
        assert visit.created_at <= min(visit.starts_at, NOW)


async def test_feedback_is_mostly_good_with_a_few_complaints(
    demo: tuple[Shop, HistoryStats],
) -> None:
    shop, _ = demo
    async with shop.db.reading() as session:
        feedback = (await session.exec(select(Feedback))).all()
        completed = {
            v.id: v
            for v in (await session.exec(select(Visit))).all()
            if v.status == VisitStatus.completed
        }
    assert 200 <= len(feedback) <= len(completed)
    assert all(f.visit_id in completed for f in feedback)
    assert all(completed[f.visit_id].ends_at < f.created_at <= NOW for f in feedback)
    good = [f for f in feedback if f.rating >= 4]
    bad = [f for f in feedback if f.rating <= 3]
    assert len(good) / len(feedback) >= 0.8
    assert bad and all(f.comment and f.status in ("open", "resolved") for f in bad)
    assert all(f.status == "ok" for f in good)
    assert {f.status for f in bad} == {"open", "resolved"}


async def test_clients_have_unique_valid_russian_mobiles_and_plausible_profiles(
    demo: tuple[Shop, HistoryStats],
) -> None:
    shop, _ = demo
    clients = await all_clients(shop.db)
    phones = [c.phone for c in clients]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert phone is not None and re.fullmatch(r"\+79\d{9}", phone)
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone))
    telegram = await telegram_chats(shop.db)
    telegram_ids = list(telegram.values())
    assert len(set(telegram_ids)) == len(telegram_ids)
    assert all(int(t) > 0 for t in telegram_ids)
    assert all(re.fullmatch(r"[А-ЯЁ][а-яё]+( [А-ЯЁ][а-яё]+)?", c.name) for c in clients)

    def share(flags: list[bool]) -> float:
        return sum(flags) / len(flags)

    assert 0.6 <= share([c.birthday is not None for c in clients]) <= 0.8
    assert 0.5 <= share([c.marketing_opt_in_at is not None for c in clients]) <= 0.7
    assert 0.78 <= share([c.id in telegram for c in clients]) <= 0.92
    assert all(c.phone_verified for c in clients)
    assert 0.04 <= share([c.holdout for c in clients]) <= 0.16
    assert all(c.holdout == in_holdout(c.phone or "") for c in clients)
    assert all(c.consent_at is not None for c in clients)
    assert any(c.preference_note for c in clients)
    assert any(c.favourite_master_id in shop.catalog.masters for c in clients)


async def test_a_client_appears_with_their_first_booking(demo: tuple[Shop, HistoryStats]) -> None:
    shop, _ = demo
    first_booked: dict[int, datetime] = {}
    for visit in await all_visits(shop.db):
        booked = first_booked.get(visit.client_id)
        if booked is None or visit.created_at < booked:
            first_booked[visit.client_id] = visit.created_at
    clients = await all_clients(shop.db)
    assert all(c.created_at == first_booked[c.id] for c in clients if c.id in first_booked)
    assert all(c.consent_at == c.created_at for c in clients)


async def test_no_master_is_double_booked(demo: tuple[Shop, HistoryStats]) -> None:
    shop, _ = demo
    taken = (*ACTIVE_VISIT, VisitStatus.completed, VisitStatus.no_show)
    by_master: dict[int, list[Visit]] = defaultdict(list)
    for visit in await all_visits(shop.db):
        if visit.status in taken:
            by_master[visit.master_id].append(visit)
    assert len(by_master) == len(shop.catalog.masters)
    for visits in by_master.values():
        visits.sort(key=lambda v: v.starts_at)
        for before, after in pairwise(visits):
            assert before.ends_at <= after.starts_at, (before, after)


async def test_every_visit_lies_inside_its_masters_working_hours(
    demo: tuple[Shop, HistoryStats],
) -> None:
    shop, _ = demo
    step = shop.config.booking.slot_step
    for visit in await all_visits(shop.db):
        start, end = visit.starts_at.astimezone(MSK), visit.ends_at.astimezone(MSK)
        assert end - start == shop.catalog.services[visit.service_id].duration
        hours = [
            h
            for h in shop.catalog.masters[visit.master_id].hours
            if h.weekday == start.weekday()
            and h.opens <= start.time()
            and end.time() <= h.closes
            and end.date() == start.date()
        ]
        assert hours, f"visit {visit.id} at {start:%a %H:%M}-{end:%H:%M} is outside hours"
        since_opening = (start.hour * 60 + start.minute) - (
            hours[0].opens.hour * 60 + hours[0].opens.minute
        )
        assert since_opening % step == 0
        assert visit.service_id in shop.catalog.masters[visit.master_id].service_ids


async def test_only_the_next_two_weeks_hold_bookings(demo: tuple[Shop, HistoryStats]) -> None:
    shop, _ = demo
    visits = await all_visits(shop.db)
    future = [v for v in visits if v.starts_at > NOW]
    assert future
    assert all(v.status in ACTIVE_VISIT for v in future)
    assert all(v.starts_at <= NOW + timedelta(days=14) for v in future)
    assert all(v.ends_at <= NOW for v in visits if v.starts_at <= NOW)
    assert all(v.starts_at > NOW for v in visits if v.status in ACTIVE_VISIT)


async def test_history_has_hot_warm_and_sleeping_clients(demo: tuple[Shop, HistoryStats]) -> None:
    shop, _ = demo
    last: dict[int, date] = {}
    for visit in await all_visits(shop.db):
        if visit.status == VisitStatus.completed:
            day = local_day(visit.starts_at)
            last[visit.client_id] = max(day, last.get(visit.client_id, day))
    today = local_day(NOW)
    idle = [(today - day).days for day in last.values()]
    assert sum(d <= 30 for d in idle) >= 45  # hot
    assert sum(30 < d <= 120 for d in idle) >= 20  # warm
    assert sum(d > 120 for d in idle) >= 45  # sleeping
    assert min(idle) >= 0
    regulars = [c for c, n in _completed_counts(await all_visits(shop.db)).items() if n >= 5]
    assert len(regulars) >= 60


def _completed_counts(visits: Sequence[Visit]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for visit in visits:
        if visit.status == VisitStatus.completed:
            counts[visit.client_id] += 1
    return counts


async def test_the_same_seed_gives_the_same_history(
    tmp_path: Path, demo: tuple[Shop, HistoryStats]
) -> None:
    shop, stats = demo
    again, again_stats = await seeded(tmp_path / "again.db")
    other, _ = await seeded(tmp_path / "other.db", seed=8)
    try:
        assert again_stats == stats
        assert await digest(again.db) == await digest(shop.db)
        assert await digest(other.db) != await digest(shop.db)
    finally:
        await again.db.dispose()
        await other.db.dispose()


async def test_seeding_refuses_a_database_that_has_clients(
    demo: tuple[Shop, HistoryStats],
) -> None:
    shop, _ = demo
    with pytest.raises(ValueError, match="empty database"):
        await seed_history(db=shop.db, catalog=shop.catalog, config=shop.config, now=NOW)


async def test_a_shop_with_more_masters_spreads_the_same_clients(tmp_path: Path) -> None:
    config = with_more_masters(load_business_config(CONFIG_PATH), 2)
    assert len({m.key for m in config.masters}) == 6
    shop = await open_shop(tmp_path / "big.db", config)
    try:
        stats = await seed_history(
            db=shop.db, catalog=shop.catalog, config=config, now=NOW, clients=100, months=6
        )
        visits = await all_visits(shop.db)
        assert stats.visits == len(visits) > 100
        assert len({v.master_id for v in visits}) == 6
    finally:
        await shop.db.dispose()
