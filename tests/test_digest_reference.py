"""The digest's SQL tallies (storage/digest.py) against the straightforward computation
(testing/digest_reference.py: every row read, the figures computed from full rows). A
random history crowds the edges: visits, ratings and win-backs at the first minute of each day a
definition starts or ends on, and a minute before it, in weeks with a DST change."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.composition import Core, build_core_on
from domain.business import BusinessConfig, Payroll
from domain.digest import day_start
from scheduler.digest import owner_digest
from storage.db import Database
from storage.stats import refresh_client_stats
from storage.tables import Client, Feedback, Outbox, OutboxStatus, Visit, VisitStatus
from testing.digest_reference import plain_owner_digest
from tests.helpers import LONG_AGO

# (time zone, D): Moscow as the demo; Berlin whose clocks go back on Sunday 25 October
# and forward on Sunday 29 March, the last days of the weeks reported on those Mondays.
CASES = [
    ("Europe/Moscow", date(2026, 11, 23), 1),
    ("Europe/Berlin", date(2026, 10, 26), 2),
    ("Europe/Berlin", date(2026, 3, 30), 3),
]
# The days a definition starts or ends on, as days before D (the weeks of the chart, the
# period, the segments' lines, the cohort, the win-back window, the year).
EDGES = [0, 7, 14, 21, 30, 31, 60, 61, 84, 90, 91, 119, 120, 121, 150, 365, 366]
STATUSES = [
    *[VisitStatus.completed] * 12,
    *[VisitStatus.no_show] * 2,
    *[VisitStatus.cancelled] * 3,
    VisitStatus.booked,
    VisitStatus.confirmed,
]


async def _write_history(core: Core, as_of: date, tz: ZoneInfo, seed: int) -> None:
    """80 clients, about 700 visits over 14 months (and a few after D), ratings, win-backs."""
    rng = random.Random(seed)
    edges = []
    for days in EDGES:
        start = day_start(as_of - timedelta(days=days), tz)
        edges += [start, start - timedelta(minutes=1)]
    masters = list(core.deps.catalog.masters.values())
    services = list(core.deps.catalog.services.values())
    prices = [Decimal("1800"), Decimal("1500.50"), Decimal("2000"), Decimal("0"), Decimal("990")]
    d = day_start(as_of, tz)
    async with core.db.transaction() as session:
        clients = []
        for n in range(80):
            # A few join on D or after it, one a minute before it.
            created = {0: d, 1: d - timedelta(minutes=1)}.get(
                n % 13, d - timedelta(days=rng.randrange(-3, 500))
            )
            deleted = d - timedelta(days=1) if n % 11 == 0 else None
            clients.append(
                Client(
                    name=f"Client {n}",
                    phone=f"+7916{n:07d}",
                    created_at=created,
                    deleted_at=deleted,
                )
            )
        session.add_all(clients)
        await session.flush()
        visits: list[Visit] = []
        for client in clients:
            # Some are new (their history starts within the last 10, 40, 75 or 100 days),
            # some stopped coming: 45 or 130 days before D, or on the first minute of the
            # last day that keeps them hot (D−30) or warm (D−120).
            span = (10, 40, 75, 100, 420, 420)[(client.id or 0) % 6]
            gap = (0, 0, 45, 0, 120, 0, 30, 130, 0)[(client.id or 0) % 9]
            first, last = d - timedelta(days=span), day_start(as_of - timedelta(days=gap), tz)
            starts = {last} if gap in (30, 120) else set()  # one chair at a time: no twice
            for _ in range(rng.randrange(2, 6 + span // 10)):
                if rng.random() < 0.3:
                    start = rng.choice(edges)
                else:
                    start = d - timedelta(minutes=rng.randrange(-10 * 1440, span * 1440))
                if start >= first and not (gap and start > last):
                    starts.add(start)
            for start in starts:
                service = rng.choice(services)
                status: str = VisitStatus.completed if start == last else rng.choice(STATUSES)
                visits.append(
                    Visit(
                        client_id=client.id or 0,
                        master_id=rng.choice(masters).id,
                        service_id=service.id,
                        starts_at=start,
                        ends_at=start + service.duration,
                        status=status,
                        price=rng.choice(prices),
                        source="import",
                        created_at=LONG_AGO,
                    )
                )
        session.add_all(visits)
        await session.flush()
        for visit in visits:
            if visit.status != VisitStatus.completed or rng.random() > 0.4:
                continue
            stars = rng.randint(1, 5)
            given = (
                rng.choice(edges) if rng.random() < 0.3 else visit.starts_at + timedelta(hours=3)
            )
            status = "ok" if stars > 3 else rng.choice(["open", "resolved"])
            resolved = None
            if status == "resolved":
                resolved = rng.choice([*edges, given + timedelta(days=rng.randrange(0, 20))])
            session.add(
                Feedback(
                    visit_id=visit.id or 0,
                    rating=stars,
                    status=status,
                    comment=rng.choice(["", "Too short"]),
                    created_at=given,
                    resolved_at=resolved,
                )
            )
        for client in rng.sample(clients, 30):
            if rng.random() < 0.4:
                due = rng.choice(edges)
            else:
                due = d - timedelta(minutes=rng.randrange(20 * 1440, 100 * 1440))
            session.add(
                Outbox(
                    kind="winback",
                    client_id=client.id,
                    due_at=due,
                    dedupe_key=f"winback:1:client:{client.id}",
                    status=rng.choice(
                        [
                            OutboxStatus.sent,
                            OutboxStatus.sent,
                            OutboxStatus.held_out,
                            OutboxStatus.skipped,
                        ]
                    ),
                    created_at=due,
                )
            )
        # What every writer of visits does: the clients' figures follow their visits.
        return_days = {s.id: s.return_interval_days for s in services}
        await refresh_client_stats(session=session, tz=tz, return_days=return_days)


@pytest.mark.parametrize(("zone", "as_of", "seed"), CASES)
async def test_the_sql_tallies_give_the_figures_of_the_plain_computation(
    db: Database, config: BusinessConfig, zone: str, as_of: date, seed: int
) -> None:
    shop = config.model_copy(
        update={
            "business": config.business.model_copy(update={"timezone": zone}),
            "payroll": Payroll(bonus_percent=Decimal(10), winback_bonus=Decimal(500)),
        }
    )
    core = await build_core_on(db=db, config=shop)
    await _write_history(core, as_of, shop.tz, seed)

    async with core.db.reading() as session:
        fast = await owner_digest(
            session=session, config=shop, catalog=core.deps.catalog, as_of=as_of
        )
    plain = await plain_owner_digest(core, as_of)

    assert fast.digest.as_json() == plain.digest.as_json()
    assert fast.digest == plain.digest
    assert fast.digest.open_complaints == plain.digest.open_complaints
    assert fast.weeks == plain.weeks
    assert fast.fewer_returns == plain.fewer_returns
    assert fast.pay == plain.pay
    # The history reaches every figure: none of them is compared empty.
    figures = plain.digest
    assert figures.visits_completed and figures.new_clients and figures.no_shows
    assert figures.cancellations and figures.ratings and figures.complaints_open
    assert all(figures.segments.values())
    assert figures.second_visit_rate is not None and figures.pareto_top20_share is not None
    assert figures.winback.offered and figures.winback.held_out
    assert all(week.new + week.returning for week in plain.weeks)
    assert any(p.returns_released for p in plain.pay or [])
