"""The owner's digest (docs/digest.md): every figure worked out by hand on a crafted
history in Europe/Berlin, whose clocks go back on Sunday 25 October 2026, the last day of
the week reported on Monday 26 October."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.cli import main
from bot.composition import build_core_on
from domain.business import BusinessConfig
from domain.digest import (
    ClientRow,
    FeedbackRow,
    History,
    VisitRow,
    WinbackDecision,
    masters_with_fewer_returns,
    pareto_top20_share,
    second_visit_rate,
    segment_counts,
    weekly_digest,
    weekly_points,
    winback_effect,
)
from domain.retention import Segment
from storage.db import Database, create_engine, sqlite_url_for
from storage.stats import refresh_client_stats
from storage.tables import Feedback, Visit
from tests.helpers import add_client, add_visit, utc_visit

BERLIN = ZoneInfo("Europe/Berlin")
AS_OF = date(2026, 10, 26)  # Monday: the report covers Mon 19 – Sun 25 October
ANNA, BEN = 1, 2
MASTERS = {ANNA: "Anna", BEN: "Ben"}


def berlin(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A Berlin wall time as the aware UTC instant storage hands over."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def visit(
    visit_id: int,
    client: int,
    master: int,
    start: datetime,
    price: str = "20.00",
    status: str = "completed",
    previous: tuple[datetime, int, str] | None = None,
) -> VisitRow:
    """`previous`: the client's previous completed visit (when, master, price)."""
    return VisitRow(
        id=visit_id,
        client_id=client,
        master_id=master,
        starts_at=start,
        status=status,
        price=Decimal(price),
        previous_at=previous[0] if previous else None,
        previous_master_id=previous[1] if previous else None,
        previous_price=Decimal(previous[2]) if previous else None,
    )


def rating(
    visit_id: int,
    master: int,
    stars: int,
    given: datetime,
    status: str = "ok",
    resolved: datetime | None = None,
) -> FeedbackRow:
    return FeedbackRow(visit_id, master, stars, status, given, resolved, f"Client {visit_id}")


# The week of 19–25 October. Completed: v1, v2, v3, v8; v4 no-show, v5 cancelled.
WEEK = [
    # Monday 00:00 CEST = Sunday 22:00 UTC: the first minute of the period is in it.
    visit(
        1,
        1,
        ANNA,
        berlin(2026, 10, 19, 0, 0),
        "20.00",
        previous=(berlin(2026, 9, 20), ANNA, "20.00"),
    ),
    visit(2, 2, BEN, berlin(2026, 10, 21, 12), "25.00"),  # a first visit ever: a new client
    # Sunday 23:30 CET = 22:30 UTC, after the clocks went back: still the period's last day.
    visit(
        3,
        3,
        BEN,
        berlin(2026, 10, 25, 23, 30),
        "30.01",
        previous=(berlin(2026, 10, 1), ANNA, "30.00"),
    ),
    visit(
        8, 8, BEN, berlin(2026, 10, 24, 15), "25.01", previous=(berlin(2026, 6, 1), BEN, "25.00")
    ),
    visit(4, 4, ANNA, berlin(2026, 10, 22, 10), "20.00", status="no_show"),
    visit(5, 5, ANNA, berlin(2026, 10, 23, 10), "20.00", status="cancelled"),
    # Monday 26 October 00:00 CET (= Sunday 23:00 UTC) is D itself: ignored.
    visit(6, 6, ANNA, berlin(2026, 10, 26, 0, 0), "100.00"),
    # Sunday 18 October 23:59 CEST: the week before.
    visit(
        7,
        7,
        BEN,
        berlin(2026, 10, 18, 23, 59),
        "20.00",
        previous=(berlin(2026, 9, 1), BEN, "20.00"),
    ),
    visit(
        9, 9, BEN, berlin(2026, 10, 14, 11), "20.00", previous=(berlin(2026, 9, 2), BEN, "20.00")
    ),
]

FEEDBACK = [
    # Given in the period: Anna 5, 5, 4, 4, 4, 4, 4 (sum 30); Ben 3, an open complaint.
    rating(1, ANNA, 5, berlin(2026, 10, 19, 9)),
    rating(11, ANNA, 5, berlin(2026, 10, 20, 9)),
    *[rating(12 + n, ANNA, 4, berlin(2026, 10, 21 + n, 9)) for n in range(5)],
    rating(2, BEN, 3, berlin(2026, 10, 25, 23, 45), status="open"),
    # Outside the period: given on D, and the evening before it began.
    rating(20, ANNA, 1, berlin(2026, 10, 26, 0, 30), status="open"),
    rating(21, ANNA, 1, berlin(2026, 10, 18, 23), status="resolved", resolved=berlin(2026, 10, 20)),
    # Old complaints: resolved only after D (still open as of D), and resolved before D.
    rating(22, BEN, 2, berlin(2026, 9, 1), status="resolved", resolved=berlin(2026, 10, 27)),
    rating(23, BEN, 2, berlin(2026, 9, 2), status="resolved", resolved=berlin(2026, 10, 10)),
]


def history(**parts: Any) -> History:
    rows: dict[str, Any] = {"visits": [], "clients": [], "feedback": [], "winbacks": []}
    return History(**(rows | parts))


def test_the_week_figures_with_visits_on_the_edges_of_a_dst_week() -> None:
    digest = weekly_digest(
        history(visits=WEEK, feedback=FEEDBACK), as_of=AS_OF, tz=BERLIN, masters=MASTERS
    )
    figures = digest.as_json()

    assert (figures["period_start"], figures["period_end"]) == ("2026-10-19", "2026-10-25")
    # v1, v2, v3, v8 — v6 (on D) and v7 (the 18th, 23:59) are outside.
    assert figures["visits_completed"] == 4
    # 20.00 + 25.00 + 30.01 + 25.01 = 100.02; / 4 = 25.005 → half-up 25.01 (not 25.00).
    assert figures["revenue"] == "100.02"
    assert figures["average_check"] == "25.01"
    assert figures["new_clients"] == 1  # client 2
    assert figures["returning_share"] == 0.75  # v1, v3, v8 of 4
    # One no-show among 4 completed + 1 no-show = 0.2; one cancellation.
    assert (figures["no_shows"], figures["no_show_rate"], figures["cancellations"]) == (1, 0.2, 1)
    # 8 ratings in the period: 30 + 3 = 33; 33 / 8 = 4.125 → half-up 4.13; one ≤ 3.
    assert (figures["ratings"], figures["rating_average"], figures["low_ratings"]) == (8, 4.13, 1)
    # Ben's 3 from the period and the September complaint resolved only after D.
    assert figures["complaints_open"] == 2
    assert figures["staff"] == [
        # Anna served v1; clients came back after her on v1 and v3 (v3 served by Ben).
        # 30 / 7 = 4.2857… → 4.29.
        {"name": "Anna", "visits": 1, "revenue": "20.00", "rating_average": 4.29, "returns": 2},
        # Ben served v2, v3, v8: 25.00 + 30.01 + 25.01 = 80.02; only v8 came back to him.
        {"name": "Ben", "visits": 3, "revenue": "80.02", "rating_average": 3.0, "returns": 1},
    ]


def test_the_open_complaints_are_listed_oldest_first() -> None:
    digest = weekly_digest(history(feedback=FEEDBACK), as_of=AS_OF, tz=BERLIN, masters=MASTERS)
    assert [(f.client_name, f.rating) for f in digest.open_complaints] == [
        ("Client 22", 2),
        ("Client 2", 3),
    ]


def test_a_master_whose_returns_fell_against_the_week_before_is_named() -> None:
    # Ben: 1 return this week (v8), 2 the week before (v7 on the 18th at 23:59, v9).
    # Anna: 2 this week, 0 before — up, not named.
    fell = masters_with_fewer_returns(WEEK, AS_OF, BERLIN, MASTERS)
    assert [(now.name, now.returns, before.returns) for now, before in fell] == [("Ben", 1, 2)]


def test_an_empty_period_gives_zeros_and_nulls() -> None:
    figures = weekly_digest(history(), as_of=AS_OF, tz=BERLIN, masters=MASTERS).as_json()
    assert figures == {
        "period_start": "2026-10-19",
        "period_end": "2026-10-25",
        "visits_completed": 0,
        "revenue": "0.00",
        "average_check": "0.00",
        "new_clients": 0,
        "returning_share": None,
        "no_shows": 0,
        "no_show_rate": None,
        "cancellations": 0,
        "segments": {"hot": 0, "warm": 0, "sleeping": 0, "prospects": 0},
        "second_visit_rate": None,
        "rating_average": None,
        "ratings": 0,
        "low_ratings": 0,
        "complaints_open": 0,
        "winback": {
            "offered": 0,
            "offered_returned": 0,
            "held_out": 0,
            "held_out_returned": 0,
            "uplift": None,
        },
        "pareto_top20_share": None,
        "staff": [
            {"name": "Anna", "visits": 0, "revenue": "0.00", "rating_average": None, "returns": 0},
            {"name": "Ben", "visits": 0, "revenue": "0.00", "rating_average": None, "returns": 0},
        ],
    }


def test_segments_as_of_d_count_days_between_local_dates() -> None:
    clients = [
        # Last visit Sunday 25 Oct 23:30 CET (22:30 UTC): 1 day → hot.
        ClientRow(1, True, berlin(2026, 10, 25, 23, 30), None),
        ClientRow(2, True, berlin(2026, 9, 26, 0, 15), None),  # 30 days → hot
        ClientRow(3, True, berlin(2026, 9, 25, 23, 50), None),  # 31 days → warm
        ClientRow(4, True, berlin(2026, 6, 28), None),  # 120 days → warm
        ClientRow(5, True, berlin(2026, 6, 27), None),  # 121 days → sleeping
        ClientRow(6, True, None, None),  # never came → prospect
        ClientRow(7, True, None, None),
        ClientRow(8, False, berlin(2026, 10, 20), Decimal("10")),  # deleted: not counted
    ]
    assert segment_counts(clients, AS_OF, BERLIN) == {
        Segment.hot: 2,
        Segment.warm: 2,
        Segment.sleeping: 1,
        Segment.prospect: 2,
    }


def test_second_visit_rate_of_the_clients_first_seen_60_to_90_days_ago() -> None:
    # Cohort: first completed visit in [D−90, D−60) = [28 July, 27 August).
    visits = [
        visit(1, 1, ANNA, berlin(2026, 7, 28, 10)),  # first on the cohort's first day
        visit(2, 1, ANNA, berlin(2026, 9, 26, 10), previous=(berlin(2026, 7, 28, 10), ANNA, "20")),
        visit(3, 2, ANNA, berlin(2026, 8, 26, 19)),  # first on the cohort's last day
        visit(4, 2, ANNA, berlin(2026, 10, 25, 10), previous=(berlin(2026, 8, 26, 19), ANNA, "20")),
        visit(5, 3, ANNA, berlin(2026, 8, 1, 10)),  # back after 61 days: too late
        visit(6, 3, ANNA, berlin(2026, 10, 1, 10), previous=(berlin(2026, 8, 1, 10), ANNA, "20")),
        visit(7, 4, ANNA, berlin(2026, 7, 27, 10)),  # the day before the cohort
        visit(8, 5, ANNA, berlin(2026, 8, 27, 10)),  # the day after it
        visit(9, 6, ANNA, berlin(2026, 8, 5, 10), previous=(berlin(2026, 3, 1), ANNA, "20")),
    ]
    # Clients 1 (60 days), 2 (60 days) and 3 (61 days); client 6 came before: 2 / 3.
    assert second_visit_rate(visits, AS_OF, BERLIN) == Decimal("0.667")
    assert second_visit_rate(visits[6:8], AS_OF, BERLIN) is None


def test_winback_uplift_compares_offered_and_held_out_return_rates() -> None:
    # Decisions over [D−90, D−30) = [28 July, 26 September).
    decisions = [
        WinbackDecision(1, berlin(2026, 8, 1, 10), held_out=False),  # back on day 30
        WinbackDecision(2, berlin(2026, 8, 5, 10), held_out=False),  # back on day 31: no
        WinbackDecision(3, berlin(2026, 9, 25, 18), held_out=False),  # last day; visit before it
        WinbackDecision(9, berlin(2026, 9, 26, 10), held_out=False),  # outside the window
        WinbackDecision(4, berlin(2026, 8, 10, 10), held_out=True),  # back on day 10
        WinbackDecision(5, berlin(2026, 8, 12, 10), held_out=True),
        WinbackDecision(6, berlin(2026, 8, 14, 10), held_out=True),
        WinbackDecision(7, berlin(2026, 8, 16, 10), held_out=True),
    ]
    visits = [
        visit(1, 1, ANNA, berlin(2026, 8, 31, 10)),
        visit(2, 2, ANNA, berlin(2026, 9, 5, 10)),
        visit(3, 3, ANNA, berlin(2026, 9, 25, 11)),  # the morning before the decision
        visit(4, 4, ANNA, berlin(2026, 8, 20, 10)),
        visit(5, 5, ANNA, berlin(2026, 8, 20, 10), status="no_show"),
        visit(9, 9, ANNA, berlin(2026, 9, 27, 10)),
    ]
    winback = winback_effect(decisions, visits, AS_OF, BERLIN)
    assert (winback.offered, winback.offered_returned) == (3, 1)
    assert (winback.held_out, winback.held_out_returned) == (4, 1)
    # 1/3 − 1/4 = 1/12 = 0.0833… → 0.083.
    assert winback.uplift == Decimal("0.083")
    assert winback_effect(decisions[:3], visits, AS_OF, BERLIN).uplift is None


def test_pareto_takes_the_top_fifth_rounded_up_and_ties_do_not_matter() -> None:
    # 11 clients → the top ceil(11 / 5) = 3: 100 + 60 + 60 of 100 + 3×60 + 7×20 = 420.
    # The third place is a tie between three 60s: any of them gives the same 220.
    revenues = [Decimal(v) for v in ("60", "20", "100", "60", "20", "60", *["20"] * 5)]
    assert pareto_top20_share(revenues) == Decimal("0.524")  # 220 / 420 = 0.5238…
    # 5 clients → the top 1: 9 of 9 + 2 + 2 + 2 + 1 = 16; 9 / 16 = 0.5625 → half-up 0.563.
    assert pareto_top20_share([Decimal(v) for v in (2, 9, 2, 1, 2)]) == Decimal("0.563")
    assert pareto_top20_share([]) is None


def test_the_chart_points_are_seven_day_weeks_ending_before_d() -> None:
    weeks = weekly_points(WEEK, AS_OF, BERLIN)
    assert len(weeks) == 12
    assert (weeks[0].start, weeks[-1].start) == (date(2026, 8, 3), date(2026, 10, 19))
    # The last week: new v2; returning v1, v3, v8. The one before: v7 and v9 returning.
    assert (weeks[-1].new, weeks[-1].returning, weeks[-1].returning_share) == (
        1,
        3,
        Decimal("0.750"),
    )
    assert (weeks[-2].new, weeks[-2].returning) == (0, 2)
    assert weeks[0].returning_share is None  # no visits that week


# --- From the database, through `regulars digest` ----------------------------------------

CONFIG = str(Path(__file__).resolve().parent.parent / "business.example.toml")


async def _shop(path: Path, config: BusinessConfig) -> None:
    """A Moscow week, 16–22 November 2026, in the database."""
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    ids: dict[str, int] = {}
    for name in ("Anna", "Boris", "Vera", "Gleb"):
        made = await add_client(core, name=name, phone=f"+7916000000{len(ids)}")
        assert made.id is not None
        ids[name] = made.id
    for client, master, service, start, status in [
        ("Anna", "artem", "haircut", utc_visit(2026, 10, 20, 12), "completed"),
        # Monday 00:00 in Moscow, the period's first minute; Anna's last visit was Артём's.
        ("Anna", "ilya", "haircut", utc_visit(2026, 11, 16, 0), "completed"),
        ("Boris", "marina", "kids", utc_visit(2026, 11, 22, 23, 30), "completed"),  # a first
        ("Vera", "artem", "haircut", utc_visit(2026, 11, 23, 0), "completed"),  # on D: ignored
        ("Gleb", "artem", "haircut", utc_visit(2026, 11, 18, 12), "no_show"),
    ]:
        await add_visit(
            core, client_id=ids[client], master=master, service=service, start=start, status=status
        )
    async with core.db.transaction() as session:
        # What marking a visit or an import does: the clients' figures follow their visits.
        return_days = {s.id: s.return_interval_days for s in core.deps.catalog.services.values()}
        await refresh_client_stats(session=session, tz=core.config.tz, return_days=return_days)
        boris_visit = (
            await session.exec(select(Visit).where(Visit.client_id == ids["Boris"]))
        ).one()
        session.add(
            Feedback(
                visit_id=boris_visit.id or 0,
                rating=2,
                comment="Too short",
                status="open",
                created_at=utc_visit(2026, 11, 22, 23, 50),
            )
        )
    await db.dispose()


def test_regulars_digest_prints_the_figures_as_json_and_draws_the_chart(
    tmp_path: Path, config: BusinessConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    asyncio.run(_shop(path, config))
    capsys.readouterr()
    chart = tmp_path / "chart.png"

    args = ["digest", "--db", str(path), "--config", CONFIG, "--as-of", "2026-11-23"]
    assert main([*args, "--json", "--chart", str(chart)]) == 0

    figures = json.loads(capsys.readouterr().out)
    assert list(figures) == [
        "period_start", "period_end", "visits_completed", "revenue", "average_check",
        "new_clients", "returning_share", "no_shows", "no_show_rate", "cancellations",
        "segments", "second_visit_rate", "rating_average", "ratings", "low_ratings",
        "complaints_open", "winback", "pareto_top20_share", "staff",
    ]  # fmt: skip
    assert (figures["period_start"], figures["period_end"]) == ("2026-11-16", "2026-11-22")
    # Anna's 1800 (returning) and Boris's 1200 (new); Vera's visit on D does not count.
    assert (figures["visits_completed"], figures["revenue"], figures["average_check"]) == (
        2,
        "3000.00",
        "1500.00",
    )
    assert (figures["new_clients"], figures["returning_share"]) == (1, 0.5)
    # Gleb's no-show: 1 / (2 + 1) = 0.333.
    assert (figures["no_shows"], figures["no_show_rate"]) == (1, 0.333)
    # Anna 7 days, Boris 1 day → hot; Vera (her visit is on D) and Gleb never came.
    assert figures["segments"] == {"hot": 2, "warm": 0, "sleeping": 0, "prospects": 2}
    assert (figures["ratings"], figures["rating_average"], figures["complaints_open"]) == (
        1,
        2.0,
        1,
    )
    # Over the year: Anna 3600, Boris 1200; the top ceil(2 / 5) = 1 client: 3600 / 4800.
    assert figures["pareto_top20_share"] == 0.75
    assert figures["staff"] == [
        # Anna came back after Артём's haircut, to Илья.
        {"name": "Артём", "visits": 0, "revenue": "0.00", "rating_average": None, "returns": 1},
        {"name": "Илья", "visits": 1, "revenue": "1800.00", "rating_average": None, "returns": 0},
        {"name": "Марина", "visits": 1, "revenue": "1200.00", "rating_average": 2.0, "returns": 0},
    ]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 10_000  # a drawn chart, not an empty canvas
