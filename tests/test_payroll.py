"""The masters' pay for returns (docs/digest.md, "Payroll"): 10 % bonus, a quarter of it
deferred until the client comes back within 60 days, 500 for a sleeping client brought
back. Worked out by hand in Moscow time, as of Tuesday 1 December 2026."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.composition import build_core_on
from domain.business import BusinessConfig
from domain.digest import Period, VisitRow
from domain.payroll import PaidVisit, PayRules, month_period, payroll, weekly_return_pay
from storage.db import Database, create_engine, sqlite_url_for
from tests.helpers import add_client, add_visit, utc_visit

MOSCOW = ZoneInfo("Europe/Moscow")
RULES = PayRules(
    bonus_percent=Decimal(10),
    return_share=Decimal("0.25"),
    return_within_days=60,
    winback_bonus=Decimal(500),
)
TODAY = date(2026, 12, 1)
ANNA, BEN = 1, 2


def paid(
    master: int, start: datetime, price: str, *, previous: datetime | None = None,
    following: datetime | None = None,
) -> PaidVisit:  # fmt: skip
    return PaidVisit(master, start, Decimal(price), previous, following)


def test_october_deferred_parts_are_released_or_forfeited_and_a_winback_is_paid() -> None:
    visits = [
        # No return by 30 November (1 Oct + 60 days): the 45.00 deferred is forfeited.
        paid(ANNA, utc_visit(2026, 10, 1, 12), "1800"),
        # Back on 1 December, exactly 60 days after 2 October: released. The client's last
        # visit before was 1 June, 123 days earlier: a sleeping client brought back, +500.
        paid(
            ANNA,
            utc_visit(2026, 10, 2, 12),
            "1800",
            previous=utc_visit(2026, 6, 1, 12),
            following=utc_visit(2026, 12, 1, 10),
        ),
        # Back on 1 December, 61 days after 1 October: too late, forfeited. Away 120 days
        # before (3 June): not more than 120, no win-back bonus.
        paid(
            ANNA,
            utc_visit(2026, 10, 1, 15),
            "1800",
            previous=utc_visit(2026, 6, 3, 12),
            following=utc_visit(2026, 12, 1, 11),
        ),
    ]
    [anna, ben] = payroll(
        visits, masters={ANNA: "Anna", BEN: "Ben"}, rules=RULES, today=TODAY, tz=MOSCOW
    )
    # 3 × 1800 = 5400; bonus 10 % = 540; paid now 75 % = 405; deferred 3 × 45.
    assert anna.as_json() == {
        "name": "Anna",
        "visits": 3,
        "revenue": "5400.00",
        "bonus": "540.00",
        "paid_now": "405.00",
        "released": "45.00",
        "pending": "0.00",
        "forfeited": "90.00",
        "winbacks": 1,
        "winback_bonuses": "500.00",
        "total": "950.00",  # 405 + 45 + 500
    }
    assert (ben.visits, ben.total) == (0, Decimal("0.00"))


def test_november_deferred_parts_wait_while_the_client_may_still_come() -> None:
    visits = [
        # 30 November 23:30 in Moscow is still November: 60 days not over, pending.
        paid(BEN, utc_visit(2026, 11, 30, 23, 30), "1234.50"),
        paid(BEN, utc_visit(2026, 11, 2, 12), "1000", following=utc_visit(2026, 11, 30, 12)),
    ]
    [ben] = payroll(visits, masters={BEN: "Ben"}, rules=RULES, today=TODAY, tz=MOSCOW)
    # Bonus 123.45 + 100 = 223.45; deferred 30.8625 (pending) and 25 (released);
    # paid now 92.5875 + 75 = 167.5875 → 167.59; pending 30.8625 → 30.86.
    assert (ben.bonus, ben.paid_now, ben.released, ben.pending, ben.forfeited) == (
        Decimal("223.45"),
        Decimal("167.59"),
        Decimal("25.00"),
        Decimal("30.86"),
        Decimal("0.00"),
    )
    assert ben.total == Decimal("192.59")  # 167.59 + 25.00


def test_a_month_is_its_local_dates() -> None:
    assert month_period("2026-12") == Period(date(2026, 12, 1), date(2027, 1, 1))
    assert month_period("2026-02").last == date(2026, 2, 28)


def test_the_weekly_line_credits_the_master_the_client_came_back_after() -> None:
    week = Period(date(2026, 11, 23), date(2026, 11, 30))

    def row(
        n: int, master: int, start: datetime, previous: tuple[datetime, int] | None
    ) -> VisitRow:
        return VisitRow(
            n, n, master, start, "completed", Decimal(2000),
            previous[0] if previous else None, previous[1] if previous else None,
            Decimal(1800) if previous else None,
        )  # fmt: skip

    visits = [
        # Back to Ben after 30 days with Anna: Anna's deferred 1800 × 10 % × 0.25 = 45.
        row(1, BEN, utc_visit(2026, 11, 24, 12), (utc_visit(2026, 10, 25, 12), ANNA)),
        # Back after 150 days: no release (over 60), but Ben brought a sleeping client back.
        row(2, BEN, utc_visit(2026, 11, 25, 12), (utc_visit(2026, 6, 28, 12), ANNA)),
        row(3, ANNA, utc_visit(2026, 11, 30, 0), (utc_visit(2026, 11, 1, 12), ANNA)),  # next week
    ]
    lines = weekly_return_pay(
        visits, period=week, masters={ANNA: "Anna", BEN: "Ben"}, rules=RULES, tz=MOSCOW
    )
    assert [(p.returns_released, p.released, p.winbacks, p.winback_bonuses) for p in lines] == [
        (1, Decimal("45.00"), 0, Decimal("0.00")),
        (0, Decimal("0.00"), 1, Decimal("500.00")),
    ]


async def _history(path: Path, config: BusinessConfig) -> None:
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    client = await add_client(core, name="Anna", phone="+79160000001")
    assert client.id is not None
    for day, master in ((2, "artem"), (20, "ilya")):
        await add_visit(
            core,
            client_id=client.id,
            master=master,
            service="haircut",
            start=utc_visit(2026, 11, day, 12),
        )
    await db.dispose()


def test_regulars_payroll_prints_the_month_per_master(
    tmp_path: Path,
    config: BusinessConfig,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.reports.utc_now", lambda: utc_visit(2026, 12, 1, 12))
    shop = tmp_path / "business.toml"
    example = (Path(__file__).resolve().parent.parent / "business.example.toml").read_text()
    shop.write_text(
        example + "\n[payroll]\nbonus_percent = 10\nreturn_share = 0.25\nwinback_bonus = 500\n",
        encoding="utf-8",
    )
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    asyncio.run(_history(path, config))
    capsys.readouterr()

    args = ["payroll", "--db", str(path), "--config", str(shop), "--month", "2026-11"]
    assert main([*args, "--json"]) == 0
    staff = {m["name"]: m for m in json.loads(capsys.readouterr().out)["staff"]}
    # Артём's haircut on 2 November (1800): the client came back on the 20th, released.
    assert (staff["Артём"]["paid_now"], staff["Артём"]["released"]) == ("135.00", "45.00")
    # Илья's on the 20th: nobody came back yet, and on 1 December 60 days are not over.
    assert (staff["Илья"]["paid_now"], staff["Илья"]["pending"]) == ("135.00", "45.00")

    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "Артём: визитов — 1, выручка 1\xa0800\xa0₽, бонус 180\xa0₽" in shown


def test_regulars_payroll_without_a_payroll_section_says_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    config = str(Path(__file__).resolve().parent.parent / "business.example.toml")
    assert main(["payroll", "--db", str(path), "--config", config, "--month", "2026-11"]) == 2
    assert "add a [payroll] section to business.toml" in capsys.readouterr().err
