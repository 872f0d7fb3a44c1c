"""`regulars simulate`: what the bot would send over the next days, on a copy of the
database, with the real planner and sender on a simulated clock. Delivery follows the
channels' own rules (WhatsApp's 24-hour window and templates), so a message the real bot
would not send is shown as skipped, with the reason."""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from bot.adapters.whatsapp_delivery import check_deliverable
from bot.clock import utc_now
from bot.composition import Core, build_core
from domain.business import BusinessConfig
from domain.replies import Reply
from scheduler.delivery import Recipient
from scheduler.engine import SimulatedClock, run_simulated
from storage.db import sqlite_url_for
from storage.tables import Client, Outbox, OutboxStatus, Staff

REPORTED = (OutboxStatus.sent, OutboxStatus.skipped, OutboxStatus.held_out, OutboxStatus.failed)


class SimulationError(Exception):
    """The simulation cannot run on this database."""


@dataclass
class RecordingDelivery:
    """A channel that keeps what it is given instead of sending it, after the checks the
    real channel would make."""

    channel: str
    config: BusinessConfig
    sent: list[tuple[str, Reply]] = field(default_factory=list)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        if self.channel == "whatsapp":
            check_deliverable(self.config, recipient, reply)
        self.sent.append((recipient.address, reply))


@dataclass
class Outcome:
    """Every message of the simulated days, in time order, and their tally."""

    messages: list[dict[str, Any]]

    @property
    def statuses(self) -> Counter[str]:
        return Counter(message["status"] for message in self.messages)

    def per_day_and_kind(self) -> dict[tuple[str, str], Counter[str]]:
        tally: dict[tuple[str, str], Counter[str]] = {}
        for message in self.messages:
            key = (message["at"][:10], message["kind"])
            tally.setdefault(key, Counter())[message["status"]] += 1
        return tally


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
    now: Callable[[], datetime] = utc_now,
) -> Outcome:
    """Run planner and sender from `start` (its local midnight; default: now) for `days`
    days on a copy of the database."""
    if days < 1:
        raise SimulationError("--days must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="regulars-sim-") as folder:
        url = copy_sqlite(database_url, Path(folder))
        core = await build_core(database_url=url, config_path=config_path)
        try:
            tz = core.config.tz
            if start is None:
                first = now().replace(second=0, microsecond=0)
            else:
                first = datetime.combine(start, time(), tz).astimezone(UTC)
            clock = SimulatedClock(first)
            channels = {
                name: RecordingDelivery(name, core.config) for name in ("telegram", "whatsapp")
            }
            sent: list[dict[str, Any]] = []
            engine = core.engine(
                channels=channels, clock=clock, paces=None, on_sent=_recorder(core, sent, channels)
            )
            async with core.db.reading() as session:
                before = (await session.exec(select(func.max(Outbox.id)))).one() or 0
            with _quiet_engine():
                await run_simulated(engine, clock, first + timedelta(days=days))
            messages = sent + await _not_sent(core, after_id=before)
            return Outcome(sorted(messages, key=lambda message: message["at"]))
        finally:
            await core.close()


@contextmanager
def _quiet_engine() -> Iterator[None]:
    """The engine's own log lines (stamped with the real clock) would mix into the preview."""
    logger = logging.getLogger("scheduler")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _recorder(
    core: Core, sent: list[dict[str, Any]], channels: dict[str, RecordingDelivery]
) -> Any:
    async def on_sent(row: Outbox, recipient: Recipient, now: datetime) -> None:
        _, reply = channels[recipient.channel].sent[-1]
        async with core.db.reading() as session:
            who = await _who(session, row)
        sent.append(
            _message(core, row, now, who, status=OutboxStatus.sent, channel=recipient.channel)
            | {"text": reply.text, "buttons": [button.label for button in reply.flat_buttons]}
        )

    return on_sent


async def _not_sent(core: Core, *, after_id: int) -> list[dict[str, Any]]:
    """What the simulated days planned but did not send: skipped (with the reason), held
    out, failed."""
    async with core.db.reading() as session:
        rows = (
            await session.exec(
                select(Outbox).where(
                    col(Outbox.id) > after_id,
                    col(Outbox.status).in_(REPORTED),
                    col(Outbox.status) != OutboxStatus.sent,
                )
            )
        ).all()
        return [
            _message(
                core,
                row,
                row.due_at,
                await _who(session, row),
                status=row.status,
                channel=row.channel,
                reason=row.last_error,
            )
            for row in rows
        ]


async def _who(session: Any, row: Outbox) -> tuple[Client | None, Staff | None]:
    client = await session.get(Client, row.client_id) if row.client_id else None
    staff = await session.get(Staff, row.staff_id) if row.staff_id else None
    return client, staff


def _message(
    core: Core,
    row: Outbox,
    at: datetime,
    who: tuple[Client | None, Staff | None],
    *,
    status: str,
    channel: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    client, staff = who
    return {
        "at": at.astimezone(core.config.tz).isoformat(),
        "kind": row.kind,
        "status": status,
        "client": client.phone if client else None,
        "name": client.name if client else None,
        "staff": staff.name if staff else None,
        "channel": channel,
        "text": None,
        "buttons": [],
        "reason": reason,
    }


def print_lines(outcome: Outcome) -> None:
    for message in outcome.messages:
        print(json.dumps(message, ensure_ascii=False))


def print_human(outcome: Outcome) -> None:
    """A summary first (per day and kind), then each message."""
    print("day         kind              sent  skipped  held out")
    for (day, kind), counts in sorted(outcome.per_day_and_kind().items()):
        print(
            f"{day}  {kind:<16} {counts[OutboxStatus.sent]:>5} "
            f"{counts[OutboxStatus.skipped]:>8} {counts[OutboxStatus.held_out]:>9}"
        )
    totals = outcome.statuses
    print(
        f"in all: sent {totals[OutboxStatus.sent]}, skipped {totals[OutboxStatus.skipped]}, "
        f"held out {totals[OutboxStatus.held_out]}, failed {totals[OutboxStatus.failed]}\n"
    )
    for message in outcome.messages:
        when = message["at"][:16].replace("T", " ")
        who = message["staff"] or " ".join(p for p in (message["name"], message["client"]) if p)
        status = "" if message["status"] == OutboxStatus.sent else f"  [{message['status']}]"
        print(f"{when}  {message['kind']:<16} → {who} ({message['channel'] or '—'}){status}")
        if message["reason"]:
            print(f"      {message['reason']}")
        for line in (message["text"] or "").splitlines():
            print(f"      {line}")
        if message["buttons"]:
            print("      [" + "] [".join(message["buttons"]) + "]")
