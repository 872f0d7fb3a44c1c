"""The retention engine over a crafted history: a simulated clock moves through twelve days
(from one moment something is due to the next); every message kind appears exactly when it
should, once, and every guard holds. One run serves the per-kind tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from bot.composition import Core, build_core_on
from bot.config import load_business_config
from domain.business import BusinessConfig
from domain.replies import Reply
from scheduler.delivery import Recipient
from scheduler.engine import Engine, SimulatedClock, run_simulated
from storage.db import Database, create_engine, sqlite_url_for
from storage.stats import refresh_client_stats
from storage.tables import Client, Outbox, OutboxStatus, Visit
from tests.helpers import add_client, add_visit, utc_visit

ROOT = Path(__file__).resolve().parent.parent
START = utc_visit(2026, 11, 23, 0)  # Monday 00:00 in Moscow
MASTERS_CHAT = {"artem": 7001, "ilya": 7002, "marina": 7003}


@dataclass
class Recorder:
    clock: SimulatedClock
    sent: list[tuple[datetime, str, Reply]] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.clock.now

    @now.setter
    def now(self, moment: datetime) -> None:
        self.clock.now = moment

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.sent.append((self.clock.now, recipient.address, reply))


def _with_staff_chats(config: BusinessConfig) -> BusinessConfig:
    masters = [m.model_copy(update={"telegram_id": MASTERS_CHAT[m.key]}) for m in config.masters]
    return config.model_copy(update={"masters": masters})


@dataclass
class World:
    core: Core
    engine: Engine
    recorder: Recorder
    ids: dict[str, int]

    @property
    def clock(self) -> SimulatedClock:
        return self.recorder.clock

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.core.config.tz).strftime("%m-%d %H:%M")

    def sent_to(self, name: str) -> list[tuple[str, str]]:
        """(local time, kind) of every message the client got."""
        chat = str(9000 + self.ids[name])
        return [
            (self.local(at), str(reply.kind))
            for at, address, reply in self.recorder.sent
            if address == chat
        ]

    def replies_to(self, name: str) -> list[Reply]:
        chat = str(9000 + self.ids[name])
        return [reply for _, address, reply in self.recorder.sent if address == chat]

    def staff_got(self, master: str) -> list[tuple[str, str]]:
        chat = str(MASTERS_CHAT[master])
        return [
            (self.local(at), str(reply.kind))
            for at, address, reply in self.recorder.sent
            if address == chat
        ]


async def _client(core: Core, name: str, n: int, **fields: Any) -> int:
    defaults: dict[str, Any] = {
        "name": name,
        "phone": f"+7916000{n:04d}",
        "telegram_id": 9000 + n,
        "consent_at": START - timedelta(days=400),
        "marketing_opt_in_at": START - timedelta(days=400),
        "locale": "en",
        "created_at": START - timedelta(days=400),
    }
    client = await add_client(core, **{**defaults, **fields})
    assert client.id == n
    return n


async def _history(
    core: Core, client_id: int, master: str, service: str, starts: list[datetime]
) -> None:
    for start in starts:
        await add_visit(core, client_id=client_id, master=master, service=service, start=start)


async def _booked(
    core: Core, client_id: int, master: str, service: str, start: datetime, created: datetime
) -> int:
    visit = await add_visit(
        core, client_id=client_id, master=master, service=service, start=start, status="booked"
    )
    async with core.db.transaction() as session:
        row = await session.get(Visit, visit.id)
        assert row is not None
        row.created_at = created
        session.add(row)
    assert visit.id is not None
    return visit.id


@pytest.fixture
async def world(db: Database, config: BusinessConfig) -> World:
    return await _build_world(db, config)


async def _build_world(db: Database, config: BusinessConfig) -> World:
    config = _with_staff_chats(config)
    core = await build_core_on(db=db, config=config)
    ids: dict[str, int] = {}
    long_ago = START - timedelta(days=60)
    # Anna: a regular, haircut with Ilya every 28 days → next visit due Fri 27 Nov.
    ids["anna"] = await _client(core, "Anna", 1)
    await _history(
        core,
        1,
        "ilya",
        "haircut",
        [utc_visit(2026, 9, 4, 15), utc_visit(2026, 10, 2, 15), utc_visit(2026, 10, 30, 15)],
    )
    # Boris: booked a fade with Ilya on Wed 25 Nov 15:00 long ago; no offers wanted.
    ids["boris"] = await _client(core, "Boris", 2, marketing_opt_in_at=None)
    await _booked(core, 2, "ilya", "fade", utc_visit(2026, 11, 25, 15), long_ago)
    # Vera: has not come since July: sleeping → win-back.
    ids["vera"] = await _client(core, "Vera", 3)
    await _history(
        core, 3, "marina", "haircut", [utc_visit(2026, 6, 1, 11), utc_visit(2026, 7, 1, 11)]
    )
    # Gleb: sleeping too, but in the holdout group.
    ids["gleb"] = await _client(core, "Gleb", 4, holdout=True)
    await _history(
        core, 4, "artem", "haircut", [utc_visit(2026, 6, 2, 12), utc_visit(2026, 7, 2, 12)]
    )
    # Dasha: birthday on Thu 26 Nov, and her return nudge is due the same days.
    ids["dasha"] = await _client(core, "Dasha", 5, birthday=date(1995, 11, 26))
    await _history(
        core,
        5,
        "marina",
        "kids",
        [utc_visit(2026, 8, 20, 11), utc_visit(2026, 9, 24, 11), utc_visit(2026, 10, 29, 11)],
    )
    # Egor: a beard trim a week ago (the service has a care tip), one visit only.
    ids["egor"] = await _client(core, "Egor", 6)
    await _history(core, 6, "artem", "beard", [utc_visit(2026, 11, 16, 12)])
    # Zhanna: due for a nudge, but already booked ahead.
    ids["zhanna"] = await _client(core, "Zhanna", 7)
    await _history(
        core,
        7,
        "marina",
        "haircut",
        [utc_visit(2026, 9, 1, 10), utc_visit(2026, 9, 29, 10), utc_visit(2026, 10, 27, 10)],
    )
    await _booked(core, 7, "marina", "haircut", utc_visit(2026, 12, 15, 10), long_ago)
    # Ivan deleted his data, Kira blocked the bot: both sleeping and opted in.
    ids["ivan"] = await _client(core, "Ivan", 8, deleted_at=START - timedelta(days=10))
    ids["kira"] = await _client(core, "Kira", 9, unreachable_since=START - timedelta(days=10))
    for n in (8, 9):
        await _history(core, n, "artem", "haircut", [utc_visit(2026, 5, 5, 12)])
    # Lev booked on Tuesday 24 Nov at 10:00 only at 09:00 the same morning.
    ids["lev"] = await _client(core, "Lev", 10, marketing_opt_in_at=None)
    await _booked(
        core, 10, "artem", "shave", utc_visit(2026, 11, 24, 10), utc_visit(2026, 11, 24, 9)
    )
    # Mila: Anna's rhythm (nudge due Tue 24 Nov 10:00), and booked for exactly then.
    ids["mila"] = await _client(core, "Mila", 11)
    await _history(
        core,
        11,
        "marina",
        "kids",
        [utc_visit(2026, 9, 4, 12), utc_visit(2026, 10, 2, 12), utc_visit(2026, 10, 30, 12)],
    )
    await _booked(core, 11, "marina", "kids", utc_visit(2026, 11, 24, 10), long_ago)
    engine, recorder = await _engine_on(core)
    return World(core, engine, recorder, ids)


async def _engine_on(core: Core) -> tuple[Engine, Recorder]:
    """The client figures refreshed from the seeded visits, then an engine on a simulated
    clock at START that records what it sends."""
    async with core.db.transaction() as session:
        await refresh_client_stats(
            session=session,
            tz=core.config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )
    recorder = Recorder(SimulatedClock(START))
    clock = recorder.clock
    return core.engine(channels={"telegram": recorder}, clock=clock, paces=None), recorder


async def _run(world: World, until: datetime) -> None:
    await run_simulated(world.engine, world.clock, until)


@dataclass(frozen=True)
class TwelveDays:
    """What twelve simulated days sent, and what the database held at the end."""

    world: World
    outbox: list[Outbox]
    visits: list[Visit]

    def sent_to(self, name: str) -> list[tuple[str, str]]:
        return self.world.sent_to(name)


async def _twelve_days(folder: Path) -> TwelveDays:
    db = Database(create_engine(sqlite_url_for(str(folder / "planner.db"))))
    async with db.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    try:
        world = await _build_world(db, load_business_config(ROOT / "business.example.toml"))
        await _run(world, START + timedelta(days=12))
        async with db.reading() as session:
            outbox = list((await session.exec(select(Outbox))).all())
            visits = list((await session.exec(select(Visit))).all())
        return TwelveDays(world, outbox, visits)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def twelve_days(tmp_path_factory: pytest.TempPathFactory) -> TwelveDays:
    """One run over twelve days, shared by the tests that each check one kind."""
    return asyncio.run(_twelve_days(tmp_path_factory.mktemp("twelve-days")))


def test_a_return_nudge_three_days_ahead_then_a_gift_when_nothing_followed(
    twelve_days: TwelveDays,
) -> None:
    # Anna: "time to come back" 3 days before Fri 27 Nov, at 10:00 when offers may go out;
    # no booking followed, so 10 days later a gift.
    assert twelve_days.sent_to("anna") == [
        ("11-24 10:00", "return_nudge"),
        ("12-04 10:00", "warm_offer"),
    ]


def test_reminders_the_visit_check_and_the_rating_request(twelve_days: TwelveDays) -> None:
    # Boris: reminders 24 h and 2 h before; the master is asked an hour after the end; no
    # answer, so at 23:00 the visit counts as done; the rating request waits for 08:00.
    # He never opted in to offers: no care tip for the fade.
    assert twelve_days.sent_to("boris") == [
        ("11-24 15:00", "reminder"),
        ("11-25 13:00", "reminder"),
        ("11-26 08:00", "feedback_request"),
    ]
    assert ("11-25 17:15", "visit_check") in twelve_days.world.staff_got("ilya")
    boris = next(v for v in twelve_days.visits if v.client_id == twelve_days.world.ids["boris"])
    assert (boris.status, boris.completed_at) == ("completed", utc_visit(2026, 11, 25, 23))


def test_a_winback_once_per_dormancy_and_none_to_the_holdout(twelve_days: TwelveDays) -> None:
    # Vera: one win-back when she is found sleeping; the second would be 60 days later.
    assert twelve_days.sent_to("vera") == [("11-23 10:00", "winback")]
    # Gleb is in the holdout group: recorded, not sent.
    assert twelve_days.sent_to("gleb") == []
    held = [r for r in twelve_days.outbox if r.status == OutboxStatus.held_out]
    assert [(r.kind, r.client_id) for r in held] == [("winback", twelve_days.world.ids["gleb"])]


def test_a_birthday_carries_the_nudge_due_the_same_week(twelve_days: TwelveDays) -> None:
    # Dasha: birthday on Thu 26 Nov, her nudge due from Tue 24 Nov. One message, the
    # greeting, with the nudge's one-tap booking; no second message a week later.
    assert twelve_days.sent_to("dasha") == [("11-26 10:00", "birthday")]
    greeting = twelve_days.world.replies_to("dasha")[0]
    assert "And it is nearly time for your Kids' haircut" in greeting.text
    assert [b.label for b in greeting.flat_buttons][1:] == [
        "Other time",
        "Not now",
        "Unsubscribe from offers",
    ]
    assert greeting.flat_buttons[0].label.startswith("Book ")
    carried = [
        r.last_error
        for r in twelve_days.outbox
        if r.kind == "return_nudge" and r.client_id == twelve_days.world.ids["dasha"]
    ]
    assert carried == ["carried by the birthday greeting"]


def test_a_care_tip_a_week_after_the_visit_then_the_nudge_a_week_later(
    twelve_days: TwelveDays,
) -> None:
    # Egor: the care tip 7 days after the beard trim (12:00); the nudge waits out the
    # weekly cap.
    egor = twelve_days.sent_to("egor")
    assert egor[0] == ("11-23 12:00", "care_tip")
    assert [kind for _, kind in egor] == ["care_tip", "return_nudge"]
    assert egor[1][0] >= "11-30 12:00"


def test_a_late_booking_gets_only_the_reminders_still_ahead(twelve_days: TwelveDays) -> None:
    # Lev booked at 09:00 for 10:00: too late for the 24 h reminder, and the 2 h one
    # would have been due before he booked. Nobody marked the visit, so it counted as done
    # at 23:00 and the rating request waited for the morning.
    assert twelve_days.sent_to("lev") == [("11-25 08:00", "feedback_request")]


def test_no_offer_to_a_client_in_the_chair_and_no_gift_after_they_came(
    twelve_days: TwelveDays,
) -> None:
    # Mila's nudge would be due on Tue 24 Nov at 10:00, the minute her booked haircut
    # starts. She is in the chair: no nudge. The visit counts as done that evening, her
    # rhythm restarts from it, and no "we miss you" gift follows.
    assert twelve_days.sent_to("mila") == [
        ("11-23 10:00", "reminder"),
        ("11-24 08:00", "reminder"),
        ("11-25 08:00", "feedback_request"),
    ]


def test_nothing_to_the_booked_ahead_the_deleted_or_the_unreachable(
    twelve_days: TwelveDays,
) -> None:
    for name in ("zhanna", "ivan", "kira"):
        assert twelve_days.sent_to(name) == [], name


def test_a_master_gets_the_plan_before_opening_on_a_day_with_visits(
    twelve_days: TwelveDays,
) -> None:
    # Only on days with visits: an empty plan is not sent.
    plans = [at for at, kind in twelve_days.world.staff_got("ilya") if kind == "staff_day_plan"]
    assert plans == ["11-25 11:30"]  # Boris's fade at 15:00; Ilya opens at 12:00
    [plan] = [
        r
        for _, a, r in twelve_days.world.recorder.sent
        if r.kind == "staff_day_plan" and a == "7002"
    ]
    assert "15:00–16:15 — Boris, +79160000002, Фейд · первый визит" in plan.text
    artem = [r for r in twelve_days.outbox if r.kind == "staff_day_plan" and r.staff_id == 1]
    assert {r.status for r in artem} >= {"skipped"}


def test_nothing_twice_nothing_in_the_quiet_hours_and_two_offers_never_within_a_week(
    twelve_days: TwelveDays,
) -> None:
    world = twelve_days.world
    sent_rows = [r for r in twelve_days.outbox if r.status == OutboxStatus.sent]
    assert len(sent_rows) == len(world.recorder.sent)
    offers: dict[str, list[datetime]] = {}
    for at, address, reply in world.recorder.sent:
        hour = at.astimezone(world.core.config.tz).hour
        if reply.kind in ("visit_check", "staff_day_plan"):
            continue
        assert 8 <= hour < 22, (reply.kind, at)
        if reply.kind in ("care_tip", "return_nudge", "warm_offer", "winback", "birthday"):
            assert 10 <= hour < 20, (reply.kind, at)
            offers.setdefault(address, []).append(at)
    for address, times in offers.items():
        for earlier, later in pairwise(times):
            assert later - earlier >= timedelta(days=7), address


async def test_planning_the_same_minute_twice_or_after_a_restart_adds_nothing(world: World) -> None:
    world.recorder.now = utc_visit(2026, 11, 24, 10)
    first = await world.engine.plan()
    assert first.total > 0
    again = await world.engine.plan()
    assert again.total == 0
    restarted = world.core.engine(
        channels={"telegram": world.recorder}, clock=lambda: world.recorder.now, paces=None
    )
    assert (await restarted.plan()).total == 0


async def test_after_hours_of_downtime_reminders_still_ahead_go_once_and_stale_ones_are_skipped(
    world: World,
) -> None:
    # The bot was off from Monday until Wednesday 25 Nov 14:30; Boris's visit is at 15:00.
    world.recorder.now = utc_visit(2026, 11, 25, 14, 30)
    await world.engine.plan()
    await world.engine.send()
    await world.engine.plan()
    await world.engine.send()
    assert world.sent_to("boris") == [("11-25 14:30", "reminder")]
    async with world.core.db.reading() as session:
        rows = (await session.exec(select(Outbox).where(Outbox.kind == "reminder"))).all()
    statuses = Counter((r.client_id, r.payload["hours"], r.status) for r in rows)
    assert statuses[(world.ids["boris"], 2, OutboxStatus.sent)] == 1
    assert statuses[(world.ids["boris"], 24, OutboxStatus.skipped)] == 1  # a nearer one went
    # Lev's visit on Tuesday has passed: nothing is sent for it.
    assert world.sent_to("lev") == []


async def test_a_booking_made_after_the_nudge_stops_the_warm_offer(world: World) -> None:
    await _run(world, utc_visit(2026, 11, 24, 10, 1))
    assert world.sent_to("anna") == [("11-24 10:00", "return_nudge")]
    async with world.core.db.transaction() as session:
        client = await session.get(Client, world.ids["anna"])
        assert client is not None
    await _booked(
        world.core,
        world.ids["anna"],
        "ilya",
        "haircut",
        utc_visit(2026, 11, 27, 15),
        utc_visit(2026, 11, 24, 11),
    )
    world.recorder.now = utc_visit(2026, 12, 4, 9, 59)
    await _run(world, utc_visit(2026, 12, 4, 10, 5))
    assert [kind for _, kind in world.sent_to("anna")] == ["return_nudge"]


async def test_the_nudge_offers_a_one_tap_booking_with_the_usual_master(world: World) -> None:
    world.recorder.now = utc_visit(2026, 11, 24, 10)
    await world.engine.plan()
    await world.engine.send()
    nudge = next(r for _, a, r in world.recorder.sent if a == str(9000 + world.ids["anna"]))
    assert nudge.text.startswith("Anna, it is nearly time for your Men's haircut.")
    assert "Ilya" in nudge.text  # the master in English for an English reader
    labels = [b.label for b in nudge.flat_buttons]
    # Her usual Friday 15:00 on the predicted day, Friday 27 November.
    assert labels[0] == "Book Fri, Nov 27, 15:00"
    assert labels[1:] == ["Other time", "Not now", "Unsubscribe from offers"]
    assert nudge.flat_buttons[0].payload.startswith("1:ok:")


def test_start_is_a_monday_in_moscow() -> None:
    assert START.astimezone(UTC).isoformat() == "2026-11-22T21:00:00+00:00"


async def _at(world: World, moment: datetime) -> None:
    world.recorder.now = moment
    await world.engine.plan()
    await world.engine.send()


async def _set_birthday(world: World, name: str, born: date) -> None:
    async with world.core.db.transaction() as session:
        client = await session.get(Client, world.ids[name])
        assert client is not None
        client.birthday = born
        session.add(client)


async def test_a_birthday_two_days_ahead_holds_back_the_care_tip(world: World) -> None:
    await _set_birthday(world, "egor", date(1990, 11, 25))
    await _at(world, utc_visit(2026, 11, 23, 12))  # the care tip would be due now
    await _at(world, utc_visit(2026, 11, 25, 10))  # two days later: his birthday
    assert world.sent_to("egor") == [("11-25 10:00", "birthday")]


async def test_two_offers_never_within_a_week_not_even_a_birthday(world: World) -> None:
    await _at(world, utc_visit(2026, 11, 23, 12))  # the care tip goes out
    await _set_birthday(world, "egor", date(1990, 11, 25))  # then staff enter his birthday
    await _at(world, utc_visit(2026, 11, 25, 10))
    assert world.sent_to("egor") == [("11-23 12:00", "care_tip")]


async def test_a_moved_visit_gets_its_reminders_again(world: World) -> None:
    await _at(world, utc_visit(2026, 11, 24, 15))  # 24 h before Wednesday 15:00
    async with world.core.db.transaction() as session:
        visit = (
            await session.exec(select(Visit).where(Visit.client_id == world.ids["boris"]))
        ).one()
        visit.starts_at, visit.ends_at = (
            utc_visit(2026, 11, 27, 15),
            utc_visit(2026, 11, 27, 16, 15),
        )
        visit.rescheduled_at = utc_visit(2026, 11, 24, 16)
        session.add(visit)
    await _at(world, utc_visit(2026, 11, 26, 15))  # 24 h before the new time
    await _at(world, utc_visit(2026, 11, 27, 13))  # 2 h before
    assert world.sent_to("boris") == [
        ("11-24 15:00", "reminder"),
        ("11-26 15:00", "reminder"),
        ("11-27 13:00", "reminder"),
    ]
    texts = [reply.text for _, address, reply in world.recorder.sent if address == str(9002)]
    assert "on Friday, November 27, 15:00" in texts[-1]


async def test_first_winbacks_are_spread_over_days_by_the_daily_limit(
    db: Database, config: BusinessConfig
) -> None:
    retention = config.retention.model_copy(update={"winbacks_per_day": 3})
    core = await build_core_on(db=db, config=config.model_copy(update={"retention": retention}))
    # Five clients who last came in June and July: all sleeping, all opted in.
    for n in range(1, 6):
        await _client(core, f"Sleeper {n}", n)
        await _history(
            core, n, "artem", "haircut", [utc_visit(2026, 6, 1, 12) + timedelta(days=7 * n)]
        )
    engine, recorder = await _engine_on(core)
    clock = recorder.clock
    await run_simulated(engine, clock, START + timedelta(days=2))
    days = Counter(at.astimezone(config.tz).date().isoformat() for at, _, _ in recorder.sent)
    assert days == {"2026-11-23": 3, "2026-11-24": 2}
    # The most recently lapsed first: clients 5, 4 and 3 on the first day.
    first_day = {a for at, a, _ in recorder.sent if at.astimezone(config.tz).day == 23}
    assert first_day == {"9005", "9004", "9003"}
