"""`regulars simulate`: what the bot would send over the next days, on a copy of the
database, with the real planner and sender on a simulated clock."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from bot.composition import build_core
from domain.replies import Reply
from scheduler.delivery import Recipient
from storage.db import sqlite_url_for
from storage.tables import Client, Outbox, Staff


class SimulationError(Exception):
    """The simulation cannot run on this database."""


@dataclass
class RecordingDelivery:
    """A channel that keeps what it is given instead of sending it."""

    channel: str
    sent: list[tuple[str, Reply]] = field(default_factory=list)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.sent.append((recipient.address, reply))


def copy_sqlite(url: str, into: Path) -> str:
    """A consistent copy of the SQLite database behind `url` (even while the bot runs)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        raise SimulationError("simulate works on a SQLite database file (use --db FILE)")
    source = Path(parsed.database)
    if not source.exists():
        raise SimulationError(f"no database at {source}")
    target = into / "simulation.db"
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    return sqlite_url_for(str(target))


async def simulate(
    *,
    database_url: str,
    config_path: Path,
    start: date | None,
    days: int,
    step_minutes: int = 5,
    emit: Callable[[dict[str, Any]], None],
    today: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Counter[str]:
    """Run planner and sender minute by minute from local midnight of `start` for `days`
    days; every message the bot would send goes to `emit`. Returns the outbox outcomes."""
    with tempfile.TemporaryDirectory(prefix="regulars-sim-") as folder:
        url = copy_sqlite(database_url, Path(folder))
        core = await build_core(database_url=url, config_path=config_path)
        try:
            tz = core.config.tz
            first = start or today().astimezone(tz).date()
            clock = _Clock(datetime.combine(first, time(), tz).astimezone(UTC))
            channels = {name: RecordingDelivery(name) for name in ("telegram", "whatsapp")}
            engine = core.engine(
                channels=channels, clock=clock, paces=None, on_sent=_emitter(core, emit, channels)
            )
            end = clock.now + timedelta(days=days)
            while clock.now < end:
                await engine.plan()
                await engine.send()
                clock.now += timedelta(minutes=step_minutes)
            async with core.db.reading() as session:
                rows = await session.exec(
                    select(Outbox.status, func.count()).group_by(col(Outbox.status))
                )
                return Counter({status: count for status, count in rows.all()})
        finally:
            await core.close()


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _emitter(
    core: Any, emit: Callable[[dict[str, Any]], None], channels: dict[str, RecordingDelivery]
) -> Any:
    tz = core.config.tz

    async def on_sent(row: Outbox, recipient: Recipient, now: datetime) -> None:
        _, reply = channels[recipient.channel].sent[-1]
        async with core.db.reading() as session:
            client = await session.get(Client, recipient.client_id) if recipient.client_id else None
            staff = await session.get(Staff, recipient.staff_id) if recipient.staff_id else None
        emit(
            {
                "at": now.astimezone(tz).isoformat(),
                "kind": row.kind,
                "client": client.phone if client else None,
                "staff": staff.name if staff else None,
                "channel": recipient.channel,
                "text": reply.text,
                "buttons": [button.label for button in reply.flat_buttons],
            }
        )

    return on_sent


def print_line(message: dict[str, Any]) -> None:
    print(json.dumps(message, ensure_ascii=False))


def print_human(message: dict[str, Any]) -> None:
    who = message["client"] or message["staff"]
    when = message["at"][:16].replace("T", " ")
    print(f"{when}  {message['kind']:<16} → {who} ({message['channel']})")
    for line in message["text"].splitlines():
        print(f"      {line}")
    if message["buttons"]:
        print("      [" + "] [".join(message["buttons"]) + "]")
