"""The retention engine: APScheduler only fires the ticks; planning and sending are plain
code that takes `now`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.business import BusinessConfig
from domain.text import Translator
from scheduler.delivery import Delivery
from scheduler.messages import Messages
from scheduler.planner import Planner, PlanResult
from scheduler.sender import (
    TELEGRAM_PACE,
    WHATSAPP_PACE,
    Pace,
    Sender,
    SendStats,
    SharedPacer,
)
from storage.catalog import Catalog
from storage.db import Database
from storage.locks import planner_turn

log = logging.getLogger(__name__)

DEFAULT_PACES: Mapping[str, Pace] = {"telegram": TELEGRAM_PACE, "whatsapp": WHATSAPP_PACE}
DRAIN_SECONDS = 10.0  # how long a stop waits for a tick in flight


@dataclass
class Engine:
    db: Database
    planner: Planner
    sender: Sender
    clock: Callable[[], datetime]  # the real one comes from the composition root

    async def plan(self) -> PlanResult:
        async with self.db.transaction() as session:
            if not await planner_turn(session):
                log.debug("another replica is planning; this pass is left to it")
                return PlanResult()
            result = await self.planner.plan(session, self.clock())
        if result.total:
            log.info("planned %s", dict(result.planned))
        return result

    async def send(self) -> SendStats:
        return await self.sender.run_once(self.clock)

    async def next_moment(self) -> datetime:
        async with self.db.reading() as session:
            return await self.planner.next_moment(session, self.clock())


@dataclass
class SimulatedClock:
    """A clock that moves only when told: tests and `regulars simulate`."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def run_simulated(engine: Engine, clock: SimulatedClock, until: datetime) -> None:
    """Plan and send at every moment something is due from `clock.now` until `until`,
    jumping over the minutes in between (the engine must run on `clock`)."""
    while clock.now < until:
        await engine.plan()
        await engine.send()
        clock.now = min(until, await engine.next_moment())


def build_engine(
    *,
    db: Database,
    config: BusinessConfig,
    catalog: Catalog,
    translators: Mapping[str, Translator],
    channels: Mapping[str, Delivery],
    clock: Callable[[], datetime],
    paces: Mapping[str, Pace] | None = DEFAULT_PACES,
    **sender_options: Any,
) -> Engine:
    messages = Messages(
        config=config, catalog=catalog, translators=translators, channels=list(channels)
    )
    sender = Sender(
        db=db,
        config=config,
        messages=messages,
        channels=channels,
        # The pace is the messenger account's, whichever replica sends: booked in the database.
        pacers={
            channel: SharedPacer(pace, db=db, channel=channel)
            for channel, pace in (paces or {}).items()
        },
        **sender_options,
    )
    return Engine(
        db=db, planner=Planner(config=config, catalog=catalog), sender=sender, clock=clock
    )


class Ticks:
    """The engine's ticks as APScheduler fires them, and a stop that lets the tick in
    flight finish: the message being delivered goes out, the rest of its batch goes back
    to the outbox."""

    def __init__(self, engine: Engine, scheduler: AsyncIOScheduler) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self._running: set[asyncio.Task[Any]] = set()
        self.last_tick_at: datetime | None = None  # the last tick that finished (GET /healthz)

    def logged(self, tick: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await tick()
                self.last_tick_at = self.engine.clock()
            except Exception:  # one failing tick must not stop the engine
                log.exception("scheduler tick failed")
            finally:
                self._running.discard(task)

        return run

    async def stop(self, *, drain_seconds: float = DRAIN_SECONDS) -> None:
        """No new ticks; wait a while for the running ones, cut the rest short and put
        back the outbox rows they held."""
        # Paused, not shut down: APScheduler's shutdown cancels the ticks it is running.
        if self.scheduler.running:
            self.scheduler.pause()
        self.engine.sender.stop()
        running = set(self._running)
        if running:
            log.info("waiting for %d scheduler tick(s) in progress", len(running))
            _, late = await asyncio.wait(running, timeout=drain_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        released = await self.engine.sender.release_held(self.engine.clock())
        if released:
            log.info("%d outbox row(s) put back for the next start", released)


def start_ticks(
    engine: Engine, *, plan_every_seconds: int = 60, send_every_seconds: int = 3
) -> Ticks:
    """Planner every minute, sender every few seconds; a tick still running is not
    started twice, and a tick missed while busy is skipped, not queued."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    ticks = Ticks(engine, scheduler)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(
        ticks.logged(engine.plan), "interval", seconds=plan_every_seconds, id="plan", **common
    )
    scheduler.add_job(
        ticks.logged(engine.send), "interval", seconds=send_every_seconds, id="send", **common
    )
    scheduler.start()
    return ticks
