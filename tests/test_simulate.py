from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.composition import build_core_on
from domain.business import BusinessConfig
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import Outbox
from tests.helpers import add_client, add_visit, utc_visit

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "business.example.toml")


async def _shop_with_a_booking(path: Path, config: BusinessConfig) -> None:
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    client = await add_client(
        core,
        name="Anna",
        phone="+79160000001",
        telegram_id=501,
        locale="en",
        consent_at=utc_visit(2026, 1, 1, 12),
        marketing_opt_in_at=utc_visit(2026, 1, 1, 12),
    )
    assert client.id is not None
    await add_visit(
        core,
        client_id=client.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 24, 15),
        status="booked",
        created_at=utc_visit(2026, 11, 1, 12),
    )
    await db.dispose()


async def _outbox(path: Path) -> list[Outbox]:
    db = Database(create_engine(sqlite_url_for(str(path))))
    async with db.reading() as session:
        rows = list((await session.exec(select(Outbox))).all())
    await db.dispose()
    return rows


def test_simulate_previews_the_days_ahead_without_touching_the_real_outbox(
    tmp_path: Path, config: BusinessConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    asyncio.run(_shop_with_a_booking(path, config))
    capsys.readouterr()

    code = main(
        [
            "simulate",
            "--db",
            str(path),
            "--config",
            CONFIG,
            "--from",
            "2026-11-23",
            "--days",
            "2",
            "--json",
        ]
    )

    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [(m["at"], m["kind"], m["client"], m["staff"], m["channel"]) for m in lines] == [
        ("2026-11-23T15:00:00+03:00", "reminder", "+79160000001", None, "telegram"),
        ("2026-11-24T13:00:00+03:00", "reminder", "+79160000001", None, "telegram"),
    ]
    assert lines[0]["text"].startswith("Reminder: Fade with Илья, on Tuesday, November 24, 15:00.")
    assert lines[0]["buttons"] == ["I'll be there", "Reschedule", "Cancel visit"]
    # The simulation ran on a copy: the real outbox is untouched.
    assert asyncio.run(_outbox(path)) == []


def test_simulate_needs_a_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["simulate", "--db", str(tmp_path / "missing.db"), "--days", "1", "--config", CONFIG]
    )
    assert code == 2
    assert "no database at" in capsys.readouterr().err
