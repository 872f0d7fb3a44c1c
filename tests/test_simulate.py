from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.composition import build_core_on
from bot.tools.demo_history import seed_history
from domain.business import BusinessConfig
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import Client, ClientIdentity, Outbox, Visit
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
    sent = [m for m in lines if m["status"] == "sent"]
    assert [(m["at"], m["kind"], m["client"], m["staff"], m["channel"]) for m in sent] == [
        ("2026-11-23T15:00:00+03:00", "reminder", "+79160000001", None, "telegram"),
        ("2026-11-24T13:00:00+03:00", "reminder", "+79160000001", None, "telegram"),
    ]
    assert lines[0]["name"] == "Anna"
    assert lines[0]["text"].startswith("Reminder: Fade with Ilya, on Tuesday, November 24, 15:00.")
    assert lines[0]["buttons"] == ["I'll be there", "Reschedule", "Cancel visit"]
    # The simulation ran on a copy: the real outbox is untouched.
    assert asyncio.run(_outbox(path)) == []


def test_simulate_needs_a_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["simulate", "--db", str(tmp_path / "missing.db"), "--days", "1", "--config", CONFIG]
    )
    assert code == 2
    assert "no database at" in capsys.readouterr().err


async def _whatsapp_clients(path: Path, config: BusinessConfig) -> None:
    """Two WhatsApp clients booked for Tuesday evening: Olga wrote an hour before the simulation,
    Pavel three days before (outside WhatsApp's 24-hour window)."""
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    start = utc_visit(2026, 11, 23, 0)
    for n, (name, wrote) in enumerate((("Olga", timedelta(hours=1)), ("Pavel", timedelta(days=3)))):
        client = await add_client(
            core,
            name=name,
            phone=f"+7916000000{n + 1}",
            whatsapp_id=f"7916000000{n + 1}",
            preferred_channel="whatsapp",
            locale="en",
            consent_at=start - timedelta(days=30),
            last_inbound_whatsapp_at=start - wrote,
        )
        assert client.id is not None
        await add_visit(
            core,
            client_id=client.id,
            master="ilya",
            service="fade",
            start=utc_visit(2026, 11, 24, 18 + n),
            status="booked",
            created_at=start - timedelta(days=5),
        )
    await db.dispose()


def _with_reminder_template(tmp_path: Path) -> str:
    text = (ROOT / "business.example.toml").read_text(encoding="utf-8")
    text += (
        '\n[whatsapp.templates.reminder]\nname = "visit_reminder"\nlanguage = "en"\n'
        'params = ["name", "service", "when"]\n'
    )
    path = tmp_path / "business.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("template", [False, True])
def test_simulate_keeps_to_whatsapps_24_hour_window_and_templates(
    tmp_path: Path,
    config: BusinessConfig,
    capsys: pytest.CaptureFixture[str],
    template: bool,
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    asyncio.run(_whatsapp_clients(path, config))
    shop = _with_reminder_template(tmp_path) if template else CONFIG
    capsys.readouterr()

    args = ["simulate", "--db", str(path), "--config", shop, "--from", "2026-11-23", "--days", "1"]
    assert main([*args, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    outcome = {(m["name"], m["kind"]): (m["status"], m["reason"]) for m in lines}
    # Olga wrote within 24 hours: her reminder goes free-form either way.
    assert outcome[("Olga", "reminder")] == ("sent", None)
    if template:
        assert outcome[("Pavel", "reminder")] == ("sent", None)
    else:
        status, reason = outcome[("Pavel", "reminder")]
        assert status == "skipped"
        assert "no approved WhatsApp template for reminder outside the 24-hour window" in reason

    # The preview for a person leads with the counts, then names each message.
    assert main(args) == 0
    shown = capsys.readouterr().out
    skipped = 0 if template else 1
    assert f"in all: sent {2 - skipped}, skipped {skipped}, held out 0, failed 0" in shown
    assert "Pavel +79160000002 (whatsapp)" in shown


def test_simulate_refuses_a_number_of_days_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    with pytest.raises(SystemExit) as stop:
        main(["simulate", "--db", str(path), "--config", CONFIG, "--days", "0"])
    assert stop.value.code == 2
    assert "give a number of days from 1 to 366" in capsys.readouterr().err


async def _demo_shop(path: Path, config: BusinessConfig, now: datetime) -> None:
    db = Database(create_engine(sqlite_url_for(str(path))))
    core = await build_core_on(db=db, config=config)
    await seed_history(db=core.db, catalog=core.deps.catalog, config=config, now=now)
    await db.dispose()


async def _open_visits_and_inbound(
    path: Path,
) -> tuple[list[Visit], dict[str, Client], dict[int, datetime | None]]:
    """Open visits, clients by phone, and when each client last wrote on WhatsApp."""
    db = Database(create_engine(sqlite_url_for(str(path))))
    async with db.reading() as session:
        visits = list((await session.exec(select(Visit))).all())
        clients = {c.phone or "": c for c in (await session.exec(select(Client))).all()}
        chats = (
            await session.exec(select(ClientIdentity).where(ClientIdentity.channel == "whatsapp"))
        ).all()
    await db.dispose()
    open_ = [v for v in visits if v.status in ("booked", "confirmed")]
    return open_, clients, {chat.client_id: chat.last_inbound_at for chat in chats}


def test_a_demo_week_sends_no_offer_over_an_open_visit_and_nothing_whatsapp_would_refuse(
    tmp_path: Path, config: BusinessConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.db"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    now = utc_visit(2026, 12, 1, 8)
    asyncio.run(_demo_shop(path, config, now))
    open_visits, clients, wrote = asyncio.run(_open_visits_and_inbound(path))
    capsys.readouterr()

    assert main(["simulate", "--db", str(path), "--config", CONFIG, "--from", "2026-12-01",
                 "--days", "7", "--json"]) == 0  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    sent = [m for m in lines if m["status"] == "sent"]
    assert {m["kind"] for m in sent} >= {"reminder", "return_nudge", "winback"}
    tz = config.tz
    for message in sent:
        at = datetime.fromisoformat(message["at"])
        client = clients.get(message["client"] or "")
        if message["kind"] in ("return_nudge", "warm_offer", "winback"):
            assert client is not None
            # Open at that moment: booked, and not yet closed at 23:00 of its day.
            still_open = [
                v
                for v in open_visits
                if v.client_id == client.id
                and at < datetime.combine(v.ends_at.astimezone(tz).date(), time(23), tz)
            ]
            assert still_open == [], (message["kind"], message["at"], message["client"])
        if message["channel"] == "whatsapp":
            # No templates in the example config: only inside the 24-hour window.
            assert client is not None and client.id is not None
            last_inbound = wrote.get(client.id)
            assert last_inbound is not None and at - last_inbound < timedelta(hours=24), message
    refused = [m for m in lines if m["status"] == "skipped" and "template" in (m["reason"] or "")]
    assert refused, "the demo has WhatsApp clients outside the window: their messages are skipped"
