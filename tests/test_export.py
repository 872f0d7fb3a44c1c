"""`regulars export`: CSV files Excel opens with Cyrillic intact, and an XLSX workbook."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.composition import build_core_on
from domain.business import BusinessConfig
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import Feedback, LoyaltyEntry
from tests.helpers import LONG_AGO, add_client, add_visit, utc_visit

CONFIG = str(Path(__file__).resolve().parent.parent / "business.example.toml")


async def _shop(path: Path, config: BusinessConfig) -> None:
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    client = await add_client(core, name="Анна Петрова", phone="+79160000001")
    assert client.id is not None
    visit = await add_visit(
        core,
        client_id=client.id,
        master="marina",
        service="haircut",
        start=utc_visit(2026, 11, 20, 15, 30),
    )
    beard = core.deps.catalog.service_by_key("beard")  # added to the haircut (pairs_with)
    assert beard is not None
    async with core.db.transaction() as session:
        visit.addon_service_id = beard.id
        session.add(visit)
        session.add(
            Feedback(
                visit_id=visit.id or 0,
                rating=2,
                comment="Коротко",
                status="open",
                created_at=utc_visit(2026, 11, 20, 19),
            )
        )
        session.add(
            LoyaltyEntry(
                client_id=client.id, delta=1, reason="visit", visit_id=visit.id, created_at=LONG_AGO
            )
        )
    await db.dispose()


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))


def test_export_writes_csv_with_a_bom_and_local_times_and_an_xlsx(
    tmp_path: Path, config: BusinessConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    asyncio.run(_shop(path, config))
    out = tmp_path / "export"

    assert main(["export", "--db", str(path), "--config", CONFIG, "--out", str(out), "--xlsx"]) == 0

    printed = capsys.readouterr().out
    assert f"{out / 'visits.csv'}: 1 rows" in printed
    assert (out / "clients.csv").read_bytes().startswith("\ufeffid,name,phone".encode())
    [client] = _csv(out / "clients.csv")
    assert (client["name"], client["phone"]) == ("Анна Петрова", "+79160000001")
    [visit] = _csv(out / "visits.csv")
    # 15:30 in Moscow, as the shop's clock showed it; money with two decimals.
    assert (visit["master"], visit["start"], visit["price"]) == (
        "Марина",
        "2026-11-20 15:30:00",
        "1800.00",
    )
    [feedback] = _csv(out / "feedback.csv")
    assert (feedback["rating"], feedback["comment"], feedback["status"]) == ("2", "Коротко", "open")
    [loyalty] = _csv(out / "loyalty.csv")
    assert (loyalty["kind"], loyalty["delta"], loyalty["reason"]) == ("earn", "1", "visit")

    book = load_workbook(out / "regulars.xlsx", read_only=True)
    assert book.sheetnames == ["clients", "visits", "feedback", "loyalty"]
    rows = list(book["visits"].iter_rows(values_only=True))
    assert rows[0][:3] == ("id", "client_id", "phone")
    assert rows[1][3:6] == ("Марина", "Мужская стрижка", "Моделирование бороды")
    assert str(rows[1][6]) == "2026-11-20 15:30:00"
