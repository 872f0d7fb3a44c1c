"""`GET /healthz` and `GET /metrics` on the bot's web server.

/healthz answers 200 when the database answers and the scheduler ticked lately, 503
otherwise, with what it checked (and the last successful send) as JSON. /metrics is the
Prometheus text format: what this process counted (updates handled, turn latency) and what
the database says for every replica (messages sent / failed / skipped by kind, the
outbox backlog, how late sent messages went out)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, func, select

from storage.db import Database
from storage.tables import Outbox, OutboxStatus

SCHEDULER_LATE = timedelta(minutes=3)  # the planner ticks every minute
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Metrics:
    """This process's counters, on a registry of its own (none is made at import)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.updates = Counter(
            "regulars_updates", "Inbound updates handled", ["channel"], registry=self.registry
        )
        self.turn_seconds = Histogram(
            "regulars_turn_seconds",
            "Time to handle one inbound update",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_turn(self, channel: str, seconds: float) -> None:
        self.updates.labels(channel).inc()
        self.turn_seconds.labels(channel).observe(seconds)


class OutboxCollector(Collector):
    """Read at every scrape from the database, so the figures are the same whichever
    replica answers. `figures` is filled by the route before the scrape renders."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_kind = GaugeMetricFamily(
            "regulars_messages", "Outbox messages by kind and status", labels=["kind", "status"]
        )
        for (kind, status), count in sorted(self.figures.get("by_kind", {}).items()):
            by_kind.add_metric([kind, status], count)
        yield by_kind
        yield GaugeMetricFamily(
            "regulars_outbox_backlog",
            "Messages due and not yet sent",
            value=self.figures.get("backlog", 0),
        )
        yield GaugeMetricFamily(
            "regulars_send_delay_seconds",
            "Mean delay between due and sent, messages sent in the last hour",
            value=self.figures.get("delay", 0.0),
        )


async def _outbox_figures(db: Database, now: datetime) -> dict[str, Any]:
    async with db.reading() as session:
        grouped = await session.exec(
            select(Outbox.kind, Outbox.status, func.count()).group_by(
                col(Outbox.kind), col(Outbox.status)
            )
        )
        backlog = (
            await session.exec(
                select(func.count()).where(
                    col(Outbox.status).in_([OutboxStatus.pending, OutboxStatus.sending]),
                    col(Outbox.due_at) <= now,
                )
            )
        ).one()
        recent = await session.exec(
            select(Outbox.due_at, Outbox.sent_at).where(
                col(Outbox.status) == OutboxStatus.sent,
                col(Outbox.sent_at) >= now - timedelta(hours=1),
            )
        )
    delays = [(sent - due).total_seconds() for due, sent in recent.all() if sent and due]
    return {
        "by_kind": {(kind, status): count for kind, status, count in grouped.all()},
        "backlog": int(backlog or 0),
        "delay": sum(delays) / len(delays) if delays else 0.0,
    }


async def last_sent_at(db: Database) -> datetime | None:
    async with db.reading() as session:
        found = await session.exec(
            select(func.max(Outbox.sent_at)).where(col(Outbox.status) == OutboxStatus.sent)
        )
        return found.one()


def add_health_routes(
    web_app: web.Application,
    *,
    db: Database,
    metrics: Metrics,
    last_tick: Callable[[], datetime | None],
    clock: Callable[[], datetime],
) -> None:
    collector = OutboxCollector()
    metrics.registry.register(collector)

    async def healthz(request: web.Request) -> web.Response:
        now = clock()
        started = time.perf_counter()
        try:
            async with db.reading() as session:
                await session.exec(select(text("1")))
            database = "ok"
            sent = await last_sent_at(db)
        except (SQLAlchemyError, OSError) as error:
            database, sent = f"unreachable: {type(error).__name__}", None
        tick = last_tick()
        scheduler = "ok" if tick is not None and now - tick <= SCHEDULER_LATE else "stalled"
        healthy = database == "ok" and scheduler == "ok"
        body = {
            "status": "ok" if healthy else "failing",
            "database": database,
            "database_ms": round((time.perf_counter() - started) * 1000, 1),
            "scheduler": scheduler,
            "scheduler_last_tick": tick.isoformat() if tick else None,
            "last_successful_send": sent.isoformat() if sent else None,
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def scrape(request: web.Request) -> web.Response:
        try:
            collector.figures = await _outbox_figures(db, clock())
        except SQLAlchemyError:
            collector.figures = {}
        return web.Response(
            body=generate_latest(metrics.registry),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", scrape)
